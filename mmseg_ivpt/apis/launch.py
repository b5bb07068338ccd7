"""What ``tools/train.py`` and ``tools/test.py`` do to a config before the
runner is built: checks that fail early with a clear message, and the setup
that lets the same config train on CPUs across processes (gloo).
"""
import argparse
import os
import os.path as osp
from typing import Iterable, List

import torch

from ..models.vit import resolve_arch

_VIT_BACKBONES = ('PromptedViT', 'GatedViT')


class ConfigError(ValueError):
    """A config that cannot run; raised before any work starts."""


def _datasets(cfg: dict) -> Iterable[dict]:
    """The dataset configs inside a (possibly wrapped) dataset config."""
    if not isinstance(cfg, dict):
        return
    if 'dataset' in cfg:  # RepeatDataset, ClassBalancedDataset, ...
        yield from _datasets(cfg['dataset'])
    elif 'datasets' in cfg:  # ConcatDataset
        for d in cfg['datasets']:
            yield from _datasets(d)
    else:
        yield cfg


def check_data(cfg, loaders: Iterable[str]) -> None:
    """Every dataset of ``loaders`` points at folders / files that exist."""
    for loader in loaders:
        if not cfg.get(loader):
            continue
        for ds in _datasets(cfg[loader].get('dataset')):
            root = ds.get('data_root') or ''
            where = f'{loader}.dataset'
            if root and not osp.isdir(root):
                raise ConfigError(
                    f'{where}.data_root={root!r} does not exist. Point it at '
                    f'your data (in the config, or with --cfg-options '
                    f'{where}.data_root=PATH); docs/data.md says how to '
                    f'prepare it')
            prefix = ds.get('data_prefix') or {}
            # mmseg: a dict of folders; mmpretrain also takes one folder
            paths = dict(prefix) if isinstance(prefix, dict) \
                else dict(data_prefix=prefix)
            if ds.get('ann_file'):
                paths['ann_file'] = ds['ann_file']
            for key, rel in paths.items():
                if not rel:
                    continue
                path = rel if osp.isabs(rel) else osp.join(root, rel)
                if not osp.exists(path):
                    raise ConfigError(
                        f'{where}: {key}={rel!r} not found under data_root '
                        f'{root!r} ({path})')


def _heads(model: dict) -> List[tuple]:
    out = []
    for key in ('decode_head', 'auxiliary_head', 'head', 'neck'):
        h = model.get(key)
        for i, head in enumerate(h if isinstance(h, (list, tuple)) else [h]):
            if isinstance(head, dict) and 'in_channels' in head:
                name = key if not isinstance(h, (list, tuple)) \
                    else f'{key}[{i}]'
                out.append((name, head))
    return out


def check_model(model: dict) -> None:
    """The heads take what a ViT backbone of ours gives them."""
    bb = model.get('backbone') or {}
    if bb.get('type') not in _VIT_BACKBONES:
        return
    try:
        dims = resolve_arch(bb.get('arch', 'b'))['embed_dims']
    except (ValueError, TypeError) as e:
        raise ConfigError(f'model.backbone.arch: {e}') from None
    n_out = len(bb['out_indices']) if isinstance(
        bb.get('out_indices'), (list, tuple)) else 1
    for name, head in _heads(model):
        chans = head['in_channels']
        chans = list(chans) if isinstance(chans, (list, tuple)) else [chans]
        if any(c != dims for c in chans):
            raise ConfigError(
                f'model.{name}.in_channels={head["in_channels"]} does not '
                f'match the backbone: {bb["type"]}(arch={bb.get("arch")!r}) '
                f'gives {dims}-channel features')
        idx = head.get('in_index', -1)
        for i in (idx if isinstance(idx, (list, tuple)) else [idx]):
            if not -n_out <= i < n_out:
                raise ConfigError(
                    f'model.{name}.in_index={idx} but the backbone returns '
                    f'{n_out} feature map(s) (out_indices='
                    f'{bb.get("out_indices", -1)})')


def _sync_bn_to_bn(obj) -> int:
    """Replace SyncBN norm configs by BN in place; returns how many."""
    n = 0
    if isinstance(obj, dict):
        if obj.get('type') in ('SyncBN', 'MMSyncBN'):
            obj['type'] = 'BN'
            n += 1
        for v in obj.values():
            n += _sync_bn_to_bn(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            n += _sync_bn_to_bn(v)
    return n


def setup_cpu_distributed(cfg) -> bool:
    """Multi-process training without GPUs: gloo instead of nccl.

    mmengine 0.10.7 would call ``torch.cuda.set_device`` and give DDP CUDA
    ``device_ids``; here the process group is opened with gloo first (the
    runner then keeps it), DDP gets no device ids, and SyncBN (CUDA only)
    becomes BN. Returns whether it did anything.
    """
    if cfg.get('launcher', 'none') != 'pytorch' or torch.cuda.is_available():
        return False
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = \
        'gloo'
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                                 device_ids=None, broadcast_buffers=False)
    _sync_bn_to_bn(cfg.model)
    return True


def prepare(cfg, mode: str) -> None:
    """Checks and setup before ``Runner.from_cfg``; mode 'train' or 'test'."""
    if 'model' not in cfg:
        raise ConfigError('the config has no `model`')
    check_model(cfg.model)
    loaders = ('train_dataloader', 'val_dataloader') if mode == 'train' \
        else ('test_dataloader', )
    check_data(cfg, loaders)
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


def load_config(args):
    """Config of ``args.config`` with launcher, --cfg-options and work_dir
    applied as mmseg's tools do."""
    from mmengine.config import Config
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def build_runner(cfg, mode: str):
    """:func:`prepare`, then the runner of the config."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    prepare(cfg, mode)
    return RUNNERS.build(cfg) if 'runner_type' in cfg \
        else Runner.from_cfg(cfg)
