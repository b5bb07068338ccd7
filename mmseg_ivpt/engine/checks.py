"""Checks of a config before any work starts: the data folders exist, the
heads take what the backbone gives. Each failure is a :class:`ConfigError`
naming the config key and what to do instead.
"""
import os.path as osp
from typing import Iterable, List

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
