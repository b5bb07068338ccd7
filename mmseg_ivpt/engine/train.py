"""Training from a config: the body of ``tools/train.py`` (mmseg's
arguments), also runnable as a module, which is how the protocol starts its
runs::

    python -m mmseg_ivpt.engine.train CONFIG [--work-dir DIR] [--resume]
    torchrun --nproc_per_node N -m mmseg_ivpt.engine.train CONFIG \\
        --launcher pytorch

Before the runner is built the config is checked (heads vs backbone
channels, data folders) and, for multi-process runs without GPUs, set up for
gloo. ``--resume`` on a damaged latest checkpoint resumes from the newest
intact one and says so; every checkpoint written carries a checksum of its
tensors (``CheckpointChecksumHook``).
"""
import argparse
import logging
from typing import Optional, Sequence

from .runner import add_common_args, build_runner, load_config, resolve_resume


def parse_args(argv: Optional[Sequence[str]] = None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', action='store_true', default=False,
        help='resume from the latest checkpoint in the work_dir automatically')
    parser.add_argument('--amp', action='store_true', default=False,
                        help='enable automatic-mixed-precision training')
    add_common_args(parser)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    from mmengine.logging import print_log
    args = parse_args(argv)
    cfg = load_config(args)
    if args.amp:
        if cfg.optim_wrapper.type == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.',
                      logger='current', level=logging.WARNING)
        else:
            assert cfg.optim_wrapper.type == 'OptimWrapper', (
                '`--amp` is only supported when the optimizer wrapper type is '
                f'`OptimWrapper` but got {cfg.optim_wrapper.type}.')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    cfg.resume = args.resume
    resolve_resume(cfg)  # a damaged latest checkpoint: the newest intact one
    build_runner(cfg, 'train').train()


if __name__ == '__main__':
    main()
