"""PromptBank: the tasks of this toolbox served by one frozen ViT, mixed in
one batch (docs/bank.md).

A task is a config of this toolbox (classification in the mmpretrain scope,
segmentation in the mmseg scope) and a checkpoint it trained, prompt-only or
full. The bank builds every task's model, makes the frozen ViT of each the
same tensors (:class:`~mmseg_ivpt.models.multitask.TaskMux`: one copy,
whatever the number of tasks) and loads each checkpoint onto it, refusing a
task trained on another ViT: a prompt-only checkpoint records the
fingerprint of the ViT it was trained on, a full one carries the ViT itself,
which must equal the bank's tensor for tensor.

:meth:`PromptBank.predict` takes images and the task of each. Each image goes
through its task's own test pipeline and data preprocessor (as mmseg's
``inference_model`` and mmpretrain's inferencer do); the task's adapter
(:mod:`.adapters`, one per toolbox) says from the task's model and config
what its inference feeds the backbone (the batch, or the crops of mmseg's
sliding window); all those inputs of all tasks go through the shared blocks
in one pass (``mode='pad'``) or one pass per sequence length, tasks mixed
(``'group'``); the adapter then finishes each task's inference from its
features with the model's own neck, heads and post-processing. No model is
changed while it predicts.

Threads: :meth:`PromptBank.predict` may run in any number of threads at
once, and :meth:`PromptBank.add_task` / :meth:`PromptBank.remove_task`
while it does. Each call takes the table of tasks as it is when the call
starts (an immutable mapping, replaced whole under a lock by an add or a
remove) and keeps everything it computes in its own variables; a removed
task leaves the shared ViT once the calls that were using it have
returned (docs/bank.md, "Threads").
"""
import copy
import os
import threading
from collections import Counter, OrderedDict
from types import MappingProxyType
from typing import (
    Dict,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy as np
import torch
from torch import Tensor, nn

from ..models.checkpoint import CheckpointMismatchError, EncoderMismatchError
from ..models.multitask import (
    MUX_MODES,
    TaskMux,
    check_task_backbone,
    tensor_bytes,
)
from .adapters import AdapterError, TaskAdapter, adapter_for
from .inference import scope_of
from .prediction import TaskInfo
from .prediction import label_mask as _label_mask

#: What a task entry of a bank has; ``cfg_options`` is optional.
TASK_KEYS = ('name', 'config', 'checkpoint')
OPTIONAL_TASK_KEYS = ('cfg_options', )
BANK_KEYS = ('encoder', 'tasks')
OPTIONAL_BANK_KEYS = ('device', 'mode')
KINDS = {'mmseg': 'segmentation', 'mmpretrain': 'classification'}

ImageInput = Union[str, np.ndarray]


class BankError(ValueError):
    """A bank or a call of it is malformed; the message names the field."""


class _Task(NamedTuple):
    """One task of a bank, immutable once built."""

    info: TaskInfo
    model: nn.Module
    #: the test pipeline without its loading steps
    pipeline: object
    adapter: TaskAdapter


def _check_keys(what: str, doc, required: Sequence[str],
                optional: Sequence[str]) -> None:
    """A named error unless ``doc`` is a mapping with every ``required``
    key set and no key outside ``required`` + ``optional``."""
    if not isinstance(doc, dict):
        raise BankError(f'{what} must be a mapping with keys '
                        f'{list(required)}, got {doc!r}')
    missing = [k for k in required if not doc.get(k)]
    extra = [k for k in doc if k not in tuple(required) + tuple(optional)]
    if missing or extra:
        raise BankError(f'{what}: missing {missing}, unknown {extra}; '
                        f'allowed: {list(required)} and optionally '
                        f'{list(optional)}')


def _check_spec(spec, i: int) -> dict:
    name = spec.get('name', 'no name') if isinstance(spec, dict) else None
    _check_keys(f'tasks[{i}] ({name})', spec, TASK_KEYS, OPTIONAL_TASK_KEYS)
    if not isinstance(spec['name'], str):
        raise BankError(f'tasks[{i}]: name must be a string, got '
                        f'{spec["name"]!r}')
    return spec


def _check_files(spec: dict) -> None:
    for key in ('config', 'checkpoint'):
        if not os.path.isfile(spec[key]):
            raise FileNotFoundError(
                f'task {spec["name"]!r}: {key} {spec[key]} does not exist')


class PromptBank:
    """One frozen ViT and any number of tasks trained on it.

    Args:
        encoder: the pretrained ViT file every task was trained on (the
            file its ``init_cfg`` named; any layout the backbones read).
        tasks: dicts with ``name``, ``config`` (a config file of this
            toolbox), ``checkpoint`` (prompt-only or full) and optionally
            ``cfg_options`` (a dict merged into the config, as
            ``--cfg-options``).
        device: where the bank runs.
        mode: ``'group'`` (one pass per sequence length) or ``'pad'`` (one
            pass, padded), how sequences of different lengths share the
            blocks (:mod:`mmseg_ivpt.models.multitask`; docs/bank.md says
            why ``'group'`` is the default).

    Attributes: ``mux`` (the :class:`TaskMux`); ``names``, ``models`` (name
    -> the task's model, its backbone sharing the ViT) and ``kinds`` (name
    -> ``'classification'`` / ``'segmentation'``) are read from the task
    table of the moment (:meth:`task_info` for one task).

    Threads: :meth:`predict`, :meth:`add_task`, :meth:`remove_task`,
    :meth:`memory` may be called from any number of threads at once
    (module docstring; docs/bank.md, "Threads").
    """

    def __init__(self, encoder: str, tasks: Sequence[dict],
                 device: str = 'cpu', mode: str = 'group'):
        if mode not in MUX_MODES:
            raise BankError(f'mode={mode!r}; allowed: {MUX_MODES}')
        if not tasks:
            raise BankError('a bank needs at least one task')
        specs = [_check_spec(s, i) for i, s in enumerate(tasks)]
        names = [s['name'] for s in specs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise BankError(f'two tasks are named {dup[0]!r}; task names '
                            f'must be unique (names: {names})')
        if '://' not in encoder and not os.path.isfile(encoder):
            raise FileNotFoundError(
                f'encoder {encoder} does not exist (the pretrained ViT file '
                f'the tasks were trained on; docs/checkpoints.md)')
        for s in specs:
            _check_files(s)
        self.encoder_path, self.device, self.mode = encoder, device, mode
        self.mux: Optional[TaskMux] = None
        # _lock guards the task table and the counts of running calls per
        # task (_busy; _idle is signalled when a call returns); _edit lets
        # one add / remove / memory report run at a time
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._edit = threading.Lock()
        self._busy: Counter = Counter()
        self._tasks: Mapping[str, _Task] = MappingProxyType({})
        for s in specs:
            self._publish(self._build(s))

    # ------------------------------------------------------------- tasks
    def add_task(self, name: str, config: str, checkpoint: str,
                 cfg_options: Optional[dict] = None) -> None:
        """Add a task to a bank in service, with the constructor's checks
        (its ViT must be the bank's); costs only what the task adds. Calls
        of :meth:`predict` that started before it returns do not see the
        task and are not held up by it."""
        spec = dict(name=name, config=config, checkpoint=checkpoint)
        if cfg_options:
            spec['cfg_options'] = cfg_options
        with self._edit:
            _check_spec(spec, len(self._tasks))
            if name in self._tasks:
                raise BankError(f'two tasks are named {name!r}; task names '
                                f'must be unique (names: {self.names})')
            _check_files(spec)
            self._publish(self._build(spec))

    def remove_task(self, name: str) -> None:
        """Drop task ``name``: calls of :meth:`predict` from now on do not
        know it; the calls already using it finish with it (this waits for
        them, they do not wait), then its tensors leave the bank (the
        shared ViT stays)."""
        with self._edit, self._lock:
            if name not in self._tasks:
                raise BankError(f'unknown task {name!r}; the bank has '
                                f'{self.names}')
            if len(self._tasks) == 1:
                raise BankError(f'{name!r} is the last task; a bank needs '
                                f'at least one')
            self._tasks = MappingProxyType(
                {n: t for n, t in self._tasks.items() if n != name})
            self._idle.wait_for(lambda: not self._busy[name])
            del self.mux.tasks[name]

    def _publish(self, task: _Task) -> None:
        """The task table with ``task`` added, as one swap."""
        with self._lock:
            self._tasks = MappingProxyType({**self._tasks,
                                            task.info.name: task})

    @property
    def names(self) -> List[str]:
        return list(self._tasks)

    @property
    def models(self) -> Dict[str, nn.Module]:
        return {n: t.model for n, t in self._tasks.items()}

    @property
    def kinds(self) -> Dict[str, str]:
        return {n: t.info.kind for n, t in self._tasks.items()}

    def task_info(self, name: str) -> TaskInfo:
        """What a prediction's JSON needs of task ``name``
        (:func:`~.prediction.prediction_json`): name, kind, class names,
        the offset of its mask files, the input size of its ViT."""
        table = self._tasks
        if name not in table:
            raise BankError(f'unknown task {name!r}; the bank has '
                            f'{list(table)}')
        return table[name].info

    @classmethod
    def from_yaml(cls, path: str, **overrides) -> 'PromptBank':
        """A bank from a YAML file (docs/bank.md): ``encoder``, ``tasks``
        (each ``name``, ``config``, ``checkpoint``, optional
        ``cfg_options``), optional ``device`` and ``mode``. Relative paths
        are relative to the YAML file's folder. ``overrides`` (device,
        mode) win over the file."""
        kw = read_bank_yaml(path)
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kw)

    # -------------------------------------------------------------- build
    def _build(self, spec: dict) -> _Task:
        """Task ``spec``'s model on the bank's device, its backbone joined
        to the mux and its checkpoint loaded (not yet in the task table;
        the mux is left as it was if this fails)."""
        from mmengine.registry import DefaultScope

        from ..engine.config import read_config
        name = spec['name']
        # the task's options as tools/train.py applies them (arch presets,
        # pretrained= / data_root= reaching the values derived from them)
        cfg = read_config(spec['config'], spec.get('cfg_options'))
        scope = scope_of(cfg)
        registry = _registry(scope)
        if cfg.get('data_preprocessor'):  # a top-level one, as the runner
            cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
        with DefaultScope.overwrite_default_scope(scope):
            model = registry.MODELS.build(cfg.model)
            pipeline = _test_pipeline(cfg, registry)
        try:
            adapter = adapter_for(scope, name, model)
        except AdapterError as e:
            raise BankError(str(e)) from None
        if self.mux is None:  # mux.add checks the others
            check_task_backbone(name, model.backbone)
            self.mux = TaskMux.from_pretrained(
                self.encoder_path, model.backbone).to(self.device)
        # on the device before it joins (the mux's tensors are there):
        # moving it after would rewrite the shared ViT that other threads
        # may be running
        model.to(self.device)
        self.mux.add(name, model.backbone)
        try:
            meta = self._load_checkpoint(name, model, spec['checkpoint'],
                                         spec['config'])
        except Exception:
            del self.mux.tasks[name]  # the bank stays as it was
            raise
        model.cfg = cfg
        model.dataset_meta = meta.get('dataset_meta')
        model.eval()
        offset = int(_reduce_zero_label(cfg, model.dataset_meta)) \
            if scope == 'mmseg' else None
        info = TaskInfo(name, KINDS[scope],
                        (model.dataset_meta or {}).get('classes'), offset,
                        tuple(int(v) for v in model.backbone.img_size))
        return _Task(info, model, pipeline, adapter)

    def _load_checkpoint(self, name: str, model: nn.Module, path: str,
                         config: str = 'its config') -> dict:
        """Load ``path`` into task ``name``'s model whose backbone already
        shares the bank's ViT; returns the checkpoint's ``meta``. The shared
        tensors are never written: a full checkpoint's frozen ViT must equal
        them (else :class:`EncoderMismatchError`) and is then left out; a
        prompt-only one is checked by its recorded fingerprint."""
        from mmengine.runner.checkpoint import _load_checkpoint_to_model

        from ..utils.safe_load import load_checkpoint_file
        ckpt = load_checkpoint_file(path, map_location='cpu')
        if not isinstance(ckpt, dict):
            raise BankError(f'task {name!r}: {path} is not a checkpoint '
                            f'dict')
        sd = ckpt.get('state_dict', ckpt)
        meta_sd = getattr(sd, '_metadata', OrderedDict())
        if sd and all(k.startswith('module.') for k in sd):
            sd = OrderedDict((k[len('module.'):], v) for k, v in sd.items())
        bb = model.backbone
        own = bb.state_dict()
        frozen = {f'backbone.{k}': own[k]
                  for k in bb.encoder_state_dict_keys()}
        differ = [k for k in frozen if k in sd and (
            sd[k].shape != frozen[k].shape
            or not torch.equal(sd[k].to(frozen[k]), frozen[k]))]
        if differ:
            raise EncoderMismatchError(
                f'task {name!r}: {path} holds another frozen ViT than the '
                f"bank's encoder {self.mux.encoder.pretrained_path} "
                f'({len(differ)} tensors differ, e.g. {differ[:3]}); its '
                f'heads and prompts belong to that ViT')
        kept = OrderedDict((k, v) for k, v in sd.items() if k not in frozen)
        kept._metadata = meta_sd
        try:
            _load_checkpoint_to_model(model, dict(state_dict=kept),
                                      strict=True)
        except CheckpointMismatchError as e:  # the model's own checks
            named = path in str(e) or os.path.abspath(path) in str(e)
            raise type(e)(f'task {name!r}: ' + ('' if named else f'{path}: ')
                          + str(e)) from None
        except RuntimeError as e:  # mmengine's strict loading: the heads
            lines = [ln.strip() for ln in str(e).splitlines()
                     if ln.strip() and 'do not match exactly' not in ln]
            raise CheckpointMismatchError(
                f'task {name!r}: {path} does not fit the model that '
                f'{config} builds:\n  ' + '\n  '.join(lines[:8]) +
                '\nGive the task the config it was trained with (the copy '
                'in its work_dir), or cfg_options that make the model the '
                "checkpoint's (e.g. the head's num_classes)") from None
        return ckpt.get('meta') or {}

    # ------------------------------------------------------------ predict
    def predict(self, images: Sequence[ImageInput], tasks: Sequence[str],
                mode: Optional[str] = None) -> list:
        """The prediction of each image by its task, in the given order:
        mmpretrain ``DataSample`` (``pred_score``, ``pred_label``) for a
        classification task, mmseg ``SegDataSample`` (``pred_sem_seg``,
        ``seg_logits``) for a segmentation task; each equal to what the
        task's model alone gives. ``images``: paths or BGR uint8 arrays
        (H, W, 3); ``tasks``: one name per image. All images go through
        the shared blocks together: one pass (``mode='pad'``) or one pass
        per sequence length, tasks mixed (``'group'``, the default).

        Reentrant: the call works on the task table of its start and its
        own variables only (class docstring)."""
        mode = mode or self.mode
        if mode not in MUX_MODES:
            raise BankError(f'mode={mode!r}; allowed: {MUX_MODES}')
        if isinstance(tasks, str) or isinstance(images, (str, np.ndarray)):
            raise BankError('images and tasks are lists, one task name per '
                            'image')
        images, tasks = list(images), list(tasks)
        if len(images) != len(tasks):
            raise BankError(f'{len(images)} images but {len(tasks)} task '
                            f'names; give one task per image')
        used = set(tasks)
        with self._lock:
            table = self._tasks
            unknown = sorted(used - set(table), key=str)
            if unknown:
                raise BankError(f'unknown task {unknown[0]!r}; the bank has '
                                f'{list(table)}')
            self._busy.update(used)
        try:
            with torch.no_grad():
                return self._predict(table, images, tasks, mode)
        finally:
            with self._lock:
                self._busy.subtract(used)
                for n in used:
                    if not self._busy[n]:
                        del self._busy[n]
                self._idle.notify_all()

    def _predict(self, table: Mapping[str, _Task], images, tasks,
                 mode) -> list:
        # 1. each image through its task's pipeline and preprocessor;
        #    units: the images of one task and one input size
        units: Dict[tuple, List[Tuple[int, Tensor, object]]] = {}
        for i, (img, name) in enumerate(zip(images, tasks)):
            x, sample = _prepare(table[name], img)
            units.setdefault((name, tuple(x.shape[1:])), []).append(
                (i, x, sample))
        # 2. what each unit's inference gives its backbone
        plans = []
        for (name, _), items in units.items():
            task = table[name]
            inputs = torch.cat([x for _, x, _ in items])
            samples = [s for _, _, s in items]
            plans.append((task, items, inputs, samples,
                          task.adapter.backbone_inputs(inputs, samples)))
        # 3. one pass of all of them through the shared blocks
        mux_units: Dict[tuple, List[Tensor]] = {}
        for task, _, _, _, calls in plans:
            for c in calls:
                mux_units.setdefault((task.info.name, tuple(c.shape[1:])),
                                     []).append(c)
        keys = list(mux_units)
        outs = self.mux([(k[0], torch.cat(mux_units[k])) for k in keys],
                        mode=mode)
        feats = {}
        for k, out in zip(keys, outs):
            sizes = [c.shape[0] for c in mux_units[k]]
            feats[k] = list(zip(*(o.split(sizes) for o in out)))
        # 4. each unit's inference finished from its features
        results = [None] * len(images)
        for task, items, inputs, samples, calls in plans:
            mine = [feats[(task.info.name, tuple(c.shape[1:]))].pop(0)
                    for c in calls]
            preds = task.adapter.finish(inputs, samples, mine)
            for (i, _, _), p in zip(items, preds):
                results[i] = p
        return results

    def label_mask(self, name: str, pred) -> np.ndarray:
        """The mask file of a segmentation prediction of task ``name``
        (H, W): what ``tools/test.py --out`` writes for the task's config
        (mmseg's IoUMetric), the numbering of the task's annotation files:
        the class index of each pixel, + 1 where the task's data set has
        ``reduce_zero_label`` (ADE20K, the shapes set: the files hold 0
        for "not labelled" and class c as c + 1). ``pred.pred_sem_seg``
        itself holds the class index, as mmseg's ``inference_model``."""
        table = self._tasks
        if name not in table or table[name].info.kind != 'segmentation':
            raise BankError(f'{name!r} is not a segmentation task of the '
                            f'bank ({list(table)})')
        return _label_mask(table[name].info, pred)

    # ------------------------------------------------------------- memory
    def memory(self) -> dict:
        """Bytes of the weights: ``shared`` (the ViT, once), per task what
        it adds (``tasks``: its method's tensors, heads, any resampled
        position table it alone uses), the bank in all (``bank``) and the
        tasks as separate models (``separate``: each with its own ViT)."""
        with self._edit:  # no task joins the mux while it is counted
            shared = self.mux.shared_tensors()
            per_task, separate, everything = {}, 0, list(shared)
            for name, t in self._tasks.items():
                ts = list(t.model.parameters()) + list(t.model.buffers())
                everything += ts
                per_task[name] = tensor_bytes(self.mux.own_tensors(t.model))
                separate += tensor_bytes(ts)
        return dict(shared=tensor_bytes(shared), tasks=per_task,
                    bank=tensor_bytes(everything), separate=separate)


def read_bank_yaml(path: str) -> dict:
    """The keyword arguments of :class:`PromptBank` that a bank YAML file
    gives (:meth:`PromptBank.from_yaml`), its structure checked (named
    :class:`BankError`), relative paths made relative to its folder; no
    file it names is read."""
    import yaml
    with open(path) as f:
        doc = yaml.safe_load(f)
    _check_keys(path, doc, BANK_KEYS, OPTIONAL_BANK_KEYS)
    if not isinstance(doc['tasks'], list):
        raise BankError(f'{path}: tasks must be a list of tasks')
    here = os.path.dirname(os.path.abspath(path))

    def rel(p):
        return p if '://' in str(p) else os.path.join(
            here, os.path.expanduser(str(p)))

    tasks = []
    for i, spec in enumerate(doc['tasks']):
        spec = dict(_check_spec(spec, i))
        spec['config'], spec['checkpoint'] = rel(spec['config']), rel(
            spec['checkpoint'])
        tasks.append(spec)
    kw = {k: doc[k] for k in OPTIONAL_BANK_KEYS if k in doc}
    return dict(encoder=rel(doc['encoder']), tasks=tasks, **kw)


def _prepare(task: _Task, image: ImageInput):
    """(inputs (1, C, H, W), data sample) of one image for ``task``, as the
    toolbox's own inference prepares it."""
    from mmengine.dataset import pseudo_collate
    if isinstance(image, np.ndarray):
        img, data = image, {}
    else:
        import mmcv
        img = mmcv.imread(image)
        if img is None:
            raise BankError(f'cannot read image {image!r}')
        data = dict(img_path=image)
    data.update(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])
    data = task.pipeline(data)
    data = task.model.data_preprocessor(pseudo_collate([data]), False)
    return data['inputs'], data['data_samples'][0]


def _registry(scope: str):
    """The registry module of a scope (mmseg.registry or
    mmpretrain.registry), importing the toolbox and mmseg_ivpt."""
    import importlib
    importlib.import_module('mmseg_ivpt')  # registers the backbones
    importlib.import_module(f'{scope}.models')
    importlib.import_module(f'{scope}.datasets')
    return importlib.import_module(f'{scope}.registry')


def _reduce_zero_label(cfg, dataset_meta: Optional[dict]) -> bool:
    """Whether the task's test data set numbers its annotation files from
    1 (reduce_zero_label): its config's, else what the checkpoint
    recorded of the training data."""
    from ..datasets.tasks import inner_datasets, reduce_zero_label_of
    loader = cfg.get('test_dataloader') or {}
    for ds in inner_datasets(loader.get('dataset')):
        return reduce_zero_label_of(ds, 'mmseg')
    return bool((dataset_meta or {}).get('reduce_zero_label'))


def _test_pipeline(cfg, registry):
    """The config's test pipeline without its loading steps (the bank loads
    images itself), built in the config's scope."""
    from mmengine.dataset import Compose
    loader = cfg.get('test_dataloader') or {}
    steps = (loader.get('dataset') or {}).get('pipeline') or \
        cfg.get('test_pipeline')
    if not steps:
        raise BankError('the config has no test pipeline '
                        '(test_dataloader.dataset.pipeline)')
    return Compose([registry.TRANSFORMS.build(copy.deepcopy(t))
                    for t in steps if not str(t['type']).startswith('Load')])


__all__ = ['BankError', 'PromptBank', 'read_bank_yaml']
