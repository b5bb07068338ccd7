"""What ``tools/`` repair in a config before the runner is built, so that
the same config runs where it is: CPU-only multi-process training (gloo),
mmengine settings PyTorch refuses, the hooks every run gets, and
the annotation checks :func:`.checks.check_data` asks for
(:func:`arm_annotation_checks`). Reading a config and applying
``--cfg-options`` is :mod:`.config`.
"""
from typing import Iterable, List, Tuple

import torch


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


def fix_persistent_workers(cfg) -> List[str]:
    """``persistent_workers=True`` (mmseg's dataloader default) with
    ``num_workers=0`` is an error in PyTorch; turn it off there. Returns the
    loaders changed."""
    changed = []
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if isinstance(loader, dict) and loader.get('num_workers', 1) == 0 \
                and loader.get('persistent_workers'):
            loader['persistent_workers'] = False
            changed.append(key)
    return changed


#: the hooks every training gets (:func:`add_run_hooks`)
RUN_HOOKS = ('CheckpointChecksumHook', 'ResumedScheduleHook')


def add_run_hooks(cfg) -> None:
    """Every training gets the hooks of :data:`RUN_HOOKS`, whatever
    ``custom_hooks`` says: each checkpoint it writes carries a checksum of
    its tensors (``CheckpointChecksumHook``), and a resume that keeps the
    checkpoint's lr schedule over the config's says so
    (``ResumedScheduleHook``)."""
    hooks = list(cfg.get('custom_hooks') or [])
    for name in RUN_HOOKS:
        if not any(isinstance(h, dict) and h.get('type') == name
                   for h in hooks):
            hooks.append(dict(type=name))
    cfg.custom_hooks = hooks


def _type_name(t) -> str:
    """A transform's type as a bare name ('mmseg.X' -> 'X')."""
    t = t.get('type', '') if isinstance(t, dict) else ''
    return t.split('.')[-1] if isinstance(t, str) else getattr(t, '__name__',
                                                               '')


def arm_annotation_check(ds: dict, check: dict) -> None:
    """``check`` right after each ``LoadAnnotations`` of ``ds``'s pipeline,
    also inside a ``TestTimeAug`` (as a branch list of its own); idempotent
    (a dumped config run again keeps one check)."""
    pipeline = ds.get('pipeline')
    if not isinstance(pipeline, list):
        return
    out = []
    for i, t in enumerate(pipeline):
        out.append(t)
        nxt = pipeline[i + 1] if i + 1 < len(pipeline) else None
        if _type_name(t) == 'LoadAnnotations' and \
                _type_name(nxt) != 'CheckSegAnnotation':
            out.append(dict(check))
        elif _type_name(t) == 'TestTimeAug':
            branches, new = list(t.get('transforms') or []), []
            for j, b in enumerate(branches):
                new.append(b)
                after = branches[j + 1] if j + 1 < len(branches) else None
                if isinstance(b, list) and b and all(
                        _type_name(x) == 'LoadAnnotations' for x in b) and \
                        not (isinstance(after, list) and after and
                             _type_name(after[0]) == 'CheckSegAnnotation'):
                    new.append([dict(check)])
            t['transforms'] = new
    ds['pipeline'] = out


def arm_annotation_checks(armed: Iterable[Tuple[dict, dict]]) -> None:
    """Each (dataset config, check) that :func:`.checks.check_data` returns:
    the check into that dataset's pipeline (:func:`arm_annotation_check`),
    so a mask of the wrong size or with labels outside the classes is an
    error naming the file as it loads."""
    for ds, check in armed:
        arm_annotation_check(ds, check)
