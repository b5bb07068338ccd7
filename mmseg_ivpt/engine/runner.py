"""What ``tools/train.py`` and ``tools/test.py`` share: mmseg's arguments,
the config as those tools read it (:func:`load_config`), the checks and
repairs before the runner is built (:func:`prepare`), and resuming past a
damaged checkpoint (:func:`resolve_resume`).
"""
import argparse
import logging
import os
import os.path as osp
import re
from typing import List, Optional

from .checks import ConfigError, check_data, check_model
from .config import read_config
from .config_repair import (
    add_run_hooks,
    arm_annotation_checks,
    fix_persistent_workers,
    setup_cpu_distributed,
)


def prepare(cfg, mode: str) -> None:
    """Checks and setup before ``Runner.from_cfg``; mode 'train' or 'test'."""
    if 'model' not in cfg:
        raise ConfigError('the config has no `model`')
    check_model(cfg.model, cfg.get('default_scope'))
    loaders = ('train_dataloader', 'val_dataloader') if mode == 'train' \
        else ('test_dataloader', )
    arm_annotation_checks(check_data(cfg, loaders))
    fix_persistent_workers(cfg)
    if mode == 'train':
        import mmseg_ivpt  # noqa: F401  (registers the hook)
        add_run_hooks(cfg)
    setup_cpu_distributed(cfg)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The arguments mmseg's train.py and test.py share."""
    from mmengine.config import DictAction
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')
    parser.add_argument('--launcher',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument(
        '--debug', action='store_true',
        help='tools/train.py, tools/test.py: on an error of the toolbox, '
        'show the traceback (default: one line "error: ...")')


def load_config(args):
    """Config of ``args.config`` with launcher, --cfg-options
    (:func:`~.config.apply_cfg_options`) and work_dir applied as
    mmseg's tools do."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = read_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def damaged_checkpoint(path: str):
    """Why ``path`` cannot be loaded (a message), or None if it loads and
    its checksum (when it has one) holds."""
    from ..utils.integrity import CheckpointFileError
    from ..utils.safe_load import load_checkpoint_file
    try:
        load_checkpoint_file(path, map_location='cpu')
    except (CheckpointFileError, FileNotFoundError) as e:
        return str(e)
    return None


def _checkpoints_newest_first(work_dir: str) -> List[str]:
    """``iter_N.pth`` / ``epoch_N.pth`` of ``work_dir``, highest N first."""
    found = []
    for name in os.listdir(work_dir):
        m = re.fullmatch(r'(iter|epoch)_(\d+)\.pth', name)
        if m:
            found.append((int(m.group(2)), osp.join(work_dir, name)))
    return [p for _, p in sorted(found, reverse=True)]


def resolve_resume(cfg) -> Optional[str]:
    """``--resume`` without ``load_from``: mmengine resumes from the file
    named in ``work_dir/last_checkpoint``. If that file is damaged
    (truncated by a kill during the write, bytes flipped...), resume from
    the newest intact ``iter_*/epoch_*.pth`` instead and say so (sets
    ``cfg.load_from``). Returns the checkpoint resumed from (None: mmengine
    decides, or nothing to resume)."""
    from mmengine.logging import print_log
    if not cfg.get('resume') or cfg.get('load_from'):
        return None
    work_dir = cfg.work_dir
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        return None
    with open(marker) as f:
        latest = f.read().strip()
    problem = damaged_checkpoint(latest) if latest else 'empty marker'
    if problem is None:
        return latest
    bad = [latest]
    for path in _checkpoints_newest_first(work_dir):
        if osp.abspath(path) == osp.abspath(latest):
            continue
        why = damaged_checkpoint(path)
        if why is None:
            print_log(f'--resume: the latest checkpoint is damaged: '
                      f'{problem}\nResuming from the newest intact one '
                      f'instead: {path}', logger='current',
                      level=logging.WARNING)
            cfg.load_from = path
            return path
        bad.append(path)
    raise ConfigError(
        f'--resume: no intact checkpoint in {work_dir}; the latest '
        f'({latest}) is damaged: {problem}. Also damaged: {bad[1:] or "-"}. '
        f'Delete {marker} to train from the start.')


def build_runner(cfg, mode: str):
    """:func:`prepare`, then the runner of the config."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    prepare(cfg, mode)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg \
        else Runner.from_cfg(cfg)
    runner.logger.addFilter(_FrozenParamWarnings())
    return runner


class _FrozenParamWarnings(logging.Filter):
    """Drops mmengine's optimizer-constructor warning "X is skipped since
    its requires_grad=False", given once per frozen parameter (hundreds for
    a frozen ViT) whenever ``paramwise_cfg`` is set. Frozen by design here;
    the backbone logs one INFO line for the pretrained file instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).endswith(
            'is skipped since its requires_grad=False')
