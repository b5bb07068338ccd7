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
* ``dinov2``: the official DINOv2 torch-hub files
  (``dinov2_vitb14_reg4_pretrain.pth``...: ``mask_token`` (1, D),
  ``register_tokens``, ``mlp.w12``/``w3`` for ViT-g, blocks in chunks
  ``blocks.c.i.`` in training checkpoints); converted as timm does
  (``_convert_dinov2``): registers become ``reg_token`` and the cls position
  is folded into ``cls_token``, the embedding keeping the patches only
  (``no_embed_class``). timm's ``vit_*_dinov2*`` files are ``timm``.
* ``clip``: the image tower of OpenAI's CLIP and of OpenCLIP (``visual.``
  prefix or none: ``conv1``, ``class_embedding``, ``positional_embedding``,
  ``ln_pre``, ``transformer.resblocks.i``, ``ln_post``); the text tower and
  the projection ``proj`` are dropped. OpenAI's files (they keep
  ``input_resolution``) are ``clip-openai``: they need
  ``act_layer='quick_gelu'``. timm's ``vit_*_clip_*`` files are ``timm``.

Each file's architecture family (supervised/MAE/MoCo ViT, DINOv2, CLIP:
:func:`architecture_of`) must be the configured encoder's, else
:class:`ArchitectureMismatchError` says both.

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
    'dinov2': [
        (r'^(blocks\.\d+\.mlp)\.w12\.', r'\1.fc1.'),
        (r'^(blocks\.\d+\.mlp)\.w3\.', r'\1.fc2.'),
        (r'^register_tokens$', 'reg_token'),
    ],
    'clip': [
        (r'^conv1\.', 'patch_embed.proj.'),
        (r'^class_embedding$', 'cls_token'),
        (r'^positional_embedding$', 'pos_embed'),
        (r'^ln_pre\.', 'norm_pre.'),
        (r'^ln_post\.', 'norm.'),
        (r'^transformer\.resblocks\.(\d+)\.ln_(\d)\.', r'blocks.\1.norm\2.'),
        (r'^transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias)$',
         r'blocks.\1.attn.qkv.\2'),
        (r'^transformer\.resblocks\.(\d+)\.attn\.out_proj\.',
         r'blocks.\1.attn.proj.'),
        (r'^transformer\.resblocks\.(\d+)\.mlp\.c_fc\.',
         r'blocks.\1.mlp.fc1.'),
        (r'^transformer\.resblocks\.(\d+)\.mlp\.c_proj\.',
         r'blocks.\1.mlp.fc2.'),
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
                      r'^(mask_token|decoder_\w+|proj)$')
_RENAMES['clip-openai'] = _RENAMES['clip']
#: The architecture families a file or an encoder can be (architecture_of).
FAMILIES = {'vit': 'a ViT without LayerScale nor norm_pre (supervised, MAE, '
                   'MoCo-v3)',
            'dinov2': 'a ViT with LayerScale (DINOv2; registers: DINOv2-reg)',
            'clip': 'a CLIP image tower (norm_pre / ln_pre)'}
#: One INFO line per pretrained file loaded; mmseg_ivpt.registry forwards
#: it to mmengine's log when mmengine is there.
logger = logging.getLogger('mmseg_ivpt')


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the configured backbone."""


class ArchitectureMismatchError(CheckpointMismatchError):
    """A pretrained file is of another architecture family (DINOv2, CLIP,
    plain ViT) than the configured encoder."""


class EncoderMismatchError(CheckpointMismatchError):
    """A prompt-only checkpoint is being loaded onto another frozen ViT than
    the one it was trained on (their fingerprints differ)."""


class MethodMismatchError(CheckpointMismatchError):
    """A checkpoint is being loaded into a backbone that computes something
    else than the one it was trained with: another type, prompt structure,
    DA, AR, N, GaPT setting or encoder option (the settings each backbone
    records with its tensors; models/prompt_tuning.py)."""


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
    # model / MoCo pretraining / a whole CLIP model (the image tower)
    for part in ('backbone.', 'base_encoder.', 'visual.'):
        if any(k.startswith(part) for k in sd):
            keep = {k: v for k, v in sd.items() if k == 'input_resolution'}
            sd = {k[len(part):]: v for k, v in sd.items()
                  if k.startswith(part)}
            sd.update(keep)  # marks OpenAI's CLIP (detect_layout)
    return sd


def detect_layout(sd: Dict[str, Tensor]) -> str:
    """'timm', 'mmseg', 'mmpretrain', 'dinov2', 'clip' or 'clip-openai'
    from the tensor names (module docstring)."""
    keys = set(sd)
    if any(k.startswith('transformer.resblocks.') for k in keys) and \
            'conv1.weight' in keys:
        return 'clip-openai' if 'input_resolution' in keys else 'clip'
    if any(k.startswith('blocks.') for k in keys):
        mask = sd.get('mask_token')
        hub = ('register_tokens' in keys
               or (mask is not None and mask.ndim == 2)  # MAE's is 3-d
               or any(re.match(r'blocks\.\d+\.(\d+\.|mlp\.w12\.)', k)
                      for k in keys))
        return 'dinov2' if hub else 'timm'
    if any(re.match(r'layers\.\d+\.attn\.attn\.in_proj_weight$', k)
           for k in keys):
        return 'mmseg'
    if any(re.match(r'layers\.\d+\.attn\.qkv\.weight$', k) for k in keys):
        return 'mmpretrain'
    sample = sorted(keys)[:8]
    raise CheckpointMismatchError(
        'cannot tell the layout of this checkpoint: expected a timm, mmseg '
        '(vit2mmseg), mmpretrain, DINOv2 (torch hub) or CLIP (OpenAI, '
        f'OpenCLIP) ViT; its first keys are {sample}')


def convert_to_timm(sd: Dict[str, Tensor], layout: str) -> Dict[str, Tensor]:
    """Rename a state dict of ``layout`` to the encoder's (timm's) names."""
    rules = [(re.compile(p), r) for p, r in _RENAMES[layout]]
    out = {}
    for k, v in sd.items():
        if layout == 'dinov2':  # training checkpoints: blocks in chunks
            k = re.sub(r'^blocks\.\d+\.(\d+)\.', r'blocks.\1.', k)
        for pat, rep in rules:
            k2, n = pat.subn(rep, k)
            if n:
                k = k2
                break
        out[k] = v
    if layout.startswith('clip'):
        out = {k: v for k, v in out.items() if not k.startswith(
            ('transformer.', 'token_embedding', 'ln_final', 'text_'))
            and k not in ('input_resolution', 'context_length',
                          'vocab_size', 'logit_scale')}
        if 'cls_token' in out:
            out['cls_token'] = out['cls_token'].reshape(1, 1, -1)
        if 'pos_embed' in out and out['pos_embed'].ndim == 2:
            out['pos_embed'] = out['pos_embed'].unsqueeze(0)
    if layout == 'dinov2' and 'reg_token' in out and 'pos_embed' in out:
        # timm's no_embed_class form: the cls position into the cls token
        out['cls_token'] = out['cls_token'] + out['pos_embed'][:, :1]
        out['pos_embed'] = out['pos_embed'][:, 1:]
    return out


def architecture_of(sd: Dict[str, Tensor]) -> str:
    """The family (:data:`FAMILIES`) of a timm-named state dict."""
    if 'norm_pre.weight' in sd:
        return 'clip'
    if 'reg_token' in sd or any(k.endswith('.ls1.gamma') for k in sd):
        return 'dinov2'
    return 'vit'


def encoder_family(model) -> str:
    """The family (:data:`FAMILIES`) of a ViT encoder."""
    if getattr(model, 'pre_norm', False):
        return 'clip'
    if getattr(model, 'layer_scale_init', None) is not None or \
            getattr(model, 'num_reg_tokens', 0):
        return 'dinov2'
    return 'vit'


def check_architecture(model, sd: Dict[str, Tensor], layout: str,
                       source: str) -> None:
    """:class:`ArchitectureMismatchError` unless the timm-named ``sd``
    (of ``layout``) is of ``model``'s family, and OpenAI's CLIP has
    QuickGELU."""
    got, want = architecture_of(sd), encoder_family(model)
    if got != want:
        raise ArchitectureMismatchError(
            f'{source} is {FAMILIES[got]} ({layout} layout), but the '
            f'configured backbone is {FAMILIES[want]}: use a config of that '
            f'architecture (docs/encoders.md) or the matching weights')
    if layout == 'clip-openai' and getattr(model, 'act_layer',
                                           None) != 'quick_gelu':
        raise ArchitectureMismatchError(
            f"{source} is OpenAI's CLIP, trained with QuickGELU, but the "
            f"backbone has act_layer={model.act_layer!r}: set "
            f"act_layer='quick_gelu' (docs/encoders.md)")


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
                       f'{abbrev_keys(missing)}')
            if 'patch_embed.proj.bias' in missing:
                msg.append('  (a checkpoint without a patch-embedding bias '
                           'needs patch_bias=False)')
        if unexpected:
            msg.append(f'  not in the model ({len(unexpected)}): '
                       f'{abbrev_keys(unexpected)}')
            if 'patch_embed.proj.bias' in unexpected:
                msg.append('  (the checkpoint has a patch-embedding bias: '
                           'set patch_bias=True)')
            if 'reg_token' in unexpected:
                msg.append('  (the checkpoint has register tokens: set '
                           'num_reg_tokens and no_embed_class=True)')
        if 'reg_token' in missing:
            msg.append('  (the checkpoint has no register tokens: set '
                       'num_reg_tokens=0)')
        if wrong:
            msg.append(f'  shape mismatch ({len(wrong)}): '
                       f'{abbrev_keys(wrong)}')
        raise CheckpointMismatchError('\n'.join(msg))
    return out


def _fit_pos_embed(v: Tensor, model, wrong: List[str]) -> Optional[Tensor]:
    prefix = getattr(model, 'num_pos_prefix', 1)
    n_src = v.shape[1] - prefix
    side = int(math.isqrt(max(n_src, 0)))
    if v.ndim != 3 or v.shape[-1] != model.embed_dims or side * side != n_src:
        wrong.append(f'pos_embed: checkpoint {tuple(v.shape)} vs model '
                     f'{tuple(model.pos_embed.shape)} (not a square grid '
                     f'with {prefix} prefix position(s))')
        return None
    return resize_pos_embed(v, (side, side), model.grid_size, prefix,
                            getattr(model, 'pos_interp', 'bicubic'))


def abbrev_keys(items: List[str], n: int = 12) -> str:
    """The first ``n`` of ``items`` (tensor names), comma-separated, then
    how many more there are: for error messages."""
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


#: The parts an mmseg / mmpretrain model has beside its backbone, as its
#: config and its state dict name them: the heads (and with the neck).
HEAD_KEYS = ('decode_head', 'auxiliary_head', 'head')
HEAD_AND_NECK_KEYS = HEAD_KEYS + ('neck', )


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
    heads = sorted({k.split('.')[0] for k in sd} & set(HEAD_AND_NECK_KEYS))
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
