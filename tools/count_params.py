"""Print the trainable and total parameters of a config's model.

    python tools/count_params.py configs/setr_ivpt_vitl_ade20k.py [...]
    python tools/count_params.py configs/vtab/ivpt_vitb16_*.py --method express
    python tools/count_params.py configs/mask2former_*.py --parts

The model is built on the meta device (no weights allocated, no checkpoint
read), so ViT-L configs take seconds. One row per config; with several, a
row and a line of their mean (trainable, per part, and total): the means the
README quotes. ``--parts`` prints, instead, the trainable parameters of
each part (the method's tensors in the backbone, the neck, the heads) and
the method's share of the trainable ones. ``--method`` counts the task
configs as ``tools/protocol.py --method`` runs them (the method applied
before ``--cfg-options``).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from tools._venv import ensure  # noqa: E402

ensure()  # the repository's .venv unless this python has the packages

from mmengine.config import DictAction  # noqa: E402

from mmseg_ivpt.analysis.params import build_model_on_meta, count_parameters  # noqa
from mmseg_ivpt.engine.checks import ConfigError  # noqa: E402
from mmseg_ivpt.engine.config import read_config  # noqa: E402
from mmseg_ivpt.protocol import ProtocolError, load_task_config  # noqa


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='applied as tools/train.py applies them')
    parser.add_argument('--method', help='a tools/protocol.py --method, '
                        'applied to each (task) config first')
    parser.add_argument('--parts', action='store_true',
                        help='one column per trained part (method, neck, '
                        'heads) and the method\'s share')
    args = parser.parse_args()
    if args.parts:
        print_parts(args)
        return
    counts = []
    print('| config | trainable | backbone trainable | total |')
    print('|---|---:|---:|---:|')
    for path in args.configs:
        n = counts_of(path, args)
        counts.append(n)
        print(f"| {osp.basename(path)} | {n['trainable']:,} | "
              f"{n.get('backbone.trainable', 0):,} | {n['total']:,} |")
    if len(counts) > 1:
        print_mean(counts)


def counts_of(path, args):
    """:func:`count_parameters` of the model of the config ``path`` as
    ``args`` (``--method``, ``--cfg-options``) change it."""
    try:
        cfg = (load_task_config(path, args.method, args.cfg_options)
               if args.method else read_config(path, args.cfg_options))
    except (ConfigError, ProtocolError) as e:
        raise SystemExit(f'count_params.py: {path}: {e}')
    return count_parameters(build_model_on_meta(cfg))


def print_parts(args) -> None:
    """``--parts``: per config, the trainable parameters of the method
    (the backbone's), the neck, the heads (every other part), all, the
    method's share of them, and the total."""
    print('| config | method | neck | heads | trainable | method share | '
          'total |')
    print('|---|---:|---:|---:|---:|---:|---:|')
    for path in args.configs:
        n = counts_of(path, args)
        method = n.get('backbone.trainable', 0)
        neck = n.get('neck.trainable', 0)
        heads = n['trainable'] - method - neck
        share = 100 * method / n['trainable'] if n['trainable'] else 0.
        print(f"| {osp.basename(path)} | {method:,} | {neck:,} | "
              f"{heads:,} | {n['trainable']:,} | {share:.2f}% | "
              f"{n['total']:,} |")


def print_mean(counts) -> None:
    """The mean over the configs: a table row, and a line in millions with
    the trainable share of each part (backbone, heads)."""
    keys = {k for n in counts for k in n}
    mean = {k: sum(n.get(k, 0) for n in counts) / len(counts) for k in keys}
    print(f"| mean of {len(counts)} | {mean['trainable']:,.1f} | "
          f"{mean.get('backbone.trainable', 0):,.1f} | "
          f"{mean['total']:,.1f} |")
    parts = ', '.join(
        f'{k[:-len(".trainable")]} {mean[k] / 1e6:.3f}M' for k in sorted(keys)
        if k.endswith('.trainable') and mean[k])
    print(f"\nmean over {len(counts)} configs: {mean['trainable'] / 1e6:.3f}M "
          f"trainable ({parts}), {mean['total'] / 1e6:.3f}M in all")


if __name__ == '__main__':
    main()
