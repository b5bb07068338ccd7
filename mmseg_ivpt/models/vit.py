"""A plain-PyTorch ViT encoder that every prompt method of the toolbox runs on.

The encoder is a pre-norm ViT (timm's ``VisionTransformer``: fused qkv,
attention through :func:`torch.nn.functional.scaled_dot_product_attention`,
GELU MLP), with the options of the foundation encoders (docs/encoders.md):
register tokens and LayerScale (DINOv2), SwiGLU (DINOv2 ViT-g), a norm
before the blocks (``norm_pre``, CLIP), QuickGELU (OpenAI's CLIP), position
embeddings of the patches only (timm's ``no_embed_class``) and the way they
are resampled to another grid (``pos_interp``). Its parameter names are
timm's, so ``timm.models.VisionTransformer.state_dict()`` loads as it is;
other layouts are converted by :mod:`.checkpoint`
(:meth:`ViTEncoder.fit_encoder_state_dict`). The pieces it shares with the
Swin encoder, its sibling, are :mod:`.layers`'s.

Token layout inside the blocks: ``[cls, registers (R), prompt slot (N),
patches (M)]``; ``num_prefix_tokens`` = 1 + R (R = 0 but for DINOv2-reg).
The encoder knows nothing about prompts: a subclass says what enters the
prompt slot before each block (:meth:`ViTEncoder.enter_block`) and what
happens to the block's output (:meth:`ViTEncoder.exit_block`); it may ask a
block for the cls-row attention (:meth:`ViTEncoder.needs_cls_attention`) and
scale the queries of a block (:meth:`ViTEncoder.query_scale`) and add
residuals at the prompt slot inside a block
(:meth:`ViTEncoder.block_residuals`). With the hooks left as they are this
is a plain ViT.

This module imports nothing but torch, so the backbones can be benchmarked on
a machine without the OpenMMLab packages.
"""
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .checkpoint import (
    check_architecture,
    convert_to_timm,
    detect_layout,
    fit_state_dict,
)
from .layers import (
    POS_INTERP_MODES,
    DropPath,
    LayerScale,
    Mlp,
    PatchEmbed,
    arch_preset,
    check_patch_grid,
    resize_pos_embed,
    resolve_out_indices,
)

ARCH_SETTINGS: Dict[str, Dict[str, int]] = {
    's': dict(embed_dims=384, num_layers=12, num_heads=6,
              feedforward_channels=1536),
    'b': dict(embed_dims=768, num_layers=12, num_heads=12,
              feedforward_channels=3072),
    'l': dict(embed_dims=1024, num_layers=24, num_heads=16,
              feedforward_channels=4096),
    'h': dict(embed_dims=1280, num_layers=32, num_heads=16,
              feedforward_channels=5120),
    # DINOv2 ViT-g/14: SwiGLU (mlp_type='swiglu'), fc1 8192 = 2 x 4096
    'g': dict(embed_dims=1536, num_layers=40, num_heads=24,
              feedforward_channels=8192),
}
ARCH_SETTINGS['small'] = ARCH_SETTINGS['s']
ARCH_SETTINGS['giant'] = ARCH_SETTINGS['g']
ARCH_SETTINGS['base'] = ARCH_SETTINGS['b']
ARCH_SETTINGS['large'] = ARCH_SETTINGS['l']
ARCH_SETTINGS['huge'] = ARCH_SETTINGS['h']

_ARCH_KEYS = ('embed_dims', 'num_layers', 'num_heads', 'feedforward_channels')


def resolve_arch(arch: Union[str, dict]) -> Dict[str, int]:
    """Return the four numbers of an ``arch`` preset name or dict."""
    preset = arch_preset(arch, ARCH_SETTINGS, _ARCH_KEYS)
    if preset is not None:
        return preset
    out = {k: int(arch[k]) for k in _ARCH_KEYS}
    if out['embed_dims'] % out['num_heads']:
        raise ValueError(f"arch: embed_dims={out['embed_dims']} is not "
                         f"divisible by num_heads={out['num_heads']}")
    return out


def add_to_slot(x: Tensor, r: Tensor, start: int) -> Tensor:
    """x (B, T, C) plus r at the prompt slot, positions start..start+N-1
    (start: the prefix tokens, cls + registers): r (N, C) is the same for
    every sample, r (B, N, C) one per sample."""
    return x + F.pad(r.to(x.dtype),
                     (0, 0, start, x.shape[1] - start - r.shape[-2]))


#: Residuals a method may add at the prompt slot of a block (EXPRESS):
#: (after norm1 (N, D), after the qkv projection (N, 3D), after the
#: attention's output projection (N, D)).
SlotResiduals = Tuple[Tensor, Tensor, Tensor]


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection.

    ``forward(x)`` with x (B, T, D) returns (out (B, T, D), cls_attn), where
    ``cls_attn`` is None unless asked for, else (B, heads, T): the softmax
    attention of the cls query (token 0) over all T keys. The main attention
    always runs through SDPA; the cls row is computed apart (one query row per
    head, without autograd: it only feeds a ranking) so the full (T, T)
    matrix is never materialised. ``explicit=True``
    computes everything through an explicit softmax instead (reference path
    for tests).

    ``q_scale``: a scalar, or (B, 1, 1, 1) per sample, multiplying the
    queries. ``attn_mask``: (B, 1, 1, T) bool, False at keys no query may
    attend to (the padding of a packed batch of sequences of different
    lengths, :mod:`.multitask`); None: every key.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True,
                 attn_drop: float = 0., proj_drop: float = 0.,
                 slot_start: int = 1):
        super().__init__()
        self.slot_start = slot_start  # where the prompt slot begins
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor, q_scale: Optional[Tensor] = None,
                cls_attn: bool = False, explicit: bool = False,
                residuals: Optional[Tuple[Tensor, Tensor]] = None,
                attn_mask: Optional[Tensor] = None
                ) -> Tuple[Tensor, Optional[Tensor]]:
        b, t, c = x.shape
        qkv = self.qkv(x)
        if residuals is not None:  # (N, 3D) after the qkv projection
            qkv = add_to_slot(qkv, residuals[0], self.slot_start)
        qkv = qkv.reshape(b, t, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, h, T, hd) each
        if q_scale is not None:
            # Dividing all logits by a temperature == scaling the queries.
            q = q * q_scale.to(q.dtype)
        drop = self.attn_drop if self.training else 0.
        row = None
        if explicit:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            if attn_mask is not None:
                attn = attn.masked_fill(~attn_mask, float('-inf'))
            attn = attn.softmax(dim=-1)
            if cls_attn:
                row = attn[:, :, 0]
            out = F.dropout(attn, drop, self.training) @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask,
                                                 dropout_p=drop)
            if cls_attn:
                # only ever used for a ranking (top-k): no autograd graph
                with torch.no_grad():
                    logits = (q[:, :, :1] * self.scale) @ k.transpose(-2, -1)
                    if attn_mask is not None:
                        logits = logits.masked_fill(~attn_mask,
                                                    float('-inf'))
                    row = logits.softmax(dim=-1)[:, :, 0]
        out = self.proj(out.transpose(1, 2).reshape(b, t, c))
        if residuals is not None:  # (N, D) after the output projection
            out = add_to_slot(out, residuals[1], self.slot_start)
        return self.proj_drop(out), row


class Block(nn.Module):
    """Pre-norm transformer block: x + ls1(attn(norm1(x))), then
    + ls2(mlp(norm2(x))); ``ls1``/``ls2`` are LayerScale when
    ``layer_scale_init`` is a number, else identities.

    Returns (x (B, T, D), cls_attn (B, heads, T) or None). ``residuals``
    (:data:`SlotResiduals`, each (N, C) or (B, N, C)) are added at the
    prompt slot after norm1, the qkv projection and the output projection;
    ``q_scale`` and ``attn_mask``: :class:`Attention`.
    """

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int,
                 qkv_bias: bool = True, drop: float = 0.,
                 attn_drop: float = 0., drop_path: float = 0.,
                 norm_eps: float = 1e-6,
                 layer_scale_init: Optional[float] = None,
                 act_layer: str = 'gelu', mlp_type: str = 'mlp',
                 slot_start: int = 1):
        super().__init__()
        self.slot_start = slot_start
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop,
                              slot_start)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, mlp_hidden, drop, act_layer, mlp_type)
        scaled = layer_scale_init is not None
        self.ls1 = LayerScale(dim, layer_scale_init) if scaled else \
            nn.Identity()
        self.ls2 = LayerScale(dim, layer_scale_init) if scaled else \
            nn.Identity()

    def forward(self, x: Tensor, q_scale: Optional[Tensor] = None,
                cls_attn: bool = False, explicit: bool = False,
                residuals: Optional[SlotResiduals] = None,
                attn_mask: Optional[Tensor] = None
                ) -> Tuple[Tensor, Optional[Tensor]]:
        h = self.norm1(x)
        if residuals is not None:
            h = add_to_slot(h, residuals[0], self.slot_start)
            residuals = residuals[1:]
        a, row = self.attn(h, q_scale, cls_attn, explicit, residuals,
                           attn_mask)
        x = x + self.drop_path(self.ls1(a))
        x = x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))
        return x, row


class AttentionRecord:
    """What :meth:`ViTEncoder.record_attention` collects in a forward.

    ``cls_attn[l]``: (B, heads, T), the softmax attention of block l's cls
    query over its T = 1 + R + N + M keys (the row AR ranks with, detached);
    ``ar_indices[l]``: (B, k), the patches AR reinforced after block l
    (indices into the M patch tokens), most salient first (PromptedViT with
    ``ar_mode='topk'``). Another forward inside the same ``with``
    overwrites them.
    """

    def __init__(self):
        self.cls_attn: Dict[int, Tensor] = {}
        self.ar_indices: Dict[int, Tensor] = {}


class ViTEncoder(nn.Module):
    """Pre-norm ViT with a cls token and hooks for a prompt slot.

    Args:
        arch: ``'b'``, ``'l'``, ``'h'`` (or ``'base'``...) or a dict with
            ``embed_dims``, ``num_layers``, ``num_heads``,
            ``feedforward_channels``.
        img_size: training image size; fixes the position-embedding grid
            (other input sizes are handled by resampling it on the fly).
        patch_size: 16 or 14 (any positive int dividing ``img_size``).
        out_indices: blocks whose outputs are returned (negative counts from
            the end).
        final_norm: apply the final LayerNorm to the last block's output.
        with_cp: activation checkpointing of the blocks while training.
        patch_bias: bias in the patch embedding (timm: yes; mmseg's ViT
            defaults to none; CLIP: none).
        num_reg_tokens: register tokens after cls (DINOv2-reg: 4); the
            prompt slot comes after them.
        no_embed_class: the position embedding covers the patches only (cls
            and registers get none; timm's DINOv2-reg), else it has a
            position for each prefix token too.
        layer_scale_init: LayerScale in every block starting at this value
            (DINOv2: 1e-5); None: no LayerScale.
        pre_norm: a LayerNorm (``norm_pre``) on the embedded tokens before
            block 0 (CLIP's ``ln_pre``).
        act_layer: the MLP activation, ``'gelu'``, ``'quick_gelu'``
            (OpenAI's CLIP) or ``'silu'`` (SwiGLU).
        mlp_type: ``'mlp'`` or ``'swiglu'`` (DINOv2 ViT-g;
            :class:`~.layers.Mlp`).
        pos_interp: how the position embedding is resampled to another grid
            (:data:`~.layers.POS_INTERP_MODES`; DINOv2: ``'dinov2'``).
    """

    #: The options that change what a trained encoder computes, recorded
    #: with a prompt-tuned backbone's tensors (``PromptTuning.
    #: recorded_settings``; the others are shapes, or matter in training
    #: only).
    recorded_settings = ('embed_dims', 'num_layers', 'num_heads',
                         'patch_size', 'out_indices', 'final_norm',
                         'norm_eps', 'act_layer', 'mlp_type',
                         'num_reg_tokens', 'no_embed_class', 'pre_norm',
                         'pos_interp')
    #: Number of tokens in the prompt slot (0: plain ViT).
    num_prompt_tokens: int = 0
    #: The record being filled inside :meth:`record_attention`, else None.
    attention_record: Optional[AttentionRecord] = None

    @property
    def num_prefix_tokens(self) -> int:
        """Tokens before the prompt slot: cls and the registers."""
        return 1 + self.num_reg_tokens

    @property
    def num_extra_tokens(self) -> int:
        """Tokens before the patches (cls + registers + prompt slot), the
        attribute of mmpretrain's ViTs that its tools (``vis_cam``) read."""
        return self.num_prefix_tokens + self.num_prompt_tokens

    @property
    def num_pos_prefix(self) -> int:
        """Positions of the position embedding before the patch grid."""
        return 0 if self.no_embed_class else self.num_prefix_tokens

    @contextmanager
    def record_attention(self) -> Iterator[AttentionRecord]:
        """``with encoder.record_attention() as rec:`` every block computes
        its cls row (the path AR uses) and the forward stores it, and AR's
        selections, in ``rec`` (:class:`AttentionRecord`)."""
        self.attention_record = rec = AttentionRecord()
        try:
            yield rec
        finally:
            self.attention_record = None

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 img_size: Union[int, Sequence[int]] = 224,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = -1,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 norm_eps: float = 1e-6,
                 final_norm: bool = True,
                 with_cp: bool = False,
                 patch_bias: bool = True,
                 num_reg_tokens: int = 0,
                 no_embed_class: bool = False,
                 layer_scale_init: Optional[float] = None,
                 pre_norm: bool = False,
                 act_layer: str = 'gelu',
                 mlp_type: str = 'mlp',
                 pos_interp: str = 'bicubic'):
        super().__init__()
        if not isinstance(num_reg_tokens, int) or num_reg_tokens < 0:
            raise ValueError(f'num_reg_tokens must be an int >= 0, got '
                             f'{num_reg_tokens!r}')
        if pos_interp not in POS_INTERP_MODES:
            raise ValueError(f'pos_interp={pos_interp!r}; allowed: '
                             f'{POS_INTERP_MODES}')
        if layer_scale_init is not None and not isinstance(
                layer_scale_init, (int, float)):
            raise ValueError(f'layer_scale_init must be a number or None, '
                             f'got {layer_scale_init!r}')
        self.num_reg_tokens = num_reg_tokens
        self.no_embed_class = bool(no_embed_class)
        self.layer_scale_init = layer_scale_init
        self.pre_norm = bool(pre_norm)
        self.act_layer, self.mlp_type = act_layer, mlp_type
        self.pos_interp = pos_interp
        self.norm_eps = norm_eps
        a = resolve_arch(arch)
        self.embed_dims = d = a['embed_dims']
        self.num_layers = a['num_layers']
        self.num_heads = a['num_heads']
        self.img_size = check_patch_grid(img_size, patch_size)
        self.patch_size = patch_size
        self.grid_size = (self.img_size[0] // patch_size,
                          self.img_size[1] // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.out_indices = resolve_out_indices(out_indices, self.num_layers)
        self.final_norm = final_norm
        self.with_cp = with_cp
        #: Reference attention path (full softmax) instead of SDPA; tests.
        self.explicit_attention = False

        self.patch_embed = PatchEmbed(patch_size, in_channels, d, patch_bias)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        if num_reg_tokens:
            self.reg_token = nn.Parameter(torch.zeros(1, num_reg_tokens, d))
        else:
            self.register_parameter('reg_token', None)
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.num_pos_prefix + self.num_patches, d))
        self.pos_drop = nn.Dropout(drop_rate)
        # CLIP's ln_pre; an identity (no tensors) otherwise
        self.norm_pre = nn.LayerNorm(d, eps=norm_eps) if pre_norm else \
            nn.Identity()
        dpr = [drop_path_rate * i / max(self.num_layers - 1, 1)
               for i in range(self.num_layers)]
        self.blocks = nn.ModuleList([
            Block(d, self.num_heads, a['feedforward_channels'], qkv_bias,
                  drop_rate, attn_drop_rate, dpr[i], norm_eps,
                  layer_scale_init, act_layer, mlp_type,
                  self.num_prefix_tokens)
            for i in range(self.num_layers)
        ])
        # Kept even when final_norm=False so that checkpoints load whole.
        self.norm = nn.LayerNorm(d, eps=norm_eps)
        self._init_encoder_weights()

    # ------------------------------------------------------------------ init
    def _init_encoder_weights(self) -> None:
        """Random init as timm's ViT (used when no checkpoint is given)."""
        nn.init.trunc_normal_(self.pos_embed, std=.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.reg_token is not None:
            nn.init.normal_(self.reg_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.patch_embed.proj.bias is not None:
            nn.init.zeros_(self.patch_embed.proj.bias)
        w = self.patch_embed.proj.weight
        nn.init.trunc_normal_(w.view(w.shape[0], -1), std=.02)

    def encoder_state_dict_keys(self) -> List[str]:
        """Names of the pretrained ViT's tensors (what a checkpoint gives)."""
        return [k for k in ViTEncoder.state_dict(self).keys()
                if k.split('.')[0] in ('patch_embed', 'cls_token',
                                       'reg_token', 'pos_embed', 'norm_pre',
                                       'blocks', 'norm')]

    def fit_encoder_state_dict(self, sd: Dict[str, Tensor],
                               source: str = 'state dict'
                               ) -> Tuple[str, Dict[str, Tensor],
                                          Dict[str, Tensor]]:
        """The pretrained ViT of ``sd`` (a timm, mmseg, mmpretrain, DINOv2
        or CLIP layout, :mod:`.checkpoint`; of this encoder's architecture
        family, else :class:`~.checkpoint.ArchitectureMismatchError`) in
        this encoder's names: (layout, the
        renamed state dict, exactly the encoder's tensors, the position
        embedding resampled to this grid). What
        :func:`~.checkpoint.load_encoder_weights` calls."""
        layout = detect_layout(sd)
        timm_sd = convert_to_timm(sd, layout)
        check_architecture(self, timm_sd, layout, source)
        return layout, timm_sd, fit_state_dict(
            self, timm_sd, source=f'{source} ({layout} layout)')

    def frozen_modules(self) -> Tuple[nn.Module, ...]:
        """The modules of the pretrained ViT that a frozen encoder keeps in
        eval mode while training (no dropout, no drop path)."""
        return (self.patch_embed, self.pos_drop, self.norm_pre, self.blocks,
                self.norm)

    def bias_tuned(self, name: str) -> bool:
        """Whether bias tuning trains the encoder parameter ``name``: the
        blocks' biases, LayerNorm biases included; not the patch
        embedding's nor the final norm's (the paper's 270,336 for ViT-L)."""
        return name.startswith('blocks.') and name.endswith('.bias')

    # ----------------------------------------------------------------- hooks
    def enter_block(self, layer: int, x: Tensor, ctx) -> Tensor:
        """Tokens block ``layer`` receives. x: (B, 1+R+[N]+M, D); before
        block 0 it has no prompt slot yet. Default: unchanged."""
        return x

    def exit_block(self, layer: int, x_in: Tensor, x_out: Tensor,
                   cls_attn: Optional[Tensor], ctx) -> Tensor:
        """What the next block sees of block ``layer``'s output. x_in is what
        the block received; cls_attn (B, heads, T) if asked for, else None."""
        return x_out

    def needs_cls_attention(self, layer: int, ctx=None) -> bool:
        """Whether block ``layer`` computes the cls row of its attention
        for :meth:`exit_block`."""
        return False

    def query_scale(self, layer: int, ctx=None) -> Optional[Tensor]:
        """What block ``layer`` multiplies its queries by (a scalar tensor,
        or (B, 1, 1, 1)); None: nothing."""
        return None

    def attention_mask(self, layer: int, ctx) -> Optional[Tensor]:
        """Keys block ``layer`` may attend to, (B, 1, 1, T) bool; None: all
        (only a packed batch of several tasks pads, :mod:`.multitask`)."""
        return None

    def block_residuals(self, layer: int, ctx) -> Optional[SlotResiduals]:
        """Residuals added at the prompt slot inside block ``layer``
        (:data:`SlotResiduals`); default none."""
        return None

    def forward_context(self):
        """Per-forward state computed once for all layers (e.g. prompts)."""
        return None

    # --------------------------------------------------------------- forward
    def resized_pos_embed(self, hw: Tuple[int, int],
                          pos: Optional[Tensor] = None) -> Tensor:
        """The position embedding ``pos`` (default this encoder's, made for
        ``grid_size``) resampled to the patch grid ``hw`` by
        ``pos_interp``: (1, num_pos_prefix + h*w, D)."""
        pos = self.pos_embed if pos is None else pos
        return resize_pos_embed(pos, self.grid_size, hw, self.num_pos_prefix,
                                self.pos_interp)

    def embed(self, img: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        """(B, C, H, W) -> (norm_pre([cls, registers, patches] + pos)
        (B, 1+R+M, D), (h, w)); with ``no_embed_class`` only the patches
        get positions (timm's ``_pos_embed``)."""
        x, hw = self.patch_embed(img)
        pos = self.resized_pos_embed(hw)
        prefix = [self.cls_token.expand(x.shape[0], -1, -1)]
        if self.reg_token is not None:
            prefix.append(self.reg_token.expand(x.shape[0], -1, -1))
        if self.no_embed_class:
            x = torch.cat(prefix + [x + pos], dim=1)
        else:
            x = torch.cat(prefix + [x], dim=1) + pos
        return self.norm_pre(self.pos_drop(x)), hw

    def _run_block(self, layer: int, x: Tensor, ctx=None, hooks=None):
        hooks = self if hooks is None else hooks
        blk = self.blocks[layer]
        args = (x, hooks.query_scale(layer, ctx),
                self.attention_record is not None
                or hooks.needs_cls_attention(layer, ctx),
                self.explicit_attention, hooks.block_residuals(layer, ctx),
                hooks.attention_mask(layer, ctx))
        if self.with_cp and self.training and torch.is_grad_enabled():
            return checkpoint(blk, *args, use_reentrant=False)
        return blk(*args)

    def run_blocks(self, x: Tensor, ctx, keep: Sequence[int],
                   hooks=None) -> Dict[int, Tensor]:
        """The one loop over the blocks. x: [cls, registers, patches]
        (B, 1+R+M, D) from
        :meth:`embed`; returns the raw output (B, T, D) of every block in
        ``keep`` (no final norm), stopping after the last of them.

        ``hooks``: the object whose hook methods (:meth:`enter_block`...)
        the loop calls; default this encoder. A
        :class:`~.multitask.TaskMux` passes itself to run the blocks of a
        shared encoder for several methods at once.
        """
        hooks = self if hooks is None else hooks
        outs = {}
        for layer in range(max(keep) + 1):
            x_in = hooks.enter_block(layer, x, ctx)
            x_out, row = self._run_block(layer, x_in, ctx, hooks)
            if self.attention_record is not None:
                self.attention_record.cls_attn[layer] = row.detach()
            x = hooks.exit_block(layer, x_in, x_out, row, ctx)
            if layer in keep:
                outs[layer] = x
        return outs

    def run_image(self, img: Tensor
                  ) -> Tuple[Dict[int, Tensor], Tuple[int, int]]:
        """:meth:`embed` then :meth:`run_blocks` with this encoder's hooks:
        the raw outputs of the ``out_indices`` blocks and the patch grid."""
        x, hw = self.embed(img)
        return self.run_blocks(x, self.forward_context(),
                               self.out_indices), hw

    def output_tokens(self, raw: Dict[int, Tensor], norm: bool = True
                      ) -> List[Tensor]:
        """The token sequences of the ``out_indices`` blocks from their raw
        outputs ``raw`` (:meth:`run_blocks`), the last block's final-normed
        when ``norm`` and ``final_norm``."""
        last = self.num_layers - 1
        return [self.norm(raw[i]) if norm and self.final_norm and i == last
                else raw[i] for i in self.out_indices]

    def forward_tokens(self, img: Tensor, norm: bool = True
                       ) -> Tuple[List[Tensor], Tuple[int, int]]:
        """Run the blocks; return the token sequences (B, T, D) of the
        ``out_indices`` blocks (:meth:`output_tokens`) and the patch grid
        (h, w)."""
        raw, hw = self.run_image(img)
        return self.output_tokens(raw, norm), hw

    def outputs(self, raw: Dict[int, Tensor], hw: Tuple[int, int]
                ) -> Tuple[Tensor, ...]:
        """What :meth:`forward` returns, from the raw block outputs of
        :meth:`run_blocks` and the patch grid ``hw``: patch-token maps
        (B, D, h, w) of the ``out_indices`` blocks."""
        n = self.num_extra_tokens
        return tuple(
            o[:, n:].transpose(1, 2).reshape(o.shape[0], -1, *hw)
            for o in self.output_tokens(raw))

    def forward(self, img: Tensor) -> Tuple[Tensor, ...]:
        """Patch-token maps (B, D, h, w) of the ``out_indices`` blocks (the
        form :meth:`outputs` gives)."""
        return self.outputs(*self.run_image(img))

