"""Registration of the toolbox's modules in the OpenMMLab registries.

One implementation, two registrations: the backbones go into mmseg's and
mmpretrain's ``MODELS`` (whichever is installed), so configs of either
toolbox reach them with ``custom_imports=dict(imports=['mmseg_ivpt'])``.
``PromptOnlyCheckpointHook`` goes into mmengine's root ``HOOKS`` (seen from
both), the generated demo data set into mmseg's ``DATASETS``, VTAB-1k and
FGVC into mmpretrain's. A model a prompt-tuned backbone is attached to
(the segmentor, the classifier) checks the shapes of its heads on every
load (:func:`watch_backbone_parents`).
"""
import importlib
import logging

from torch.nn.modules.module import register_module_module_registration_hook

from .models import GatedViT, PromptedSwin, PromptedViT, PromptTuning
from .utils.safe_load import install_mmengine_loader

BACKBONES = (PromptedViT, GatedViT, PromptedSwin)
_WATCHING = []  # the handle of the registration hook, once installed


def _check_parts_on_load(parent, name, child):
    """torch's module-registration hook: a module that a prompt-tuned
    backbone is attached to (``segmentor.backbone = ...`` as mmseg's and
    mmpretrain's models do it) gets the pre-hook checking its other parts
    against each state dict it loads (``engine.checks.check_parts_fit``)."""
    if isinstance(child, PromptTuning) and \
            not getattr(parent, '_ivpt_checks_parts', False):
        from .engine.checks import check_parts_fit
        parent.register_load_state_dict_pre_hook(check_parts_fit)
        parent._ivpt_checks_parts = True


def watch_backbone_parents() -> None:
    """A head of another shape than the checkpoint's (another
    ``num_classes``) is an error on every load, not mmengine's
    "size mismatch" warning and a random head: ``mmseg.apis.init_model``,
    ``MMSegInferencer``, mmpretrain's inferencers, ``load_from`` and
    ``--resume`` load through mmengine, whose loader we do not change.
    So the check sits in the model: torch's module-registration hook (one,
    installed once) gives every module a prompt-tuned backbone is attached
    to the load pre-hook :func:`~.engine.checks.check_parts_fit`."""
    if not _WATCHING:
        _WATCHING.append(
            register_module_module_registration_hook(_check_parts_on_load))


class _MMEngineLogHandler(logging.Handler):
    """Forwards the backbones' log records (``logging.getLogger(
    'mmseg_ivpt')``) to mmengine's current logger, so they appear in the
    run's log like mmengine's own lines."""

    def emit(self, record: logging.LogRecord) -> None:
        from mmengine.logging import print_log
        try:
            print_log(record.getMessage(), logger='current',
                      level=record.levelno)
        except Exception:  # noqa: BLE001 - logging must never break a run
            self.handleError(record)


def _forward_logs_to_mmengine() -> None:
    log = logging.getLogger('mmseg_ivpt')
    if not any(isinstance(h, _MMEngineLogHandler) for h in log.handlers):
        log.addHandler(_MMEngineLogHandler())
        log.setLevel(logging.INFO)
        log.propagate = False


def register_all() -> list:
    """Register everything and install the safe checkpoint loader.
    Returns the scopes the backbones were registered into."""
    if install_mmengine_loader():
        importlib.import_module('mmseg_ivpt.engine')
        watch_backbone_parents()
        # mmengine's FLOP counter: count SDPA attention (engine/flops.py)
        importlib.import_module(
            'mmseg_ivpt.engine.flops').install_flop_handles()
        _forward_logs_to_mmengine()
    scopes = []
    for scope in ('mmseg', 'mmpretrain'):
        try:
            registry = importlib.import_module(f'{scope}.registry').MODELS
        except ImportError:
            continue
        for cls in BACKBONES:
            registry.register_module(name=cls.__name__, module=cls,
                                     force=True)
        scopes.append(scope)
    if scopes:
        importlib.import_module('mmseg_ivpt.datasets')
    return scopes
