"""What every prompt-tuned backbone shares: the prompt slot, freezing and
the tuning modes, pretrained and prompt-only checkpoint loading, and the
output formats. A method subclasses :class:`PromptTunedViT` and fills in the
hooks of :class:`~.vit.ViTEncoder`.
"""
import os
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checkpoint import (ALLOW_OTHER_ENCODER, CheckpointMismatchError,
                         EncoderMismatchError, load_pretrained, logger)
from .vit import ViTEncoder

OUT_TYPES = ('featmap', 'cls_token', 'avg_featmap', 'avg_all_tokens')
POOL_NORMS = ('fresh', 'pretrained')
FINETUNE_MODES = ('prompt', 'bias', 'full')


def insert_slot(x: Tensor, p: Tensor) -> Tensor:
    """[cls, patches] (B, 1+M, D) + slot (B, N, D) -> (B, 1+N+M, D)."""
    return torch.cat([x[:, :1], p, x[:, 1:]], dim=1)


def replace_slot(x: Tensor, p: Tensor) -> Tensor:
    """Overwrite the prompt slot of x (B, 1+N+M, D) with p (B, N, D)."""
    return torch.cat([x[:, :1], p, x[:, 1 + p.shape[1]:]], dim=1)


class PromptTunedViT(ViTEncoder):
    """What every prompt-tuned backbone shares: freezing, the tuning modes,
    pretrained loading through ``init_cfg`` and the output formats.

    Args (beyond :class:`ViTEncoder`'s):
        out_type: ``'featmap'`` (tuple of (B, D, h, w), mmseg),
            ``'cls_token'``, ``'avg_featmap'`` or ``'avg_all_tokens'``
            (tuple of (B, D), mmpretrain). ``avg_featmap`` is the mean of the
            patch tokens; ``avg_all_tokens`` the mean of all non-cls tokens
            of the last block, prompts included, then a LayerNorm chosen by
            ``pool_norm`` (the MAE pooling of VPT's and GaPT's code).
        pool_norm: the norm after ``avg_all_tokens``: ``'fresh'`` (a
            LayerNorm without affine weights, i.e. a new frozen LayerNorm at
            its initial value: VPT's ``vit_mae.py``, whose ``fc_norm``
            replaces the pretrained norm and stays frozen) or
            ``'pretrained'`` (the pretrained final norm: GaPT's
            ``vit_mae.py``). ``None``: the class's ``default_pool_norm``.
        finetune: which encoder weights train besides the method's own
            parameters: ``'prompt'`` (none: prompt tuning / linear probing),
            ``'bias'`` (the blocks' biases, LayerNorm biases included: the
            bias-tuning baseline; patch-embedding and final-norm biases stay
            frozen, which gives the paper's 270,336 for ViT-L) or ``'full'``
            (everything: full fine-tuning).
        prompt_dropout: dropout on the prompt tokens the method writes.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)``; a timm, mmseg
            (vit2mmseg) or mmpretrain ViT checkpoint, layout detected.
    """

    #: Names of the method's trainable parameters (docs/design.md).
    method_param_names: Tuple[str, ...] = ()
    #: Allowed ``out_type`` values.
    out_types: Tuple[str, ...] = OUT_TYPES
    #: ``pool_norm`` when the config does not say.
    default_pool_norm: str = 'fresh'

    def __init__(self, *, out_type: str = 'featmap', finetune: str = 'prompt',
                 prompt_dropout: float = 0., init_cfg: Optional[dict] = None,
                 pool_norm: Optional[str] = None, **kwargs):
        if not 0. <= prompt_dropout < 1.:
            raise ValueError(f'prompt_dropout must be in [0, 1), got '
                             f'{prompt_dropout!r}')
        if out_type not in self.out_types:
            raise ValueError(f'out_type={out_type!r}; allowed: '
                             f'{self.out_types}')
        pool_norm = pool_norm or self.default_pool_norm
        if pool_norm not in POOL_NORMS:
            raise ValueError(f'pool_norm={pool_norm!r}; allowed: '
                             f'{POOL_NORMS}')
        if finetune not in FINETUNE_MODES:
            raise ValueError(f'finetune={finetune!r}; allowed: '
                             f'{FINETUNE_MODES}')
        if init_cfg is not None:
            _check_init_cfg(init_cfg)
        super().__init__(**kwargs)
        self.out_type = out_type
        self.pool_norm = pool_norm
        self.finetune = finetune
        self.init_cfg = init_cfg
        self.prompt_drop = nn.Dropout(prompt_dropout)

    def _freeze_encoder(self) -> None:
        """Set requires_grad by ``finetune``; call after the method's
        parameters exist."""
        method = set(self.method_param_names)
        for name, p in self.named_parameters():
            if name.split('.')[0] in method:
                p.requires_grad_(True)
            elif self.finetune == 'full':
                p.requires_grad_(True)
            elif self.finetune == 'bias':
                p.requires_grad_(name.startswith('blocks.')
                                 and name.endswith('.bias'))
            else:
                p.requires_grad_(False)

    def train(self, mode: bool = True):
        """Frozen encoders stay in eval mode (no dropout / drop-path in the
        pretrained part), as in VPT; prompt dropout follows ``mode``."""
        super().train(mode)
        if mode and self.finetune != 'full':
            for m in (self.patch_embed, self.pos_drop, self.blocks,
                      self.norm):
                m.eval()
        return self

    def init_weights(self) -> None:
        """Load ``init_cfg``'s checkpoint into the encoder (mmengine calls
        this when building a runner)."""
        if self.init_cfg is not None:
            load_pretrained(self, self.init_cfg['checkpoint'],
                            prefix=self.init_cfg.get('prefix'))
        self.is_init = True

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Strict about this backbone's tensors whatever ``strict`` says,
        and able to load a *prompt-only* checkpoint.

        * The method's tensors (``prompts``...) must all be there with this
          model's shapes, and nothing else may sit under this prefix: a
          checkpoint of another model is a :class:`CheckpointMismatchError`,
          not a warning.
        * A checkpoint without any of the frozen ViT tensors (saved by
          ``PromptOnlyCheckpointHook``) is loaded on top of the pretrained
          ViT, which is read first if this model has not been initialised
          yet (:meth:`_load_frozen_encoder`: the first file that exists of
          ``init_cfg``, the recorded path relative to the checkpoint, the
          recorded absolute path; the loader may have dropped ``init_cfg``:
          ``mmseg.apis.init_model`` does). The encoder must have the
          fingerprint the checkpoint recorded, else
          :class:`EncoderMismatchError` (override: ``IVPT_ALLOW_OTHER_ENCODER
          =1``).
        """
        own = {prefix + k: v for k, v in self.state_dict().items()}
        encoder = [prefix + k for k in self.encoder_state_dict_keys()]
        present = [k for k in encoder if k in state_dict]
        problems = []
        for name in self.method_param_names:
            key, p = prefix + name, getattr(self, name)
            if p is None and key in state_dict:
                problems.append(f'{key}: in the checkpoint, not in the model')
            elif p is not None and key not in state_dict:
                problems.append(f'{key}: missing in the checkpoint')
            elif p is not None and state_dict[key].shape != p.shape:
                problems.append(f'{key}: checkpoint '
                                f'{tuple(state_dict[key].shape)} vs model '
                                f'{tuple(p.shape)}')
        # written by PromptOnlyCheckpointHook: frozen tensors were left out
        # (all of them; with finetune='bias' the trained biases stay)
        prompt_only = bool(local_metadata.get('pretrained')) or not present
        if 0 < len(present) < len(encoder) and not prompt_only:
            gone = sorted(set(encoder) - set(present))
            problems.append(f'{len(gone)} frozen ViT tensors missing: '
                            f'{gone[:5]}...')
        foreign = sorted(k for k in state_dict
                         if k.startswith(prefix) and k not in own)
        if foreign:
            problems.append(f'{len(foreign)} tensors this backbone does not '
                            f'have: {foreign[:5]}')
        if problems:
            raise CheckpointMismatchError(
                f'the checkpoint does not fit {type(self).__name__} '
                f'(prefix {prefix!r}); is it of another model?\n  ' +
                '\n  '.join(problems))
        if prompt_only and len(present) < len(encoder):
            self._load_frozen_encoder(local_metadata)
            for k in encoder:
                state_dict.setdefault(k, own[k])
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def _load_frozen_encoder(self, meta: dict) -> None:
        """Make sure the frozen encoder is the one a prompt-only checkpoint
        was trained on (``meta``: its metadata for this backbone, written by
        ``PromptOnlyCheckpointHook``), reading it first if this model has
        not been initialised."""
        want = meta.get('encoder_fingerprint')
        allow = os.environ.get(ALLOW_OTHER_ENCODER, '') not in ('', '0')
        if getattr(self, 'is_init', False):
            found = getattr(self, 'pretrained_fingerprint', None)
            if want and found != want:
                where = getattr(self, 'pretrained_path', None) or (
                    'the encoder in memory (no pretrained file loaded)'
                    if found is None else 'the encoder in memory')
                _encoder_mismatch(meta, where, found, allow)
            return
        tried = []
        for path in pretrained_candidates(self.init_cfg, meta):
            if '://' not in path and not os.path.isfile(path):
                tried.append(path)
                continue
            load_pretrained(self, path)
            self.is_init = True
            if want and self.pretrained_fingerprint != want:
                _encoder_mismatch(meta, self.pretrained_path,
                                  self.pretrained_fingerprint, allow)
            return
        raise CheckpointMismatchError(
            'a prompt-only checkpoint (no frozen ViT weights) needs the '
            'pretrained ViT to load onto; not found: '
            f'{tried or "no path"}. Set the backbone\'s '
            'init_cfg=dict(type=\'Pretrained\', checkpoint=...)')

    def outputs(self, raw, hw) -> Tuple[Tensor, ...]:
        """tuple over ``out_indices`` of (B, D, H/p, W/p) maps
        (``featmap``) or (B, D) vectors (``cls_token``, ``avg_featmap``,
        ``avg_all_tokens``), from the raw block outputs ``raw`` (see
        :meth:`ViTEncoder.outputs`)."""
        if self.out_type == 'featmap':
            return super().outputs(raw, hw)
        if self.out_type == 'avg_all_tokens':
            return tuple(self._pool_norm(o[:, 1:].mean(dim=1))
                         for o in self.output_tokens(raw, norm=False))
        outs = self.output_tokens(raw)
        if self.out_type == 'cls_token':
            return tuple(o[:, 0] for o in outs)
        n = 1 + self.num_prompt_tokens  # avg_featmap: the patch tokens
        return tuple(o[:, n:].mean(dim=1) for o in outs)

    def _pool_norm(self, x: Tensor) -> Tensor:
        """The LayerNorm after ``avg_all_tokens`` pooling, (B, D)."""
        if self.pool_norm == 'pretrained':
            return self.norm(x)
        return F.layer_norm(x, self.norm.normalized_shape, eps=self.norm.eps)


def _check_init_cfg(init_cfg) -> None:
    if not isinstance(init_cfg, dict) or init_cfg.get('type') != 'Pretrained':
        raise ValueError(f"init_cfg must be dict(type='Pretrained', "
                         f"checkpoint=PATH), got {init_cfg!r}")
    if not init_cfg.get('checkpoint'):
        raise ValueError("init_cfg=dict(type='Pretrained') needs "
                         "'checkpoint' (a path to the ViT weights)")


def pretrained_candidates(init_cfg: Optional[dict], meta: dict) -> List[str]:
    """Where the pretrained ViT of a prompt-only checkpoint is looked for,
    in this order (duplicates dropped): the backbone's ``init_cfg`` file
    (the config's choice, relative to the working directory), the recorded
    path relative to the checkpoint file (travels with a copied folder), the
    recorded absolute path, the recorded path as the config wrote it."""
    out = [(init_cfg or {}).get('checkpoint')]
    ckpt_file, rel = meta.get('checkpoint_file'), meta.get('pretrained_rel')
    if ckpt_file and rel:
        out.append(os.path.normpath(
            os.path.join(os.path.dirname(ckpt_file), rel)))
    out += [meta.get('pretrained_abs'), meta.get('pretrained')]
    seen, uniq = set(), []
    for p in out:
        key = p if not p or '://' in p else os.path.abspath(p)
        if p and key not in seen:
            seen.add(key)
            uniq.append(p)
    return uniq


def _encoder_mismatch(meta: dict, found_where: str, found: Optional[str],
                      allow: bool) -> None:
    ckpt = meta.get('checkpoint_file') or 'the checkpoint'
    msg = (f'{ckpt} was trained on the frozen ViT '
           f'{meta.get("pretrained_abs") or meta.get("pretrained")} '
           f'(fingerprint {meta.get("encoder_fingerprint")}), but the '
           f'encoder here is {found_where} (fingerprint {found})')
    if allow:
        logger.warning('%s; loading anyway (%s is set)', msg,
                       ALLOW_OTHER_ENCODER)
        return
    raise EncoderMismatchError(
        f'{msg}. Its prompts and heads are meaningless on another ViT. Point '
        f'init_cfg at the file it was trained on, or set '
        f'{ALLOW_OTHER_ENCODER}=1 if you mean to load it onto this one.')
