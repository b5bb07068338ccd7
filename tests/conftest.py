"""Shared pytest setup. tests/ is deliberately not a package: mmsegmentation's
wheel installs a stray top-level ``tests`` package into site-packages, and
ours must never be confused with it (pytest imports our files by their own
names from their folders, so test file basenames are unique across
tests/; see also test_registry.py and docs/testing.md).

The folders mirror the package (models/, engine/, protocol/, data/, apis/,
analysis/, utils/) plus configs/ and e2e/ (whole-tool runs). Shared helpers:
``ivpt_helpers`` (small random models and their references) and
``ivpt_runs`` (paths, ``run_tool``, generated data, small configs), both
importable from every folder; the session fixtures below train the tiny
runs several folders test, once for the whole suite."""
import os
import sys

import numpy as np
import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:  # run from a clone without `pip install -e`
    sys.path.insert(0, ROOT)
if HERE not in sys.path:  # ivpt_helpers / ivpt_runs from every folder
    sys.path.insert(0, HERE)

from ivpt_runs import (make_seg_env, make_vtab, ok, pretrained_tiny,  # noqa
                       run_tool, small_config, train_seg)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


# ---------------------------------------------------- tiny trained runs
@pytest.fixture(scope='session')
def seg_data(tmp_path_factory):
    """The shapes data, the tiny "pretrained" ViT and the options of
    ``ivpt_runs.make_seg_env``, shared by the whole session: read them,
    never write beside them (``env`` gives each module its own folder)."""
    return make_seg_env(tmp_path_factory.mktemp('seg_data'))


@pytest.fixture(scope='module')
def env(seg_data, tmp_path_factory):
    """``seg_data`` with a ``tmp`` folder of this module's own, where its
    tests write."""
    return dict(seg_data, tmp=tmp_path_factory.mktemp('seg'))


@pytest.fixture(scope='session')
def seg_run(seg_data):
    """The demo's segmentation config (iVPT CDC+DA, N=8, on the tiny ViT)
    trained 4 iterations on ``seg_data`` through tools/train.py, once per
    session: its work dir (prompt-only ``iter_2.pth`` and ``iter_4.pth``;
    the ViT named by absolute path). Read-only: copy it to change it."""
    work = seg_data['tmp'] / 'seg_run'
    ok(train_seg(seg_data, work))
    return work


@pytest.fixture(scope='session')
def cls_run(tmp_path_factory):
    """A tiny iVPT classifier (N=3, k=2 AR) trained 2 epochs through
    tools/train.py on a generated VTAB-1k eurosat (10 classes, 8 images),
    once per session; beside it the data of svhn (10 classes) and kitti (4)
    and a kitti config, and a noise image (no ties in the attention, unlike
    a flat one). Read-only: train elsewhere to change it."""
    tmp = tmp_path_factory.mktemp('cls_run')
    make_vtab(tmp / 'vtab', task='eurosat', n=8)
    make_vtab(tmp / 'vtab', task='svhn', n=8)
    make_vtab(tmp / 'vtab', task='kitti', n=8,
              labels=[i % 4 for i in range(8)])
    pretrained = pretrained_tiny(tmp)
    over = f"data_root={str(tmp / 'vtab')!r}"
    cfg = small_config(tmp, 'configs/vtab/ivpt_vitb16_eurosat.py', over,
                       pretrained)
    (tmp / 'kitti').mkdir()
    kitti = small_config(tmp / 'kitti', 'configs/vtab/ivpt_vitb16_kitti.py',
                         over, pretrained)
    work = tmp / 'work'
    res = ok(run_tool('train.py', cfg, '--work-dir', work))
    img = tmp / 'noise.png'
    from PIL import Image
    Image.fromarray(np.random.RandomState(0).randint(
        0, 256, (40, 48, 3), np.uint8)).save(img)
    return dict(tmp=tmp, cfg=cfg, kitti=kitti, work=work,
                log=res.stdout + res.stderr, ckpt=str(work / 'epoch_2.pth'),
                img=str(img))
