"""Loading a pretrained encoder, whatever layout the checkpoint has: the
file reading, unwrapping and errors every encoder shares, and the ViT
layouts of :class:`~.vit.ViTEncoder` (the Swin layouts are beside the Swin
encoder, :mod:`.swin`). :func:`load_encoder_weights` asks the encoder to fit
the tensors (``fit_encoder_state_dict``), so each encoder reads its own
layouts.

ViT layouts recognised (detected from the keys, after taking the tensors out of
a ``state_dict`` / ``model`` entry, removing a ``module.`` wrapper and, when
present, keeping only the ``backbone.`` part of a whole segmentor or
classifier checkpoint, or the ``base_encoder.`` of a MoCo-v3 pretraining
checkpoint):

* ``timm``: ``VisionTransformer.state_dict()`` (``blocks.0.attn.qkv...``).
  MAE's ``mae_pretrain_vit_base.pth`` (``{'model': ...}``) and MoCo-v3's
  ``linear-vit-b-300ep.pth.tar`` (``module.``-prefixed) use it too.
  The original ``.npz`` files are converted by timm itself (see docs).
* ``mmseg``: mmseg's ViT, the layout ``tools/model_converters/vit2mmseg.py``
  writes (``layers.0.attn.attn.in_proj_weight``...).
* ``mmpretrain``: mmpretrain's ``VisionTransformer``
  (``layers.0.attn.qkv.weight``...), with or without ``backbone.``.

The encoder's parameter names are timm's; every layout is renamed to them.
Classification heads are dropped. Anything else that does not fit (missing
tensors, unknown tensors, other shapes) is an error that lists it; the
patch-position embedding alone is resampled to the configured grid.
"""
import logging
import math
import os
import re
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from ..utils.integrity import encoder_fingerprint
from .layers import resize_pos_embed

# (pattern, replacement) applied in order, per layout, to reach timm's names.
_RENAMES: Dict[str, List[Tuple[str, str]]] = {
    'timm': [],
    'mmseg': [
        (r'^patch_embed\.projection\.', 'patch_embed.proj.'),
        (r'^ln1\.', 'norm.'),
        (r'^layers\.(\d+)\.ln1\.', r'blocks.\1.norm1.'),
        (r'^layers\.(\d+)\.ln2\.', r'blocks.\1.norm2.'),
        (r'^layers\.(\d+)\.attn\.attn\.in_proj_(weight|bias)$',
         r'blocks.\1.attn.qkv.\2'),
        (r'^layers\.(\d+)\.attn\.attn\.out_proj\.', r'blocks.\1.attn.proj.'),
        (r'^layers\.(\d+)\.ffn\.layers\.0\.0\.', r'blocks.\1.mlp.fc1.'),
        (r'^layers\.(\d+)\.ffn\.layers\.1\.', r'blocks.\1.mlp.fc2.'),
    ],
    'mmpretrain': [
        (r'^patch_embed\.projection\.', 'patch_embed.proj.'),
        (r'^ln1\.', 'norm.'),
        (r'^layers\.(\d+)\.ln1\.', r'blocks.\1.norm1.'),
        (r'^layers\.(\d+)\.ln2\.', r'blocks.\1.norm2.'),
        (r'^layers\.(\d+)\.attn\.(qkv|proj)\.', r'blocks.\1.attn.\2.'),
        (r'^layers\.(\d+)\.ffn\.layers\.0\.0\.', r'blocks.\1.mlp.fc1.'),
        (r'^layers\.(\d+)\.ffn\.layers\.1\.', r'blocks.\1.mlp.fc2.'),
    ],
}
# Tensors of a pretrained model that a backbone does not use: classifier
# heads, and MAE's pretraining decoder.
_DROPPED = re.compile(r'^(head|fc_norm|pre_logits|ln2|decoder_\w+)\.|'
                      r'^(mask_token|decoder_\w+)$')
#: One INFO line per pretrained file loaded; mmseg_ivpt.registry forwards
#: it to mmengine's log when mmengine is there.
logger = logging.getLogger('mmseg_ivpt')


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the configured backbone."""


class EncoderMismatchError(CheckpointMismatchError):
    """A prompt-only checkpoint is being loaded onto another frozen ViT than
    the one it was trained on (their fingerprints differ)."""


#: Set to 1 to load a prompt-only checkpoint onto another frozen ViT anyway.
ALLOW_OTHER_ENCODER = 'IVPT_ALLOW_OTHER_ENCODER'


def unwrap_state_dict(ckpt, prefix: Optional[str] = None) -> Dict[str, Tensor]:
    """The tensors of a loaded checkpoint, without wrappers and prefixes."""
    sd = ckpt
    for key in ('state_dict', 'model', 'module'):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict) or not sd:
        raise CheckpointMismatchError('the checkpoint holds no state dict')
    sd = {k: v for k, v in sd.items() if isinstance(v, Tensor)}
    if prefix:
        sd = {k[len(prefix):]: v for k, v in sd.items()
              if k.startswith(prefix)}
        if not sd:
            raise CheckpointMismatchError(
                f'init_cfg prefix={prefix!r}: no tensor name starts with it')
        return sd
    if all(k.startswith('module.') for k in sd):
        sd = {k[len('module.'):]: v for k, v in sd.items()}
    for part in ('backbone.', 'base_encoder.'):  # model / MoCo pretraining
        if any(k.startswith(part) for k in sd):
            sd = {k[len(part):]: v for k, v in sd.items()
                  if k.startswith(part)}
    return sd


def detect_layout(sd: Dict[str, Tensor]) -> str:
    """'timm', 'mmseg' or 'mmpretrain' from the tensor names."""
    keys = set(sd)
    if any(k.startswith('blocks.') for k in keys):
        return 'timm'
    if any(re.match(r'layers\.\d+\.attn\.attn\.in_proj_weight$', k)
           for k in keys):
        return 'mmseg'
    if any(re.match(r'layers\.\d+\.attn\.qkv\.weight$', k) for k in keys):
        return 'mmpretrain'
    sample = sorted(keys)[:8]
    raise CheckpointMismatchError(
        'cannot tell the layout of this checkpoint: expected a timm, mmseg '
        f'(vit2mmseg) or mmpretrain ViT; its first keys are {sample}')


def convert_to_timm(sd: Dict[str, Tensor], layout: str) -> Dict[str, Tensor]:
    """Rename a state dict of ``layout`` to the encoder's (timm's) names."""
    rules = [(re.compile(p), r) for p, r in _RENAMES[layout]]
    out = {}
    for k, v in sd.items():
        for pat, rep in rules:
            k2, n = pat.subn(rep, k)
            if n:
                k = k2
                break
        out[k] = v
    return out


def fit_state_dict(model, sd: Dict[str, Tensor],
                   source: str = 'checkpoint') -> Dict[str, Tensor]:
    """Check a timm-named state dict against ``model``'s encoder, resample
    the position embedding, and return exactly the encoder's tensors.

    Raises :class:`CheckpointMismatchError` listing every missing,
    unexpected and mis-shaped tensor.
    """
    keys = set(model.encoder_state_dict_keys())
    own = {k: v for k, v in model.state_dict().items() if k in keys}
    sd = {k: v for k, v in sd.items() if not _DROPPED.search(k)}
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    wrong = []
    out = {}
    for k in sorted(set(own) & set(sd)):
        v = sd[k]
        if k == 'pos_embed' and v.shape != own[k].shape:
            v = _fit_pos_embed(v, model, wrong)
            if v is None:
                continue
        elif v.shape != own[k].shape:
            wrong.append(f'{k}: checkpoint {tuple(v.shape)} vs model '
                         f'{tuple(own[k].shape)}')
            continue
        out[k] = v
    if missing or unexpected or wrong:
        d = model.embed_dims
        msg = [f'{source} does not fit this backbone (embed_dims={d}, '
               f'num_layers={model.num_layers}, '
               f'patch_size={model.patch_size}):']
        if missing:
            msg.append(f'  missing in the checkpoint ({len(missing)}): '
                       f'{_abbrev(missing)}')
            if 'patch_embed.proj.bias' in missing:
                msg.append('  (a checkpoint without a patch-embedding bias '
                           'needs patch_bias=False)')
        if unexpected:
            msg.append(f'  not in the model ({len(unexpected)}): '
                       f'{_abbrev(unexpected)}')
            if 'patch_embed.proj.bias' in unexpected:
                msg.append('  (the checkpoint has a patch-embedding bias: '
                           'set patch_bias=True)')
        if wrong:
            msg.append(f'  shape mismatch ({len(wrong)}): {_abbrev(wrong)}')
        raise CheckpointMismatchError('\n'.join(msg))
    return out


def _fit_pos_embed(v: Tensor, model, wrong: List[str]) -> Optional[Tensor]:
    n_src = v.shape[1] - 1
    side = int(math.isqrt(n_src))
    if v.ndim != 3 or v.shape[-1] != model.embed_dims or side * side != n_src:
        wrong.append(f'pos_embed: checkpoint {tuple(v.shape)} vs model '
                     f'{tuple(model.pos_embed.shape)} (not a square grid '
                     f'with one cls position)')
        return None
    return resize_pos_embed(v, (side, side), model.grid_size)


def _abbrev(items: List[str], n: int = 12) -> str:
    if len(items) <= n:
        return ', '.join(items)
    return ', '.join(items[:n]) + f', ... ({len(items) - n} more)'


def read_checkpoint(path: str):
    """Load a checkpoint file safely (tensors and the allow-listed types of
    :mod:`mmseg_ivpt.utils.safe_load`, bad files named, checksum verified:
    :func:`~mmseg_ivpt.utils.safe_load.load_checkpoint_file`); URLs go
    through mmengine."""
    from ..utils.safe_load import load_checkpoint_file
    if '://' in path:
        from mmengine.runner import CheckpointLoader
        return CheckpointLoader.load_checkpoint(path, map_location='cpu')
    if not os.path.isfile(os.path.expanduser(path)):
        raise FileNotFoundError(
            f"init_cfg checkpoint={path!r} does not exist; see "
            f"docs/checkpoints.md for how to make it")
    return load_checkpoint_file(path, map_location='cpu')


def load_encoder_weights(model, sd: Dict[str, Tensor],
                         source: str = 'state dict') -> str:
    """Copy a pretrained encoder's tensors (any layout the encoder reads:
    its ``fit_encoder_state_dict``) into ``model`` (a
    :class:`~.vit.ViTEncoder` or :class:`~.swin.SwinEncoder`); returns the
    layout. The method's own parameters (prompts...) are not touched."""
    layout, timm_sd, fitted = model.fit_encoder_state_dict(sd, source)
    with torch.no_grad():
        own = model.state_dict()
        for k, v in fitted.items():
            own[k].copy_(v)
    # of the file's tensors as given (before the position embedding is
    # resampled), so it does not depend on img_size
    model.pretrained_fingerprint = encoder_fingerprint(
        {k: timm_sd[k] for k in fitted})
    model.pretrained_path = None
    return layout


def load_pretrained(model, path: str, prefix: Optional[str] = None) -> str:
    """Load the ViT weights of the file ``path`` into ``model``; returns the
    detected layout. Sets ``model.pretrained_path`` (absolute) and
    ``model.pretrained_fingerprint``
    (:func:`~mmseg_ivpt.utils.integrity.encoder_fingerprint`) and logs one
    INFO line with both."""
    ckpt = read_checkpoint(path)
    try:
        sd = unwrap_state_dict(ckpt, prefix)
        layout = load_encoder_weights(model, sd, source=path)
    except CheckpointMismatchError as e:
        note = _trained_model_note(ckpt, path)
        if note:
            raise CheckpointMismatchError(note) from None
        if path not in str(e):
            raise CheckpointMismatchError(
                f'init_cfg checkpoint={path!r}: {e}') from None
        raise
    model.pretrained_path = path if '://' in path else \
        os.path.abspath(os.path.expanduser(path))
    logger.info('%s: loaded the pretrained ViT %s (%s layout, fingerprint '
                '%s); its %d tensors stay frozen unless finetune says '
                'otherwise', type(model).__name__, model.pretrained_path,
                layout, model.pretrained_fingerprint,
                len(model.encoder_state_dict_keys()))
    return layout


_HEADS = ('decode_head', 'auxiliary_head', 'head', 'neck')


def _trained_model_note(ckpt, path: str) -> Optional[str]:
    """What to say when a pretrained-ViT file that does not load is a
    checkpoint that training wrote (a trained model: prompts, heads), the
    file for ``load_from`` / testing, not for ``init_cfg``; None if not."""
    sd = ckpt.get('state_dict') if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict):
        return None
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    record = (getattr(sd, '_metadata', None) or {}).get('backbone') or {}
    prompt_only = 'prompt_only' in meta or 'encoder_fingerprint' in record
    heads = sorted({k.split('.')[0] for k in sd} & set(_HEADS))
    if not prompt_only and not heads:
        return None
    kind = ('a prompt-only checkpoint of a trained model (its prompts and '
            'heads, no ViT weights)' if prompt_only else
            f'a checkpoint of a trained model (with {", ".join(heads)})')
    vit = record.get('pretrained_abs') or record.get('pretrained')
    trained_on = (f' It was trained on the pretrained ViT {vit}: that file '
                  f'is what init_cfg takes.' if vit else '')
    return (f'init_cfg checkpoint={path!r} is {kind}, not a pretrained ViT.'
            f'{trained_on} To test or run the trained model, give this file '
            f'as the checkpoint (tools/test.py CONFIG {path}, or '
            f'init_model(CONFIG, {path!r})); to train on from it, set '
            f'load_from={path!r} (the ViT then still comes from init_cfg).')
