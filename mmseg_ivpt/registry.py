"""Registration of the toolbox's modules in the OpenMMLab registries.

One implementation, two registrations: the backbones go into mmseg's and
mmpretrain's ``MODELS`` (whichever is installed), so configs of either
toolbox reach them with ``custom_imports=dict(imports=['mmseg_ivpt'])``.
``PromptOnlyCheckpointHook`` goes into mmengine's root ``HOOKS`` (seen from
both), the generated demo data set into mmseg's ``DATASETS``, VTAB-1k and
FGVC into mmpretrain's.
"""
import importlib
import logging

from .models import GatedViT, PromptedSwin, PromptedViT
from .utils.safe_load import install_mmengine_loader

BACKBONES = (PromptedViT, GatedViT, PromptedSwin)


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
