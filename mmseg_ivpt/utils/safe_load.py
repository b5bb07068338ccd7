"""Loading mmengine checkpoints with ``torch.load(weights_only=True)``.

mmengine 0.10.7 calls ``torch.load(filename, map_location)`` without
``weights_only``. Since torch 2.6 that means ``weights_only=True``, and the
checkpoints mmengine itself writes fail to load: their ``message_hub`` holds
``HistoryBuffer`` objects with numpy arrays (and their statistics methods,
pickled through ``getattr``), and metrics are numpy scalars.

The fix here keeps ``weights_only=True`` and names the few extra types those
checkpoints hold (:func:`allowed_globals`). :func:`install_mmengine_loader`
puts :func:`safe_torch_load` behind mmengine's loader for local files, which
every path a user meets goes through: ``Runner`` ``load_from`` and
``resume``, ``tools/test.py``, ``mmengine.runner.load_checkpoint``,
``mmseg.apis.init_model``. A pickle that needs anything else is refused with
:class:`UnsafeCheckpointError`; nothing is ever loaded with
``weights_only=False``.
"""
import os
import pickle
from typing import Any, List

import torch

__all__ = ['UnsafeCheckpointError', 'allowed_globals', 'safe_torch_load',
           'install_mmengine_loader']


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs a pickled type that is not on the allow-list."""


def _numpy_globals() -> List[Any]:
    import numpy as np
    try:  # numpy >= 2
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    out = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar]
    # dtype classes (numpy >= 1.25 pickles dtypes through them)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        for name in ('Float16DType', 'Float32DType', 'Float64DType',
                     'Int8DType', 'Int16DType', 'Int32DType', 'Int64DType',
                     'UInt8DType', 'UInt16DType', 'UInt32DType',
                     'UInt64DType', 'BoolDType'):
            if hasattr(dtypes, name):
                out.append(getattr(dtypes, name))
    return out


# the statistics every HistoryBuffer registers (plus any registered later)
_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj, name: str):
    """Stands in for ``builtins.getattr`` while unpickling.

    ``HistoryBuffer.__getstate__`` pickles its statistics methods as
    ``getattr(HistoryBuffer, 'mean')``. A general ``getattr`` would reach any
    attribute of any allowed type, so only those look-ups are answered.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed = set(_DEFAULT_STATISTICS) | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'Unsupported global: getattr({obj!r}, {name!r}) is not a '
        f'HistoryBuffer statistics method')


def allowed_globals() -> List[Any]:
    """The non-tensor types an mmengine checkpoint may hold."""
    out = _numpy_globals()
    try:
        from mmengine.logging.history_buffer import HistoryBuffer
    except ImportError:  # the backbones alone, without mmengine
        return out
    out += [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr')]
    return out


def safe_torch_load(f, map_location=None):
    """``torch.load(f, weights_only=True)`` with :func:`allowed_globals`.

    Raises:
        UnsafeCheckpointError: the file needs a type outside the allow-list.
    """
    with torch.serialization.safe_globals(allowed_globals()):
        try:
            return torch.load(f, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as e:
            detail = str(e).split('\n')
            hint = next((s.strip() for s in detail
                         if 'Unsupported global' in s or 'GLOBAL' in s),
                        detail[0])
            raise UnsafeCheckpointError(
                f'refused to load {f!r}: it holds a pickled object that is '
                f'not on the allow-list of mmseg_ivpt.utils.safe_load '
                f'({hint}). Unpickling arbitrary objects can run code, so it '
                f'is not loaded. If you trust the file and the type, add it '
                f'with torch.serialization.add_safe_globals([...]) before '
                f'loading.') from None


def _load_from_local(filename: str, map_location=None):
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return safe_torch_load(filename, map_location=map_location)


def install_mmengine_loader() -> bool:
    """Make mmengine load local checkpoints through :func:`safe_torch_load`.
    Returns False when mmengine is not installed."""
    try:
        from mmengine.runner.checkpoint import CheckpointLoader
    except ImportError:
        return False
    CheckpointLoader.register_scheme(prefixes='', loader=_load_from_local,
                                     force=True)
    return True
