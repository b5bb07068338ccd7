"""What ``tools/`` change in a config before the runner is built, so that
the same config runs as the user means it: ``--cfg-options`` applied the one
way every tool applies them (:func:`apply_cfg_options`, :func:`read_config`:
``arch`` presets that can take options, options that reach the values a
config variable was substituted into), CPU-only multi-process training
(gloo), mmengine settings PyTorch refuses, and the annotation checks
:func:`.checks.check_data` asks for (:func:`arm_annotation_checks`).
"""
import re
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch

from ..models.vit import resolve_arch
from .checks import ConfigError


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


def add_checksum_hook(cfg) -> None:
    """Every checkpoint a run writes carries a checksum of its tensors
    (``CheckpointChecksumHook``), whatever ``custom_hooks`` says."""
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(isinstance(h, dict) and h.get('type') ==
               'CheckpointChecksumHook' for h in hooks):
        hooks.append(dict(type='CheckpointChecksumHook'))
    cfg.custom_hooks = hooks


def expand_arch_presets(cfg, options: dict) -> List[str]:
    """``--cfg-options model.backbone.arch.num_layers=12`` on a config whose
    ``arch`` is a preset name ('l'): mmengine cannot merge a key into a
    string (it asks for ``_delete_``), so the preset is first written out as
    its dict. Returns the ``arch`` paths expanded."""
    done = []
    for key in options:
        m = re.fullmatch(r'(.+\.arch)\.\w+', key)
        if not m or m.group(1) in done:
            continue
        *parents, leaf = m.group(1).split('.')
        node = cfg  # a Config, then ConfigDicts
        for part in parents:
            node = node.get(part) if hasattr(node, 'get') else None
        if hasattr(node, 'get') and isinstance(node.get(leaf), str):
            try:
                node[leaf] = resolve_arch(node[leaf])
            except ValueError as e:
                raise ConfigError(f'{m.group(1)}: {e}') from None
            done.append(m.group(1))
    return done


def _explicit(path: str, options) -> bool:
    """Whether ``--cfg-options`` set ``path`` (or a key above it)."""
    return any(path == k or path.startswith(k + '.') for k in options or ())


def repoint_variable(cfg, name: str, before, options=None, *,
                     keys: Optional[Sequence[str]] = None,
                     within: Optional[Callable[[str], bool]] = None,
                     path_prefix: bool = False, convert=None) -> int:
    """``--cfg-options NAME=VALUE`` for a config *variable* ``NAME``: mmengine
    substituted the variable's value into the settings derived from it when
    the file was read, so overriding the variable alone changes nothing.
    Every value that still holds the old one (``before``) is given the new
    one; a value set explicitly in the same command (``options``: the keys
    of ``--cfg-options``) is kept.

    Args:
        keys: only values under these key names (any key when None).
        within: only under the top-level keys for which this is true
            (everywhere when None; the variable itself is always skipped).
        path_prefix: also paths built from the variable
            (``before + '/...'`` becomes ``after + '/...'``).
        convert: applied to the new value (e.g. ``float``).
    Returns how many values changed.
    """
    after = cfg.get(name)
    if before is None or after is None or before == after:
        return 0
    if isinstance(before, str) != isinstance(after, str):
        return 0
    new = convert(after) if convert else after
    head = None
    if path_prefix and isinstance(before, str):
        head = before if before.endswith('/') else before + '/'

    def moved(v):
        """The new value for ``v``, or None to leave it."""
        if isinstance(before, str):
            if not isinstance(v, str):
                return None
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        if v == before:
            return new
        if head is not None and v.startswith(head):
            return after.rstrip('/') + '/' + v[len(head):]
        return None

    def visit(obj, path: str) -> int:
        n = 0
        pairs = list(obj.items()) if isinstance(obj, dict) else \
            list(enumerate(obj))
        for k, v in pairs:
            where = f'{path}.{k}'
            if _explicit(where, options):
                continue
            if isinstance(v, (dict, list)):
                n += visit(v, where)
            elif keys is None or k in keys:
                got = moved(v)
                if got is not None:
                    obj[k] = got
                    n += 1
        return n

    total = 0
    for top in list(cfg.keys()):
        if top == name or (within is not None and not within(top)) \
                or _explicit(top, options):
            continue
        value = cfg[top]
        if isinstance(value, (dict, list)):
            total += visit(value, top)
        elif keys is None and moved(value) is not None:
            cfg[top] = moved(value)
            total += 1
    return total


def repoint_pretrained(cfg, before, options=None) -> int:
    """``--cfg-options pretrained=PATH``: the config's ``pretrained``
    variable was already substituted into ``init_cfg`` when the file was
    read, so overriding it alone would change nothing. Every
    ``checkpoint`` of the model that still holds the old value (one set
    explicitly in the same command is kept) is pointed at the new one.
    Returns how many."""
    if not isinstance(before, str) or \
            not isinstance(cfg.get('pretrained'), str):
        return 0
    return repoint_variable(cfg, 'pretrained', before, options,
                            keys=('checkpoint', ),
                            within=lambda top: top == 'model')


def repoint_data_root(cfg, before, options=None) -> int:
    """``--cfg-options data_root=PATH``: every value of the data loaders
    and evaluators derived from the config's ``data_root`` variable (the
    data sets' ``data_root``, and paths built as ``data_root + '/...'``, as
    FGVC's folders are) follows the new one; a value set explicitly in the
    same command is kept. Returns how many."""
    return repoint_variable(
        cfg, 'data_root', before, options, path_prefix=True,
        within=lambda top: top.endswith(('_dataloader', '_evaluator')))


def repoint_prompt_lr_mult(cfg, before, options=None) -> int:
    """``--cfg-options prompt_lr_mult=M`` (the ADE20K configs' variable):
    like ``pretrained``, it was substituted into the optimizer's
    ``paramwise_cfg.method_lr_mult`` (read by
    :class:`~mmseg_ivpt.engine.optim.PromptOptimWrapperConstructor`) when
    the file was read; there it gets the new value unless the same command
    sets it. Returns how many."""
    return repoint_variable(cfg, 'prompt_lr_mult', before, options,
                            keys=('method_lr_mult', ),
                            within=lambda top: top == 'optim_wrapper',
                            convert=float)


#: the config variables ``--cfg-options`` reaches through (see
#: :func:`repoint_variables`)
REPOINTED = {'pretrained': repoint_pretrained,
             'data_root': repoint_data_root,
             'prompt_lr_mult': repoint_prompt_lr_mult}


def repoint_variables(cfg, before: dict, options) -> dict:
    """Apply every ``repoint_*`` of :data:`REPOINTED`; ``before`` holds the
    variables' values before ``options`` were merged. Returns
    ``{variable: values changed}`` for those that changed something."""
    done = {}
    for name, fn in REPOINTED.items():
        n = fn(cfg, before.get(name), options)
        if n:
            done[name] = n
    return done


def apply_cfg_options(cfg, options: Optional[dict]) -> Dict[str, int]:
    """``--cfg-options`` applied to ``cfg`` (in place) the one way every tool
    of this toolbox applies them (``tools/train.py``, ``test.py``,
    ``protocol.py``, ``count_params.py``, ``tools/analysis/``): an ``arch``
    preset an option reaches into is written out first
    (:func:`expand_arch_presets`), the options are merged, and the config
    variables of :data:`REPOINTED` carry their new value into the settings
    derived from them (:func:`repoint_variables`). An option mmengine cannot
    merge is a :class:`ConfigError` naming it. Returns
    :func:`repoint_variables`' count of what was repointed."""
    if not options:
        return {}
    before = {name: cfg.get(name) for name in REPOINTED}
    expand_arch_presets(cfg, options)
    try:
        cfg.merge_from_dict(options)
    except (TypeError, KeyError) as e:
        raise ConfigError(f'--cfg-options {" ".join(options)}: cannot be '
                          f'merged into the config: {e}') from None
    return repoint_variables(cfg, before, options)


def read_config(path: str, options: Optional[dict] = None):
    """The config at ``path`` with ``options`` applied
    (:func:`apply_cfg_options`)."""
    from mmengine.config import Config
    cfg = Config.fromfile(path)
    apply_cfg_options(cfg, options)
    return cfg


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
