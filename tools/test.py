"""Test a checkpoint: mmseg's tools/test.py for segmentation configs and
mmpretrain's for classification configs, with their arguments.

    python tools/test.py CONFIG CHECKPOINT [--out OUT] [--show-dir DIR]
    bash tools/dist_test.sh CONFIG CHECKPOINT 8

Full and prompt-only checkpoints both work (a prompt-only one is loaded on
top of the pretrained ViT named by the backbone's init_cfg). A checkpoint
that does not fit the config's model (a head of another ``num_classes`` or
other channels, a pretrained ViT instead of a trained model) is a
``CheckpointMismatchError`` naming the file and the tensors before any
image is tested, a checkpoint of another method or encoder options a
``MethodMismatchError`` naming each setting, and data that do not fit the
heads a ``ConfigError`` (mmseg_ivpt/engine/checks.py). These errors, and
a missing checkpoint, end the tool with one line ``test.py: error: ...``
(``--debug``: the traceback).

What ``--out`` and ``--show-dir`` write:

* segmentation (mmseg's): ``--out DIR``, one PNG mask per image named after
  it, in the numbering of the annotation files (mmseg's IoUMetric: the
  class index, + 1 for a data set with ``reduce_zero_label`` such as
  ADE20K, where 0 is "not labelled"); ``--show-dir DIR``, the image with the
  ground truth and the prediction painted,
  ``DIR/vis_data/vis_image/test_<image file>_0.png`` (every ``interval``-th
  batch of the config's ``SegVisualizationHook``, or ``--interval``).
* classification (mmpretrain's): ``--out FILE.pkl``, the predictions of
  every image (scores, label, ground truth: mmengine's ``DumpResults``;
  ``--out-item metrics`` writes the metrics instead); ``--show-dir DIR``,
  ``DIR/<image file>_0.png`` with the prediction written on it (every
  ``--interval``-th image, default 1).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from tools._venv import ensure  # noqa: E402

ensure()  # the repository's .venv unless this python has the packages

from mmseg_ivpt.engine.checks import checkpoint_fit_hook  # noqa: E402
from mmseg_ivpt.engine.runner import (  # noqa: E402
    ConfigError,
    add_common_args,
    build_runner,
    load_config,
)
from tools._cli import run_main  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='if specified, the evaluation metric results will be dumped '
        'into the directory as json')
    parser.add_argument(
        '--out', type=str,
        help='segmentation: a folder, one PNG mask per image in the '
        'annotation files\' numbering (mmseg); classification: a .pkl file '
        'of the predictions (mmpretrain)')
    parser.add_argument(
        '--out-item', choices=['metrics', 'pred'],
        help='classification: what --out holds, the predictions (default) '
        'or the metrics')
    parser.add_argument('--show', action='store_true', help='show results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved: segmentation '
        'DIR/vis_data/vis_image/test_<image file>_0.png (test_a.jpg_0.png), '
        'classification DIR/<image file>_0.png')
    parser.add_argument(
        '--interval', type=int,
        help='paint every N-th image (classification, default 1) or batch '
        '(segmentation, default: the config\'s visualization hook)')
    parser.add_argument('--wait-time', type=float, default=2,
                        help='the interval of show (s)')
    parser.add_argument('--tta', action='store_true',
                        help='Test time augmentation')
    add_common_args(parser)
    return parser.parse_args()


def trigger_visualization_hook(cfg, args, scope: str):
    """Turn the config's visualization hook on, as mmseg's test.py
    (``SegVisualizationHook``: draw; the visualizer saves under DIR) or
    mmpretrain's (``VisualizationHook``: enable; it saves into DIR)."""
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        kind = 'SegVisualizationHook' if scope == 'mmseg' \
            else 'VisualizationHook'
        raise ConfigError(
            f'--show/--show-dir need default_hooks.visualization in '
            f'{args.config}, e.g. visualization=dict(type={kind!r})')
    vis = hooks.visualization
    if scope == 'mmseg':
        vis['draw'] = True
        if args.show:
            vis['show'] = True
            vis['wait_time'] = args.wait_time
        if args.show_dir:
            cfg.visualizer['save_dir'] = args.show_dir
    else:
        vis.update(enable=True, show=args.show, wait_time=args.wait_time,
                   out_dir=args.show_dir)
    if args.interval is not None or scope != 'mmseg':
        vis['interval'] = args.interval or 1
    return cfg


def check_out_args(args, scope: str) -> None:
    if args.interval is not None and args.interval < 1:
        raise ConfigError(f'--interval must be >= 1, got {args.interval}')
    if scope == 'mmseg':
        if args.out_item:
            raise ConfigError(
                '--out-item is for classification configs; a segmentation '
                'config\'s --out is a folder of masks')
        return
    if args.out_item and not args.out:
        raise ConfigError('--out-item says what --out holds: give --out '
                          'FILE.pkl too')
    if args.out and args.out_item != 'metrics' and \
            not args.out.endswith(('.pkl', '.pickle')):
        raise ConfigError(
            f'--out {args.out}: a classification config writes its '
            f'predictions to a pickle file (as mmpretrain\'s test.py); give '
            f'a path ending in .pkl')


def main():
    args = parse_args()
    cfg = load_config(args)
    scope = cfg.get('default_scope') or 'mmseg'
    check_out_args(args, scope)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint!r} not found')
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args, scope)
    if args.tta:
        missing = [k for k in ('tta_pipeline', 'tta_model') if k not in cfg]
        if missing:
            raise ConfigError(
                f'--tta needs {" and ".join(missing)} in the config '
                f'{args.config} (see configs/demo/setr_ivpt_tiny_shapes.py '
                f'or mmseg\'s _base_/datasets/ade20k.py for an example)')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None and scope == 'mmseg':
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    runner = build_runner(cfg, 'test')
    # a head that does not fit the checkpoint: an error, not mmengine's
    # "size mismatch" warning and a metric of a random head
    runner.register_hook(checkpoint_fit_hook(args.checkpoint))
    if args.out and scope != 'mmseg' and args.out_item != 'metrics':
        from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(
            DumpResults(out_file_path=args.out))
    metrics = run_test(runner, args.checkpoint)
    if args.out and scope != 'mmseg' and args.out_item == 'metrics':
        import mmengine
        mmengine.dump(metrics, args.out)


def run_test(runner, checkpoint: str):
    """``runner.test()``; an error loading the checkpoint names it."""
    from mmseg_ivpt.models import CheckpointMismatchError
    try:
        return runner.test()
    except CheckpointMismatchError as e:
        if checkpoint in str(e) or osp.abspath(checkpoint) in str(e):
            raise
        raise type(e)(f'checkpoint {checkpoint}: {e}') from None


if __name__ == '__main__':
    run_main(main)  # a named error: one line (tools/_cli.py; --debug)
