"""PromptedViT: iVPT (CDC, DA, AR) and the prompt structures it is compared
with (VPT-shallow, VPT-deep, vanilla CDC, ProVP), on the shared encoder.

Notation (iVPT Sec. 3): L blocks, N prompts, M patch tokens, D dims.
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
``express``     ``P^0``      block l-1's output prompts, unchanged; inside
                             every block l, residuals at the prompt slot
==============  ===========  =================================================

EXPRESS (Das et al., CVPR 2023; iVPT Fig. 3 (C), docs/design.md): with
``R_ln^l`` (N, D), ``R_qkv^l`` (N, 3D), ``R_o^l`` (N, D) added at the N
prompt positions only, block l computes ``H = LN1(X) + R_ln^l``,
``[Q K V] = H W_qkv + b_qkv + R_qkv^l``, ``A = MSA(Q, K, V) W_o + b_o +
R_o^l``, ``X' = X + A``, ``X'' = X' + MLP(LN2(X'))``. The residuals start
at zero (the model starts as VPT-shallow).

AR (Eq. 14-15), blocks l = 0..L-2: the cls query's softmax attention over the
M patch keys (softmax over all keys, mean over heads) picks, per image, the k
most salient patches in descending order; row j of ``ar_prompts[l]`` (k, D)
is added to the j-th of them in block l's output.

Register tokens (DINOv2-reg, docs/encoders.md): the sequence is ``[cls,
registers (R), prompt slot (N), patches (M)]``. The slot comes after the
registers, which stay the pretrained model's own tokens (no method writes
them). AR ranks only the M patch columns of the cls row: registers, like
prompts, are keys the softmax normalises over but never candidates.

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
from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

from .layers import cdc_prompts, insert_slot, prompt_init_bound, replace_slot
from .prompt_tuned import PromptTunedViT

PROMPT_STRUCTURES = ('shallow', 'deep', 'vanilla_cdc', 'cdc', 'provp',
                     'express')
AR_MODES = ('topk', 'all')


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
    ``prompts`` (L, N, D) or (1, N, D) for shallow and express;
    ``da_weights`` (L-1, N, N); ``ar_prompts`` (L-1, k, D), or (L-1, M, D)
    for ``all``; EXPRESS's residuals ``express_ln`` (L, N, D),
    ``express_qkv`` (L, N, 3D), ``express_proj`` (L, N, D).
    """

    method_param_names = ('prompts', 'da_weights', 'ar_prompts',
                          'express_ln', 'express_qkv', 'express_proj')
    recorded_settings = ('num_prompts', 'prompt_structure',
                         'dynamic_aggregation', 'ar_tokens', 'ar_mode')

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
        if prompt_structure == 'express' and num_prompts == 0:
            raise ValueError("prompt_structure='express' needs "
                             'num_prompts > 0 (its residuals sit at the '
                             'prompt positions)')
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
        self.dynamic_aggregation = bool(dynamic_aggregation)
        self.ar_tokens = ar_tokens
        self.ar_mode = ar_mode

        for name in self.method_param_names:
            self.register_parameter(name, None)
        if N > 0:
            depth = 1 if prompt_structure in ('shallow', 'express') else L
            v = prompt_init_bound(patch_size, D)
            self.prompts = nn.Parameter(torch.empty(depth, N, D).uniform_(
                -v, v))
        if dynamic_aggregation:
            self.da_weights = nn.Parameter(
                torch.eye(N).repeat(L - 1, 1, 1))
        if ar_tokens > 0:
            rows = ar_tokens if ar_mode == 'topk' else self.num_patches
            self.ar_prompts = nn.Parameter(torch.zeros(L - 1, rows, D))
        if prompt_structure == 'express':
            self.express_ln = nn.Parameter(torch.zeros(L, N, D))
            self.express_qkv = nn.Parameter(torch.zeros(L, N, 3 * D))
            self.express_proj = nn.Parameter(torch.zeros(L, N, D))
        self._freeze_encoder()

    # ------------------------------------------------------------- prompts
    def forward_context(self) -> Optional[Tensor]:
        """P̂ for every block whose slot does not depend on the image,
        computed once per forward: (L, N, D) (shallow: (1, N, D)); for
        ProVP, the added P (L, N, D)."""
        if self.prompts is None:
            return None
        # shallow, deep, provp, express: P as it is
        return cdc_prompts(self.prompts, self.prompt_structure,
                           self.da_weights)

    def _prompt(self, p: Tensor, batch_size: int) -> Tensor:
        return self.prompt_drop(p.expand(batch_size, -1, -1))

    def enter_block(self, layer: int, x: Tensor, ctx) -> Tensor:
        if ctx is None:
            return x
        b, s = x.shape[0], self.num_prefix_tokens
        if layer == 0:
            return insert_slot(x, self._prompt(ctx[0:1], b), s)
        if self.prompt_structure in ('shallow', 'express'):
            return x
        p = self._prompt(ctx[layer:layer + 1], b)
        if self.prompt_structure == 'provp':
            n = self.num_prompt_tokens
            p = x[:, s:s + n] + p
        return replace_slot(x, p, s)

    def block_residuals(self, layer: int, ctx):
        """EXPRESS: (R_ln^l, R_qkv^l, R_o^l) at the prompt slot."""
        if self.express_ln is None:
            return None
        return (self.express_ln[layer], self.express_qkv[layer],
                self.express_proj[layer])

    # ------------------------------------------------------------------ AR
    def needs_cls_attention(self, layer: int, ctx=None) -> bool:
        return (self.ar_prompts is not None and self.ar_mode == 'topk'
                and layer < self.num_layers - 1)

    def exit_block(self, layer: int, x_in: Tensor, x_out: Tensor,
                   cls_attn: Optional[Tensor], ctx) -> Tensor:
        if self.ar_prompts is None or layer == self.num_layers - 1:
            return x_out
        n = self.num_extra_tokens  # cls, registers, prompts
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
        if self.attention_record is not None:
            self.attention_record.ar_indices[layer] = idx
        b, _, d = patches.shape
        patches = patches.scatter_add(
            1, idx.unsqueeze(-1).expand(b, k, d),
            self.ar_prompts[layer].to(patches.dtype).expand(b, k, d))
        return torch.cat([head, patches], dim=1)
