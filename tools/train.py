"""Train a model from a config: mmseg's tools/train.py, with the same
arguments, for mmseg and mmpretrain configs of this toolbox.

    python tools/train.py configs/setr_ivpt_vitl_ade20k.py
    bash tools/dist_train.sh configs/setr_ivpt_vitl_ade20k.py 8

Works from a clone (the repository root is put on sys.path) and installed;
the body is :mod:`mmseg_ivpt.engine.train` (also ``python -m
mmseg_ivpt.engine.train``). An error of the toolbox (a config that cannot
run, data that do not fit, a checkpoint of another model) ends it with one
line ``train.py: error: ...`` (``--debug``: the traceback).
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from tools._venv import ensure  # noqa: E402

ensure()  # the repository's .venv unless this python has the packages

from mmseg_ivpt.engine.train import main  # noqa: E402
from tools._cli import run_main  # noqa: E402

if __name__ == '__main__':
    run_main(main)  # a named error: one line (tools/_cli.py; --debug)
