"""Checks of a config before any work starts: the data folders exist, the
heads take what the backbone gives, the heads have the data's classes and
the val/test data are the train data's task (:func:`check_data_fits`, which
also has every segmentation annotation checked as it loads). Each failure
is a :class:`ConfigError` naming the config key and what to do instead.
And, at load time, a checkpoint that does not fit the model of the config
(:func:`check_checkpoint_fits`, which ``tools/test.py`` runs, and
:func:`check_parts_fit`, which every load runs): a named
:class:`~mmseg_ivpt.models.checkpoint.CheckpointMismatchError` where
mmengine would only print "size mismatch" and test a random head.
"""
import importlib
import os.path as osp
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..models.checkpoint import (
    HEAD_KEYS,
    CheckpointMismatchError,
    abbrev_keys,
    detect_layout,
    unwrap_state_dict,
)
from ..models.vit import ViTEncoder, resolve_arch
from ..utils.safe_load import SOURCE_FILE_KEY


class ConfigError(ValueError):
    """A config that cannot run; raised before any work starts."""


def check_data(cfg, loaders: Iterable[str]) -> List[Tuple[dict, dict]]:
    """Every dataset of ``loaders`` points at folders / files that exist,
    and fits the model and the train data (:func:`check_data_fits`, whose
    annotation checks it returns). Changes nothing in ``cfg``."""
    from ..datasets.tasks import inner_datasets
    loaders = tuple(loaders)
    for loader in loaders:
        if not cfg.get(loader):
            continue
        for ds in inner_datasets(cfg[loader].get('dataset')):
            root = ds.get('data_root') or ''
            where = f'{loader}.dataset'
            if root and not osp.isdir(root):
                raise ConfigError(
                    f'{where}.data_root={root!r} does not exist. Point it at '
                    f'your data (in the config, or with --cfg-options '
                    f'{_data_root_option(cfg, root, where)}); docs/data.md '
                    'says how to prepare it')
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
    return check_data_fits(cfg, loaders)


def _data_root_option(cfg, root: str, where: str) -> str:
    """The option that fixes a missing ``data_root`` of ``where``: the
    config's own ``data_root`` variable where the data set's folder is
    derived from it (``--cfg-options data_root=PATH`` reaches every split,
    :func:`~.config.repoint_data_root`), else the data set's key."""
    var = cfg.get('data_root')
    if isinstance(var, str) and var and (
            root == var or root.startswith(var.rstrip('/') + '/')):
        under = root[len(var):].lstrip('/')
        return ('data_root=PATH, which every split follows' +
                (f' (here: PATH/{under})' if under else '') +
                f'; {where}.data_root=PATH sets this split alone')
    return f'{where}.data_root=PATH'


def _heads(model: dict, keys: Sequence[str]) -> List[tuple]:
    """(name, config) of every part ``keys`` of a model config (heads,
    neck), a list of heads named ``key[i]``."""
    out = []
    for key in keys:
        h = model.get(key)
        many = isinstance(h, (list, tuple))
        for i, head in enumerate(h if many else [h]):
            if isinstance(head, dict):
                out.append((f'{key}[{i}]' if many else key, head))
    return out


def backbone_class(model: dict, scope: Optional[str] = None) -> \
        Optional[type]:
    """The class ``model.backbone.type`` names, found as the runner will
    find it: the type itself when it is a class, else the entry of the
    ``MODELS`` registry of ``scope`` (the config's ``default_scope``), then
    of mmseg's and mmpretrain's. None when no installed registry has it."""
    t = (model.get('backbone') or {}).get('type')
    if isinstance(t, type):
        return t
    if not isinstance(t, str):
        return None
    for s in dict.fromkeys((scope or 'mmseg', 'mmseg', 'mmpretrain')):
        try:
            registry = importlib.import_module(f'{s}.registry').MODELS
        except (ImportError, AttributeError):
            continue  # not an installed toolbox with a MODELS registry
        cls = registry.get(t)
        if isinstance(cls, type):
            return cls
    return None


def is_vit_backbone(cls: Optional[type]) -> bool:
    """Whether a backbone class is built on this package's ViT encoder
    (:class:`~mmseg_ivpt.models.ViTEncoder`: every ``PromptTunedViT``
    method, present and future), whose channels and outputs
    :func:`check_model` knows from ``arch`` and ``out_indices``."""
    return isinstance(cls, type) and issubclass(cls, ViTEncoder)


def _neck_output(neck: dict, dims: int, n_in: int
                 ) -> Tuple[Optional[int], Optional[int]]:
    """(channels, number) of the feature maps a neck config gives; None
    where the config does not say (a neck type these checks do not
    know). mmseg's Feature2Pyramid keeps ``embed_dim`` channels, one map
    per ``rescales``; MultiLevelNeck, FPN and the like give
    ``out_channels``, ``num_outs`` (or one per ``scales``) maps."""
    chans = neck.get('out_channels')
    if chans is None and 'embed_dim' in neck:
        chans = neck['embed_dim']
    number = neck.get('num_outs')
    for key in ('rescales', 'scales'):
        if number is None and isinstance(neck.get(key), (list, tuple)):
            number = len(neck[key])
    return (chans if isinstance(chans, int) else None,
            number if isinstance(number, int) else None)


def _check_inputs(name: str, part: dict, chans: Optional[int],
                  n_maps: Optional[int], source: str, maps: str) -> None:
    """``part`` (a head or neck config at ``model.name``) takes
    ``chans``-channel maps, and indexes ``n_maps`` of them, from
    ``source`` (what gives them; ``maps`` says how many, for the
    messages); None: not checked."""
    for key in ('in_channels', 'embed_dim'):
        if chans is None or key not in part:
            continue
        got = part[key]
        if any(c != chans for c in (
                got if isinstance(got, (list, tuple)) else [got])):
            raise ConfigError(
                f'model.{name}.{key}={got} does not match {source} gives '
                f'{chans}-channel features')
    idx = part.get('in_index', -1)
    for i in (idx if isinstance(idx, (list, tuple)) else [idx]):
        if n_maps is not None and not -n_maps <= i < n_maps:
            raise ConfigError(
                f'model.{name}.in_index={idx} but {source.split(":")[0]} '
                f'returns {maps}')


def check_model(model: dict, scope: Optional[str] = None) -> None:
    """What feeds each part fits it, behind a ViT backbone of ours (a
    backbone class for which :func:`is_vit_backbone` holds; ``scope``: the
    config's ``default_scope``, where its type is looked up); other
    backbones are not checked. Without a neck the heads take the backbone's
    maps; with one, the neck takes them and the heads take the neck's (a
    neck may change the channels: Feature2Pyramid keeps them,
    MultiLevelNeck gives ``out_channels``; heads behind a neck of unknown
    output are not checked). And Mask2Former's class weights have one
    entry per class and one for "no object" (:func:`_check_class_weights`).
    """
    bb = model.get('backbone') or {}
    for name, head in _heads(model, HEAD_KEYS):
        _check_class_weights(name, head)
    if not is_vit_backbone(backbone_class(model, scope)):
        return
    try:
        dims = resolve_arch(bb.get('arch', 'b'))['embed_dims']
    except (ValueError, TypeError) as e:
        raise ConfigError(f'model.backbone.arch: {e}') from None
    n_out = len(bb['out_indices']) if isinstance(
        bb.get('out_indices'), (list, tuple)) else 1
    shown = getattr(bb['type'], '__name__', bb['type'])
    source = f'the backbone: {shown}(arch={bb.get("arch")!r})'
    chans, n_maps = dims, n_out
    maps = f'{n_out} feature map(s) (out_indices={bb.get("out_indices", -1)})'
    neck = model.get('neck')
    if isinstance(neck, dict):
        _check_inputs('neck', neck, dims, n_out, source, maps)
        chans, n_maps = _neck_output(neck, dims, n_out)
        source = f'the neck: {neck.get("type")}'
        maps = f'{n_maps} feature map(s)'
    for name, head in _heads(model, HEAD_KEYS):
        _check_inputs(name, head, chans, n_maps, source, maps)


#: Heads whose class layer has one output per class and one for "no
#: object" (mmseg's MaskFormer and Mask2Former: ``cls_embed``), so that
#: ``loss_cls.class_weight`` has ``num_classes + 1`` entries.
MASK_CLASSIFIERS = ('Mask2FormerHead', 'MaskFormerHead')


def _check_class_weights(name: str, head: dict) -> None:
    """A Mask2Former / MaskFormer head's ``loss_cls.class_weight`` (a list)
    has ``num_classes + 1`` entries: with another ``num_classes`` (set by
    --cfg-options) the loss would fail deep inside mmdet."""
    t = str(head.get('type', '')).split('.')[-1]
    weights = (head.get('loss_cls') or {}).get('class_weight')
    n = head.get('num_classes')
    if t not in MASK_CLASSIFIERS or not isinstance(
            weights, (list, tuple)) or not isinstance(n, int):
        return
    if len(weights) != n + 1:
        raise ConfigError(
            f'model.{name}.loss_cls.class_weight has {len(weights)} entries '
            f'but model.{name}.num_classes={n}: {t} weighs each class and '
            f'"no object" ({n} + 1 = {n + 1} entries; mmseg: [1.0] * '
            f'num_classes + [0.1]). Set both (--cfg-options '
            f'model.{name}.loss_cls.class_weight=...)')


# ------------------------------------------------------ the data vs the heads


def _inner_model(cfg) -> dict:
    """The model config, inside the TTA wrapper of ``tools/test.py --tta``."""
    model = cfg.get('model') or {}
    if 'backbone' not in model and isinstance(model.get('module'), dict):
        return model['module']
    return model


def _class_counts(cfg) -> List[Tuple[str, int]]:
    """(config key, num_classes) of every head, and of the data
    preprocessor the model gets (mmpretrain's batch augments use it)."""
    model = _inner_model(cfg)
    out = [(f'model.{name}.num_classes', head['num_classes'])
           for name, head in _heads(model, HEAD_KEYS)
           if head.get('num_classes') is not None]
    preprocessors = (('model.data_preprocessor',
                      model.get('data_preprocessor')),
                     ('data_preprocessor', cfg.get('data_preprocessor')))
    for key, dp in preprocessors:
        if isinstance(dp, dict):
            if dp.get('num_classes') is not None:
                out.append((f'{key}.num_classes', dp['num_classes']))
            break  # the model's own preprocessor wins over the top-level one
    return out


def _classes_text(classes: Sequence[str]) -> str:
    if list(classes) == [str(i) for i in range(len(classes))]:
        return ''  # VTAB-1k / FGVC: labels 0..C-1 carry no names
    shown = ', '.join(classes[:6]) + (', ...' if len(classes) > 6 else '')
    return f' ({shown})'


def _same_task_hint(where: str, task) -> str:
    kind, value = task.key[0], task.key[1]
    if kind == 'VTAB1k':
        return f'--cfg-options {where}.task={value}'
    if kind == 'FGVC':
        return f'--cfg-options {where}.name={value}'
    return f'give {where} the data set of train_dataloader.dataset'


def check_data_fits(cfg, loaders: Sequence[str]) -> List[Tuple[dict, dict]]:
    """The data of ``loaders`` fit the model and each other: every head's
    ``num_classes`` (and the data preprocessor's) is the number of classes
    of each data set (VTAB-1k / FGVC: its task's; mmseg: its ``metainfo`` /
    ``METAINFO`` classes); each val / test data set is the train data set's
    task (same VTAB-1k task, FGVC data set, or segmentation classes). Data
    sets whose classes cannot be known from the config (a folder-per-class
    ``CustomDataset``) are not checked.

    Returns, for each segmentation data set checked, (its dataset config,
    the :class:`~mmseg_ivpt.datasets.seg_checks.CheckSegAnnotation` that
    checks its masks as they load); :func:`.config_repair.
    arm_annotation_checks` puts them into the pipelines. Changes nothing in
    ``cfg``."""
    scope = cfg.get('default_scope')
    armed: List[Tuple[dict, dict]] = []
    if scope not in ('mmseg', 'mmpretrain'):
        return armed
    from ..datasets.tasks import dataset_task, inner_datasets

    def tasks_of(loader):
        ds = (cfg.get(loader) or {}).get('dataset')
        return [(d, dataset_task(d, scope)) for d in inner_datasets(ds)]

    train = {t.key: t for _, t in tasks_of('train_dataloader') if t}
    counts = _class_counts(cfg)
    for loader in loaders:
        where = f'{loader}.dataset'
        for ds, task in tasks_of(loader):
            if task is None:
                continue
            n = len(task.classes)
            for key, k in counts:
                if k != n:
                    what = 'predict classes the data do not have' if k > n \
                        else 'miss classes of the data'
                    raise ConfigError(
                        f'{key}={k} but {where} ({task.name}) has {n} '
                        f'classes{_classes_text(task.classes)}: the model '
                        f'would {what}. Set it to {n} (--cfg-options '
                        f'{key}={n}), or use the data set the model is for')
            if loader != 'train_dataloader' and len(train) == 1 and \
                    task.key not in train:
                other = next(iter(train.values()))
                raise ConfigError(
                    f'{where} is {task.name} but train_dataloader.dataset '
                    f'is {other.name}: its metric would score a model of '
                    f'one task on the labels of another. Make it the train '
                    f'task ({_same_task_hint(where, other)}), or train on '
                    f'the task you evaluate')
            if scope == 'mmseg':
                armed.append((ds, dict(
                    type='CheckSegAnnotation', num_classes=n,
                    ignore_index=(_inner_model(cfg).get('decode_head')
                                  or {}).get('ignore_index', 255),
                    dataset=where)))
    return armed


# ------------------------------------------------- the checkpoint vs the model
# (head, its layer with one output per class, outputs beyond the classes):
# mmseg's conv_seg, mmpretrain's fc, Mask2Former's cls_embed (+ "no object")
_CLASS_LAYERS = (('decode_head', 'decode_head.conv_seg.weight', 0),
                 ('decode_head', 'decode_head.cls_embed.weight', 1),
                 ('auxiliary_head', 'auxiliary_head.conv_seg.weight', 0),
                 ('head', 'head.fc.weight', 0))


def _unwrap_model(model):
    from mmengine.model import BaseTTAModel, is_model_wrapper
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def _not_this_model(path: str, sd: Dict, own: Dict) -> str:
    tops = ', '.join(sorted({k.split('.')[0] + '.*' for k in own}))
    try:
        layout = detect_layout(unwrap_state_dict(dict(sd)))
    except CheckpointMismatchError:
        layout = None
    if layout:
        return (f'{path} is a pretrained ViT ({layout} layout), not a '
                f'checkpoint of a trained model: none of its tensors is one '
                f'of the model ({tops}). tools/test.py tests what '
                f'tools/train.py wrote (its work_dir\'s iter_*.pth / '
                f'epoch_*.pth). To start from this ViT, make it the '
                f'backbone\'s pretrained file (--cfg-options '
                f'model.backbone.init_cfg.checkpoint={path}) and train')
    return (f'{path} holds none of the model\'s tensors ({tops}); its first '
            f'keys are {sorted(sd)[:6]}. Is it a checkpoint of another '
            f'model?')


def check_checkpoint_fits(model, checkpoint, path: str) -> None:
    """``checkpoint`` (loaded from ``path``) gives every tensor of
    ``model`` outside its prompt-tuned backbones (which check their own
    tensors, full or prompt-only) with the model's shape: a head of another
    shape (another ``num_classes``, other channels) or a missing head is a
    :class:`CheckpointMismatchError` naming the file, each tensor, both
    shapes and what to do; so is a file that holds none of the model's
    tensors (a pretrained ViT given as the checkpoint). Tensors the model
    does not have, and a missing ``auxiliary_head`` (training only), are
    left to mmengine's warning. mmengine's own loading only warns, and the
    test then runs a random head."""
    model = _unwrap_model(model)
    sd = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, dict) else None
    if not isinstance(sd, dict) or not sd:
        raise CheckpointMismatchError(f'{path} holds no state dict')
    sd = {re.sub(r'^module\.', '', k): v for k, v in sd.items()
          if hasattr(v, 'shape')}
    own = model.state_dict()
    if not set(sd) & set(own):
        raise CheckpointMismatchError(_not_this_model(path, sd, own))
    mine = _outside_backbones(model, own)
    missing = [k for k in mine if k not in sd and
               not k.endswith('num_batches_tracked') and
               not k.startswith('auxiliary_head.')]
    _raise_misfit(path, sd, mine, missing)


def _outside_backbones(model, own: Dict) -> Dict:
    """The entries of ``own`` (``model``'s state dict) outside its
    prompt-tuned backbones."""
    from ..models import PromptTuning
    skip = tuple(f'{n}.' for n, m in model.named_modules()
                 if n and isinstance(m, PromptTuning))
    return {k: v for k, v in own.items() if not (skip and k.startswith(skip))}


def _raise_misfit(path: str, sd: Dict, mine: Dict,
                  missing: Sequence[str] = ()) -> None:
    """A :class:`CheckpointMismatchError` naming every tensor of ``mine``
    (the model's) that ``sd`` (the checkpoint's, loaded from ``path``) has
    with another shape, and the ``missing`` ones; nothing if none."""
    wrong = [k for k, v in mine.items()
             if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    if not wrong and not missing:
        return
    lines = [f'{k}: checkpoint {tuple(sd[k].shape)} vs model '
             f'{tuple(mine[k].shape)}' for k in wrong]
    if missing:
        lines.append(f'missing in the checkpoint ({len(missing)}): '
                     f'{abbrev_keys(missing, 6)}')
    hint = ''
    for head, layer, extra in _CLASS_LAYERS:
        if layer in wrong and sd[layer].shape[0] != mine[layer].shape[0]:
            n_ckpt = sd[layer].shape[0] - extra
            n_model = mine[layer].shape[0] - extra
            hint = (f"The checkpoint's {head} predicts {n_ckpt} classes, "
                    f"this config's {n_model} (model.{head}.num_classes). ")
            break
    raise CheckpointMismatchError(
        f'{path} does not fit the model of this config:\n  ' +
        '\n  '.join(lines[:12]) + ('\n  ...' if len(lines) > 12 else '') +
        f'\n{hint}Load a checkpoint with the config it was trained with '
        f'(its work_dir holds a copy), or set the model\'s options to the '
        f'checkpoint\'s with --cfg-options.')


def check_parts_fit(module, state_dict, prefix: str, local_metadata,
                    *_) -> None:
    """A load-state-dict pre-hook (torch's signature) of a model holding a
    prompt-tuned backbone (an mmseg segmentor, an mmpretrain classifier):
    every tensor of ``state_dict`` outside the backbones that ``module``
    has with another shape (a head of another ``num_classes``) is a
    :class:`CheckpointMismatchError` naming the file, each tensor and both
    shapes, on every load: ``init_model``, the inferencers, ``load_from``,
    ``--resume``, the prompt bank, ``load_state_dict`` (mmengine would only
    warn, and predict with a random head). ``registry.py`` registers it on
    every module a prompt-tuned backbone is attached to."""
    path = local_metadata.get(SOURCE_FILE_KEY) or 'the checkpoint'
    sd = {k[len(prefix):]: v for k, v in state_dict.items()
          if k.startswith(prefix) and hasattr(v, 'shape')}
    _raise_misfit(path, sd, _outside_backbones(module, module.state_dict()))


def checkpoint_fit_hook(path: str):
    """A hook running :func:`check_checkpoint_fits` on the checkpoint the
    runner loads (``load_from``), before it goes into the model."""
    from mmengine.hooks import Hook

    class CheckpointFitHook(Hook):
        priority = 'VERY_HIGH'

        def after_load_checkpoint(self, runner, checkpoint) -> None:
            check_checkpoint_fits(runner.model, checkpoint, path)

    return CheckpointFitHook()
