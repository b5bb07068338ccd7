"""Prompt-only checkpoints: the one place that writes and reads what such a
checkpoint keeps about the frozen encoder it was trained on.

A prompt-only state dict is a model's state dict without the frozen
encoder tensors of its prompt-tuned backbones (each backbone declares them:
:meth:`~.prompt_tuning.PromptTuning.frozen_state_dict_keys`). In their
place the state dict's metadata of each such backbone (``_metadata[name]``,
``name`` its module path, e.g. ``'backbone'``) holds the *record*:

* ``pretrained``: the pretrained file as the config wrote it;
* ``pretrained_abs``: its absolute path (a URL as it is);
* ``pretrained_rel``: its path relative to the checkpoint's folder (local
  files only);
* ``encoder_fingerprint``:
  :func:`~mmseg_ivpt.utils.integrity.encoder_fingerprint` of the file's
  encoder tensors.

Loading adds ``checkpoint_file`` (the file being read,
:data:`~mmseg_ivpt.utils.safe_load.SOURCE_FILE_KEY`) to every record.
:func:`load_frozen_encoder` reads the record back: it finds the pretrained
file (:func:`pretrained_candidates`), loads it, and checks the fingerprint.

``engine/hooks.py`` (``PromptOnlyCheckpointHook``) writes through
:func:`prompt_only_state_dict`; the backbones read through
:func:`load_frozen_encoder`. Plain torch.
"""
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional

from ..utils.integrity import CheckpointFileError
from ..utils.safe_load import SOURCE_FILE_KEY
from .checkpoint import (
    ALLOW_OTHER_ENCODER,
    CheckpointMismatchError,
    EncoderMismatchError,
    load_pretrained,
    logger,
)


# ----------------------------------------------------------------- write
def pretrained_record(backbone, out_dir: str) -> Dict[str, str]:
    """What a prompt-only checkpoint records about the frozen encoder of
    ``backbone`` (a :class:`~.prompt_tuning.PromptTuning` module), the
    checkpoint being written into the folder ``out_dir``; {} when the
    backbone was not loaded from a file."""
    init = (backbone.init_cfg or {}).get('checkpoint')
    path = getattr(backbone, 'pretrained_path', None) or init
    if not path:
        return {}
    rec = dict(pretrained=init or path)
    if '://' not in path:
        rec['pretrained_abs'] = osp.abspath(path)
        rec['pretrained_rel'] = osp.relpath(rec['pretrained_abs'], out_dir)
    else:
        rec['pretrained_abs'] = path
    fp = getattr(backbone, 'pretrained_fingerprint', None)
    if fp:
        rec['encoder_fingerprint'] = fp
    return rec


def prompt_only_state_dict(state_dict: Dict, backbones: Dict[str, object],
                           out_dir: str) -> 'OrderedDict':
    """``state_dict`` without the frozen encoder tensors of ``backbones``
    (module path -> :class:`~.prompt_tuning.PromptTuning` module of the
    model whose state dict it is), each backbone's record in the metadata
    (module docstring), the checkpoint being written into ``out_dir``.
    Every other entry stays: the method's tensors, the biases of bias
    tuning, heads (frozen or not), buffers."""
    drop = set()
    for name, m in backbones.items():
        prefix = name + '.' if name else ''
        drop.update(prefix + k for k in m.frozen_state_dict_keys())
    kept = OrderedDict((k, v) for k, v in state_dict.items()
                       if k not in drop)
    kept._metadata = OrderedDict(
        (k, dict(v)) for k, v in getattr(state_dict, '_metadata', {}).items())
    for name, m in backbones.items():
        kept._metadata.setdefault(name, {}).update(
            pretrained_record(m, out_dir))
    return kept


# ------------------------------------------------------------------ read
def is_prompt_only(meta: dict) -> bool:
    """Whether ``meta`` (a backbone's state-dict metadata) is the record of
    a prompt-only checkpoint."""
    return bool(meta.get('pretrained'))


def pretrained_candidates(init_cfg: Optional[dict], meta: dict) -> List[str]:
    """Where the pretrained encoder of a prompt-only checkpoint is looked
    for, in this order (duplicates dropped): the backbone's ``init_cfg``
    file (the config's choice, relative to the working directory), the
    recorded path relative to the checkpoint file (travels with a copied
    folder), the recorded absolute path, the recorded path as the config
    wrote it. :func:`load_frozen_encoder` takes the ``init_cfg`` file if it
    exists, else the first recorded one with the recorded fingerprint."""
    out = [(init_cfg or {}).get('checkpoint')]
    ckpt_file, rel = meta.get(SOURCE_FILE_KEY), meta.get('pretrained_rel')
    if ckpt_file and rel:
        out.append(osp.normpath(osp.join(osp.dirname(ckpt_file), rel)))
    out += [meta.get('pretrained_abs'), meta.get('pretrained')]
    seen, uniq = set(), []
    for p in out:
        key = p if not p or '://' in p else osp.abspath(p)
        if p and key not in seen:
            seen.add(key)
            uniq.append(p)
    return uniq


def load_frozen_encoder(backbone, meta: dict) -> None:
    """Make sure the frozen encoder of ``backbone`` is the one a prompt-only
    checkpoint was trained on (``meta``: its record), reading it first if
    the backbone has not been initialised. Which file
    (:func:`pretrained_candidates`): the ``init_cfg`` file if it exists (the
    config's choice, taken as it is); else, of the recorded files that
    exist, the first whose fingerprint is the recorded one (a file at the
    relative path that holds another ViT, or that does not load, is passed
    over with a warning when a later one is right); without a recorded
    fingerprint, the first that exists. Another fingerprint is an
    :class:`EncoderMismatchError` (override: ``IVPT_ALLOW_OTHER_ENCODER=1``,
    which loads the first file found); no file, a
    :class:`CheckpointMismatchError`."""
    want = meta.get('encoder_fingerprint')
    allow = os.environ.get(ALLOW_OTHER_ENCODER, '') not in ('', '0')
    if getattr(backbone, 'is_init', False):
        found = getattr(backbone, 'pretrained_fingerprint', None)
        if want and found != want:
            where = getattr(backbone, 'pretrained_path', None) or (
                'the encoder in memory (no pretrained file loaded)'
                if found is None else 'the encoder in memory')
            _encoder_mismatch(meta, where, found, allow)
        return
    init = (backbone.init_cfg or {}).get('checkpoint')
    tried, others, failed = [], [], []  # absent; (path, fingerprint); errors
    for i, path in enumerate(pretrained_candidates(backbone.init_cfg, meta)):
        if '://' not in path and not osp.isfile(path):
            tried.append(path)
            continue
        if not want or (i == 0 and init):  # the config's choice, or no
            load_pretrained(backbone, path)  # fingerprint to choose by
            backbone.is_init = True
            if want and backbone.pretrained_fingerprint != want:
                _encoder_mismatch(meta, backbone.pretrained_path,
                                  backbone.pretrained_fingerprint, allow)
            return
        try:
            load_pretrained(backbone, path)
        except (CheckpointMismatchError, CheckpointFileError) as e:
            failed.append(e)  # another shape, a damaged file: named
            continue
        if backbone.pretrained_fingerprint == want:
            backbone.is_init = True
            if others or failed:
                logger.warning(
                    '%s: passed over %s; loaded %s, the frozen ViT it was '
                    'trained on (fingerprint %s)',
                    meta.get(SOURCE_FILE_KEY) or 'the checkpoint',
                    '; '.join([f'{p} (another ViT, fingerprint {fp})'
                               for p, fp in others] +
                              [str(e) for e in failed]),
                    backbone.pretrained_path, want)
            return
        others.append((backbone.pretrained_path,
                       backbone.pretrained_fingerprint))
    if others:  # none has the recorded fingerprint
        path, found = others[0]
        if backbone.pretrained_path != path:
            load_pretrained(backbone, path)
        backbone.is_init = True
        _encoder_mismatch(meta, path, found, allow, others[1:])
        return
    if failed:
        raise failed[0]
    raise CheckpointMismatchError(
        'a prompt-only checkpoint (no frozen ViT weights) needs the '
        'pretrained ViT to load onto; not found: '
        f'{tried or "no path"}. Set the backbone\'s '
        'init_cfg=dict(type=\'Pretrained\', checkpoint=...)')


def _encoder_mismatch(meta: dict, found_where: str, found: Optional[str],
                      allow: bool, also=()) -> None:
    ckpt = meta.get(SOURCE_FILE_KEY) or 'the checkpoint'
    msg = (f'{ckpt} was trained on the frozen ViT '
           f'{meta.get("pretrained_abs") or meta.get("pretrained")} '
           f'(fingerprint {meta.get("encoder_fingerprint")}), but the '
           f'encoder here is {found_where} (fingerprint {found})')
    if also:  # the other recorded files found, other ViTs too
        msg += ' (also another ViT: ' + ', '.join(
            f'{p}, fingerprint {fp}' for p, fp in also) + ')'
    if allow:
        logger.warning('%s; loading anyway (%s is set)', msg,
                       ALLOW_OTHER_ENCODER)
        return
    raise EncoderMismatchError(
        f'{msg}. Its prompts and heads are meaningless on another ViT. Point '
        f'init_cfg at the file it was trained on, or set '
        f'{ALLOW_OTHER_ENCODER}=1 if you mean to load it onto this one.')
