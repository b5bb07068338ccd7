"""PromptedViT: iVPT (CDC, DA, AR) and the prompt structures it is compared
with (VPT-shallow, VPT-deep, vanilla CDC, ProVP), on the shared encoder.

Notation (SPEC sections 1-3): L blocks, N prompts, M patch tokens, D dims.
``P`` = ``prompts`` (L, N, D) (shallow: (1, N, D)); ``P̂^l`` is what block l
receives in its prompt slot.

==============  ===========  =================================================
structure       block 0      block l >= 1
==============  ===========  =================================================
``shallow``     ``P^0``      block l-1's output prompts, unchanged
``deep``        ``P^0``      ``P^l``
``vanilla_cdc`` ``P^0``      ``P^l + P̂^{l-1}`` (= P^0 + ... + P^l)
``cdc``         ``P^0``      ``P^l + P^{l-1}`` (Eq. 4)
``cdc`` + DA    ``P^0``      ``P^l + Γ^{l-1} P^{l-1}`` (Eq. 5-6)
``provp``       ``P^0``      ``P^l + T^{l-1}(P̂^{l-1})`` (block l-1's output)
==============  ===========  =================================================

AR (Eq. 14-15), blocks l = 0..L-2: the cls query's softmax attention over the
M patch keys (softmax over all keys, mean over heads) picks, per image, the k
most salient patches in descending order; row j of ``ar_prompts[l]`` (k, D)
is added to the j-th of them in block l's output.

Decisions the papers leave open (written down here, see also docs/):

* ``ar_prompts`` start at zero, so an AR model starts exactly as the same
  model without AR (as DA starts at the identity).
* ``ar_mode='all'`` (Table 4 "All") adds a learnable token to *every* patch,
  by position: ``ar_prompts`` is (L-1, M, D) and ``Z^{l+1} += ar_prompts[l]``
  (no saliency, no ranking). It therefore needs inputs with the configured
  patch grid.
* Prompt dropout is applied per sample to whatever is written into the slot
  (``P̂^l``, or the added ``P^l`` for ProVP).
"""
import os
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .checkpoint import CheckpointMismatchError, load_pretrained
from .vit import ViTEncoder, prompt_init_bound

PROMPT_STRUCTURES = ('shallow', 'deep', 'vanilla_cdc', 'cdc', 'provp')
AR_MODES = ('topk', 'all')
OUT_TYPES = ('featmap', 'cls_token', 'avg_featmap')
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
            ``'cls_token'`` or ``'avg_featmap'`` (tuple of (B, D),
            mmpretrain; ``avg_featmap`` is the mean of the patch tokens).
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

    #: Names of the method's trainable parameters (SPEC section 5).
    method_param_names: Tuple[str, ...] = ()
    #: Allowed ``out_type`` values.
    out_types: Tuple[str, ...] = OUT_TYPES

    def __init__(self, *, out_type: str = 'featmap', finetune: str = 'prompt',
                 prompt_dropout: float = 0., init_cfg: Optional[dict] = None,
                 **kwargs):
        if not 0. <= prompt_dropout < 1.:
            raise ValueError(f'prompt_dropout must be in [0, 1), got '
                             f'{prompt_dropout!r}')
        if out_type not in self.out_types:
            raise ValueError(f'out_type={out_type!r}; allowed: '
                             f'{self.out_types}')
        if finetune not in FINETUNE_MODES:
            raise ValueError(f'finetune={finetune!r}; allowed: '
                             f'{FINETUNE_MODES}')
        if init_cfg is not None:
            _check_init_cfg(init_cfg)
        super().__init__(**kwargs)
        self.out_type = out_type
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
          yet: the file of ``init_cfg`` if it exists, else the one the
          hook recorded in the state dict's metadata (the loader may have
          dropped ``init_cfg``: ``mmseg.apis.init_model`` does).
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
        if 0 < len(present) < len(encoder):
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
        if not present and encoder:  # prompt-only checkpoint
            if not getattr(self, 'is_init', False):
                paths = [p for p in ((self.init_cfg or {}).get('checkpoint'),
                                     local_metadata.get('pretrained')) if p]
                found = [p for p in paths
                         if '://' in p or os.path.isfile(p)]
                if not found:
                    raise CheckpointMismatchError(
                        'a prompt-only checkpoint (no frozen ViT weights) '
                        'needs the pretrained ViT to load onto; not found: '
                        f'{paths or "no path"}. Set the backbone\'s '
                        'init_cfg=dict(type=\'Pretrained\', checkpoint=...)')
                load_pretrained(self, found[0])
                self.is_init = True
            for k in encoder:
                state_dict[k] = own[k]
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def forward(self, img: Tensor) -> Tuple[Tensor, ...]:
        """img (B, C, H, W) -> tuple over ``out_indices`` of (B, D, H/p, W/p)
        maps (``featmap``) or (B, D) vectors (``cls_token``,
        ``avg_featmap``)."""
        outs, hw = self.forward_tokens(img)
        n = 1 + self.num_prompt_tokens
        if self.out_type == 'cls_token':
            return tuple(o[:, 0] for o in outs)
        if self.out_type == 'avg_featmap':
            return tuple(o[:, n:].mean(dim=1) for o in outs)
        return tuple(
            o[:, n:].transpose(1, 2).reshape(o.shape[0], -1, *hw)
            for o in outs)


def _check_init_cfg(init_cfg) -> None:
    if not isinstance(init_cfg, dict) or init_cfg.get('type') != 'Pretrained':
        raise ValueError(f"init_cfg must be dict(type='Pretrained', "
                         f"checkpoint=PATH), got {init_cfg!r}")
    if not init_cfg.get('checkpoint'):
        raise ValueError("init_cfg=dict(type='Pretrained') needs "
                         "'checkpoint' (a path to the ViT weights)")


class PromptedViT(PromptTunedViT):
    """iVPT backbone and its ablation structures.

    Args:
        num_prompts: N prompt tokens per block; 0 = no prompts (linear
            probing, or bias tuning with ``finetune='bias'``).
        prompt_structure: one of ``PROMPT_STRUCTURES`` (table above).
        dynamic_aggregation: DA matrices Γ (``cdc`` only), init identity.
        ar_tokens: k tokens of attentive reinforcement; 0 = off.
        ar_mode: ``'topk'`` (the paper's AR) or ``'all'`` (Table 4 "All").
        prompt_dropout: dropout on the tokens written into the slot.
        Other arguments: :class:`PromptTunedViT`, :class:`ViTEncoder`.

    Trainable tensors (attributes, so ``backbone.prompts`` in a model):
    ``prompts`` (L, N, D) or (1, N, D) for shallow; ``da_weights``
    (L-1, N, N); ``ar_prompts`` (L-1, k, D), or (L-1, M, D) for ``all``.
    """

    method_param_names = ('prompts', 'da_weights', 'ar_prompts')

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 img_size: Union[int, Sequence[int]] = 224,
                 patch_size: int = 16,
                 num_prompts: int = 10,
                 prompt_structure: str = 'cdc',
                 dynamic_aggregation: bool = False,
                 ar_tokens: int = 0,
                 ar_mode: str = 'topk',
                 prompt_dropout: float = 0.,
                 **kwargs):
        if prompt_structure not in PROMPT_STRUCTURES:
            raise ValueError(f'prompt_structure={prompt_structure!r}; '
                             f'allowed: {PROMPT_STRUCTURES}')
        if not isinstance(num_prompts, int) or num_prompts < 0:
            raise ValueError(f'num_prompts must be an int >= 0, got '
                             f'{num_prompts!r}')
        if dynamic_aggregation and prompt_structure != 'cdc':
            raise ValueError(f'dynamic_aggregation=True needs '
                             f"prompt_structure='cdc', got "
                             f'{prompt_structure!r}')
        if dynamic_aggregation and num_prompts == 0:
            raise ValueError('dynamic_aggregation=True needs num_prompts > 0')
        if ar_mode not in AR_MODES:
            raise ValueError(f'ar_mode={ar_mode!r}; allowed: {AR_MODES}')
        if not isinstance(ar_tokens, int) or ar_tokens < 0:
            raise ValueError(f'ar_tokens must be an int >= 0, got '
                             f'{ar_tokens!r}')
        super().__init__(arch=arch, img_size=img_size, patch_size=patch_size,
                         prompt_dropout=prompt_dropout, **kwargs)
        if ar_tokens > self.num_patches:
            raise ValueError(f'ar_tokens={ar_tokens} is larger than the '
                             f'number of image tokens M={self.num_patches} '
                             f'(img_size={self.img_size}, '
                             f'patch_size={patch_size})')
        L, N, D = self.num_layers, num_prompts, self.embed_dims
        self.num_prompt_tokens = N
        self.prompt_structure = prompt_structure
        self.dynamic_aggregation = dynamic_aggregation
        self.ar_tokens = ar_tokens
        self.ar_mode = ar_mode

        for name in self.method_param_names:
            self.register_parameter(name, None)
        if N > 0:
            depth = 1 if prompt_structure == 'shallow' else L
            v = prompt_init_bound(patch_size, D)
            self.prompts = nn.Parameter(torch.empty(depth, N, D).uniform_(
                -v, v))
        if dynamic_aggregation:
            self.da_weights = nn.Parameter(
                torch.eye(N).repeat(L - 1, 1, 1))
        if ar_tokens > 0:
            rows = ar_tokens if ar_mode == 'topk' else self.num_patches
            self.ar_prompts = nn.Parameter(torch.zeros(L - 1, rows, D))
        self._freeze_encoder()

    # ------------------------------------------------------------- prompts
    def slot_inputs(self) -> Optional[Tensor]:
        """P̂ for every block whose slot does not depend on the image:
        (L, N, D) (shallow: (1, N, D)); for ProVP, the added P (L, N, D)."""
        P = self.prompts
        if P is None:
            return None
        s = self.prompt_structure
        if s == 'vanilla_cdc':
            return P.cumsum(dim=0)
        if s == 'cdc':
            prev = P[:-1]
            if self.da_weights is not None:
                prev = self.da_weights @ prev  # Γ^{l-1} P^{l-1}
            return torch.cat([P[:1], P[1:] + prev], dim=0)
        return P  # shallow, deep, provp

    def forward_context(self, batch_size: int):
        return self.slot_inputs()

    def _prompt(self, p: Tensor, batch_size: int) -> Tensor:
        return self.prompt_drop(p.expand(batch_size, -1, -1))

    def enter_block(self, layer: int, x: Tensor, ctx) -> Tensor:
        if ctx is None:
            return x
        b = x.shape[0]
        if layer == 0:
            return insert_slot(x, self._prompt(ctx[0:1], b))
        if self.prompt_structure == 'shallow':
            return x
        p = self._prompt(ctx[layer:layer + 1], b)
        if self.prompt_structure == 'provp':
            n = self.num_prompt_tokens
            p = x[:, 1:1 + n] + p
        return replace_slot(x, p)

    # ------------------------------------------------------------------ AR
    def needs_cls_attention(self, layer: int) -> bool:
        return (self.ar_prompts is not None and self.ar_mode == 'topk'
                and layer < self.num_layers - 1)

    def exit_block(self, layer: int, x_in: Tensor, x_out: Tensor,
                   cls_attn: Optional[Tensor], ctx) -> Tensor:
        if self.ar_prompts is None or layer == self.num_layers - 1:
            return x_out
        n = 1 + self.num_prompt_tokens
        head, patches = x_out[:, :n], x_out[:, n:]
        if self.ar_mode == 'all':
            if patches.shape[1] != self.ar_prompts.shape[1]:
                raise ValueError(
                    f"ar_mode='all' was built for {self.ar_prompts.shape[1]}"
                    f' patches (img_size={self.img_size}); the input has '
                    f'{patches.shape[1]}')
            return torch.cat([head, patches + self.ar_prompts[layer]], 1)
        k = self.ar_tokens
        if k > patches.shape[1]:
            raise ValueError(f'ar_tokens={k} is larger than the number of '
                             f'image tokens of this input '
                             f'({patches.shape[1]})')
        saliency = cls_attn[:, :, n:].mean(dim=1)  # (B, M)
        idx = saliency.topk(k, dim=1, sorted=True).indices  # (B, k)
        b, _, d = patches.shape
        patches = patches.scatter_add(
            1, idx.unsqueeze(-1).expand(b, k, d),
            self.ar_prompts[layer].to(patches.dtype).expand(b, k, d))
        return torch.cat([head, patches], dim=1)
