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

:func:`load_checkpoint_file` is the one front door for local files (mmengine's
loader and the backbones' ``init_cfg`` both use it): a file that is not a
checkpoint, or a damaged one, is a
:class:`~mmseg_ivpt.utils.integrity.CheckpointFileError` naming the file and
what to do; the tensor checksum this toolbox writes is verified; the file's
absolute path is recorded where a prompt-only backbone looks for it.
"""
import os
import pickle
from typing import Any, List

import torch

from .integrity import CheckpointFileError, diagnose_file, verify_checksum

__all__ = ['UnsafeCheckpointError', 'allowed_globals', 'safe_torch_load',
           'install_mmengine_loader', 'load_checkpoint_file']


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
            if 'GLOBAL' not in str(e) and 'Unsupported global' not in str(e):
                raise  # a damaged pickle, not a foreign type
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


#: key a prompt-only backbone's metadata gets: the file it was loaded from
SOURCE_FILE_KEY = 'checkpoint_file'
#: key of a prompt-tuned backbone's metadata that holds its settings (what
#: it computes: its type, method and encoder options; models/prompt_tuning)
SETTINGS_KEY = 'settings'


def load_checkpoint_file(filename: str, map_location=None):
    """Load a local checkpoint file: :func:`safe_torch_load` behind a check
    of what the file is, with its checksum verified.

    Raises:
        FileNotFoundError: no such file.
        CheckpointFileError: empty, text, npz, truncated or unreadable; the
            message names the file and what to do.
        CorruptCheckpointError: the tensors differ from their checksum.
        UnsafeCheckpointError: a pickled type outside the allow-list.
    """
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found.')
    problem = diagnose_file(filename)
    if problem:
        raise CheckpointFileError(f'{filename} {problem}')
    try:
        ckpt = safe_torch_load(filename, map_location=map_location)
    except UnsafeCheckpointError:
        raise
    except (RuntimeError, EOFError, OSError, KeyError, ValueError,
            pickle.UnpicklingError) as e:
        raise CheckpointFileError(
            f'{filename} cannot be read as a torch checkpoint '
            f'({type(e).__name__}: {str(e).splitlines()[0][:200]}); it is '
            f'damaged or of another format. Copy it again, or use an '
            f'earlier checkpoint') from None
    verify_checksum(ckpt, filename)
    _record_source(ckpt, os.path.abspath(filename))
    return ckpt


def _record_source(ckpt, path: str) -> None:
    """Tell the model (the root metadata entry) and its prompt-tuned
    backbones (entries with a recorded pretrained file or settings) which
    file they are being loaded from: a pretrained path relative to the
    checkpoint is resolved from it, and errors name it."""
    sd = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    for name, entry in (getattr(sd, '_metadata', None) or {}).items():
        if isinstance(entry, dict) and (
                name == '' or 'pretrained' in entry or SETTINGS_KEY in entry):
            entry[SOURCE_FILE_KEY] = path


def _load_from_local(filename: str, map_location=None):
    return load_checkpoint_file(filename, map_location=map_location)


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
