"""What a data set config is for, read from the config alone (no file is
opened): the task and its classes (:func:`dataset_task`), and whether its
annotation files number the classes from 1 (:func:`reduce_zero_label_of`).
The checks before a run (:mod:`mmseg_ivpt.engine.checks`: the heads against
the classes, the val/test task against the train task) and the prompt bank
(its mask files) read them. Toolbox-free at import; a lookup imports the
scope's registry.
"""
import importlib
import inspect
from typing import Dict, Iterable, NamedTuple, Optional, Tuple


class DataError(ValueError):
    """A data set file that cannot be used."""


def parse_split_line(line: str, n_classes: int, task: str) -> Tuple[str, int]:
    """One non-blank line of a VTAB-1k split file (``relative/path label``):
    (the path, the label). ValueError saying what is wrong (a line of
    another form, a label outside ``0..n_classes-1``); the caller names the
    file and line."""
    parts = line.rsplit(maxsplit=1)
    if len(parts) != 2 or not parts[1].lstrip('-').isdigit():
        raise ValueError(f'expected "path label", got {line.strip()!r}')
    label = int(parts[1])
    if not 0 <= label < n_classes:
        raise ValueError(f'label {label} outside 0..{n_classes - 1} ({task} '
                         f'has {n_classes} classes)')
    return parts[0], label


class DataTask(NamedTuple):
    """The task a data set config is for."""
    #: equal for two configs of one task (other splits, other folders)
    key: tuple
    #: how a message names it, e.g. "VTAB-1k task 'kitti'"
    name: str
    #: the class names, in label order
    classes: Tuple[str, ...]


def inner_datasets(cfg) -> Iterable[dict]:
    """The data set configs inside a (possibly wrapped) data set config:
    ``RepeatDataset``, ``ClassBalancedDataset`` (``dataset``),
    ``ConcatDataset`` (``datasets``)."""
    if not isinstance(cfg, dict):
        return
    if 'dataset' in cfg:
        yield from inner_datasets(cfg['dataset'])
    elif 'datasets' in cfg:
        for d in cfg['datasets']:
            yield from inner_datasets(d)
    else:
        yield cfg


def dataset_class(ds_cfg, scope: str):
    """The registered class of a data set config (``type``) in ``scope``
    (``'mmseg'``, ``'mmpretrain'``), or None when unknown."""
    if not isinstance(ds_cfg, dict) or not ds_cfg.get('type'):
        return None
    if not isinstance(ds_cfg['type'], str):
        return ds_cfg['type'] if inspect.isclass(ds_cfg['type']) else None
    try:
        registry = importlib.import_module(f'{scope}.registry').DATASETS
        importlib.import_module('mmseg_ivpt.datasets')  # ours registered
        return registry.get(ds_cfg['type'])
    except (ImportError, KeyError, AttributeError):
        return None


def dataset_task(ds_cfg, scope: str) -> Optional[DataTask]:
    """The task of a data set config: what the data set class says of the
    config (``task_of_config``: VTAB-1k's ``task``, FGVC's ``name``), else
    its classes (the config's ``metainfo.classes``, else the class's
    ``METAINFO``); None when neither is known (e.g. mmpretrain's
    ``CustomDataset``, which reads its classes from the folders)."""
    cls = dataset_class(ds_cfg, scope)
    if cls is None:
        return None
    if hasattr(cls, 'task_of_config'):
        return cls.task_of_config(ds_cfg)
    meta = ds_cfg.get('metainfo') or {}
    classes = meta.get('classes') if isinstance(meta, dict) else None
    classes = classes or (getattr(cls, 'METAINFO', None) or {}).get('classes')
    if not classes or isinstance(classes, str):
        return None
    classes = tuple(str(c) for c in classes)
    return DataTask(('classes', classes), cls.__name__, classes)


def numbered_task(kind: str, what: str, name,
                  sizes: Dict[str, int]) -> Optional[DataTask]:
    """The task ``name`` of a benchmark whose labels are numbers (VTAB-1k,
    FGVC: classes ``'0'..'C-1'``, C = ``sizes[name]``); None if ``name``
    is not one of ``sizes``. ``what`` names the benchmark in messages."""
    if name not in sizes:
        return None
    return DataTask((kind, name), f'{what} {name!r}',
                    tuple(str(i) for i in range(sizes[name])))


def _default(cls, name: str):
    """The default of ``cls.__init__``'s argument ``name`` (searched up the
    class hierarchy, through ``**kwargs``), or None."""
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        try:
            param = inspect.signature(init).parameters.get(name)
        except (TypeError, ValueError):
            continue
        if param is not None and param.default is not param.empty:
            return param.default
    return None


def reduce_zero_label_of(ds_cfg, scope: str = 'mmseg') -> bool:
    """Whether a segmentation data set config has ``reduce_zero_label``
    (its annotation files hold 0 for "not labelled" and class c as c + 1,
    as ADE20K's): the config's value, else the data set class's default.
    mmseg's ``LoadAnnotations`` must agree with the data set (it asserts
    so), and ``tools/test.py --out`` writes its masks in the files'
    numbering (class index + 1 where this is True)."""
    if not isinstance(ds_cfg, dict):
        return False
    if ds_cfg.get('reduce_zero_label') is not None:
        return bool(ds_cfg['reduce_zero_label'])
    cls = dataset_class(ds_cfg, scope)
    return bool(_default(cls, 'reduce_zero_label')) if cls else False
