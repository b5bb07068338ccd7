"""A plain-PyTorch ViT encoder that every prompt method of the toolbox runs on.

The encoder is a pre-norm ViT (timm's ``VisionTransformer`` without the
extras: fused qkv, attention through
:func:`torch.nn.functional.scaled_dot_product_attention`, GELU MLP). Its
parameter names are timm's, so ``timm.models.VisionTransformer.state_dict()``
loads as it is; other layouts are converted by :mod:`.checkpoint`.

Token layout inside the blocks: ``[cls, prompt slot (N), patches (M)]``.
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
import math
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

ARCH_SETTINGS: Dict[str, Dict[str, int]] = {
    'b': dict(embed_dims=768, num_layers=12, num_heads=12,
              feedforward_channels=3072),
    'l': dict(embed_dims=1024, num_layers=24, num_heads=16,
              feedforward_channels=4096),
    'h': dict(embed_dims=1280, num_layers=32, num_heads=16,
              feedforward_channels=5120),
}
ARCH_SETTINGS['base'] = ARCH_SETTINGS['b']
ARCH_SETTINGS['large'] = ARCH_SETTINGS['l']
ARCH_SETTINGS['huge'] = ARCH_SETTINGS['h']

_ARCH_KEYS = ('embed_dims', 'num_layers', 'num_heads', 'feedforward_channels')


def resolve_arch(arch: Union[str, dict]) -> Dict[str, int]:
    """Return the four numbers of an ``arch`` preset name or dict."""
    if isinstance(arch, str):
        if arch.lower() not in ARCH_SETTINGS:
            raise ValueError(f'arch={arch!r} is not a known preset; allowed: '
                             f'{sorted(ARCH_SETTINGS)} or a dict with keys '
                             f'{list(_ARCH_KEYS)}')
        return dict(ARCH_SETTINGS[arch.lower()])
    if isinstance(arch, dict):
        missing = [k for k in _ARCH_KEYS if k not in arch]
        extra = [k for k in arch if k not in _ARCH_KEYS]
        if missing or extra:
            raise ValueError(f'arch dict must have exactly the keys '
                             f'{list(_ARCH_KEYS)}; missing {missing}, '
                             f'unexpected {extra}')
        out = {k: int(arch[k]) for k in _ARCH_KEYS}
        if out['embed_dims'] % out['num_heads']:
            raise ValueError(f"arch: embed_dims={out['embed_dims']} is not "
                             f"divisible by num_heads={out['num_heads']}")
        return out
    raise TypeError(f'arch must be a preset name or a dict, got {arch!r}')


def add_to_slot(x: Tensor, r: Tensor) -> Tensor:
    """x (B, T, C) plus r at the prompt slot, positions 1..N: r (N, C) is
    the same for every sample, r (B, N, C) one per sample."""
    return x + F.pad(r.to(x.dtype), (0, 0, 1, x.shape[1] - 1 - r.shape[-2]))


#: Residuals a method may add at the prompt slot of a block (EXPRESS):
#: (after norm1 (N, D), after the qkv projection (N, 3D), after the
#: attention's output projection (N, D)).
SlotResiduals = Tuple[Tensor, Tensor, Tensor]


def check_patch_grid(img_size, patch_size: int) -> Tuple[int, int]:
    """``img_size`` as (H, W), checked to be divisible by ``patch_size``
    (a positive int); named errors otherwise."""
    img_size = to_2tuple(img_size)
    if not isinstance(patch_size, int) or patch_size <= 0:
        raise ValueError(f'patch_size must be a positive int, got '
                         f'{patch_size!r}')
    if any(s <= 0 or s % patch_size for s in img_size):
        raise ValueError(f'img_size={img_size} must be positive and '
                         f'divisible by patch_size={patch_size}')
    return img_size


def resolve_out_indices(out_indices: Union[int, Sequence[int]], n: int,
                        unit: str = 'layers') -> Tuple[int, ...]:
    """``out_indices`` (negative ones counted from the end) as indices in
    0..n-1; a named error for one out of range."""
    if isinstance(out_indices, int):
        out_indices = [out_indices]
    idx = []
    for i in out_indices:
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise ValueError(f'out_indices: {i} is out of range for {n} '
                             f'{unit}')
        idx.append(j)
    return tuple(idx)


def to_2tuple(x: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(x, int):
        return (x, x)
    x = tuple(int(v) for v in x)
    if len(x) != 2:
        raise ValueError(f'expected an int or a pair, got {x!r}')
    return x


def resize_pos_embed(pos_embed: Tensor, src_hw: Tuple[int, int],
                     dst_hw: Tuple[int, int],
                     num_prefix_tokens: int = 1) -> Tensor:
    """Bicubically resample the patch part of an absolute position embedding.

    Args:
        pos_embed: (1, num_prefix_tokens + Hs*Ws, D).
        src_hw: (Hs, Ws), the grid ``pos_embed`` was made for.
        dst_hw: (Hd, Wd), the grid wanted.

    Returns:
        (1, num_prefix_tokens + Hd*Wd, D). The prefix (cls) part is kept as
        it is. Same interpolation as mmseg's and mmpretrain's
        ``resize_pos_embed`` (bicubic, ``align_corners=False``).
    """
    if tuple(src_hw) == tuple(dst_hw):
        return pos_embed
    prefix = pos_embed[:, :num_prefix_tokens]
    grid = pos_embed[:, num_prefix_tokens:]
    d = grid.shape[-1]
    if grid.shape[1] != src_hw[0] * src_hw[1]:
        raise ValueError(f'pos_embed has {grid.shape[1]} patch positions, '
                         f'which is not the grid {src_hw}')
    grid = grid.reshape(1, src_hw[0], src_hw[1], d).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(), size=dst_hw, mode='bicubic',
                         align_corners=False).to(pos_embed.dtype)
    grid = grid.permute(0, 2, 3, 1).reshape(1, dst_hw[0] * dst_hw[1], d)
    return torch.cat([prefix, grid], dim=1)


class PatchEmbed(nn.Module):
    """Image to patch tokens: (B, C, H, W) -> (B, H/p * W/p, D).

    An input whose sides are not multiples of the patch size is padded at
    the bottom and right (mmseg's ``padding='corner'``), so whole-image
    inference works on any size.
    """

    def __init__(self, patch_size: int, in_channels: int, embed_dims: int,
                 bias: bool = True):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, patch_size,
                              bias=bias)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        p = self.patch_size
        h, w = x.shape[-2:]
        pad_h, pad_w = (-h) % p, (-w) % p
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        x = self.proj(x)
        hw = (x.shape[-2], x.shape[-1])
        return x.flatten(2).transpose(1, 2), hw


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
                 attn_drop: float = 0., proj_drop: float = 0.):
        super().__init__()
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
            qkv = add_to_slot(qkv, residuals[0])
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
            out = add_to_slot(out, residuals[1])
        return self.proj_drop(out), row


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float = 0.):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class DropPath(nn.Module):
    """Stochastic depth per sample."""

    def __init__(self, p: float = 0.):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0. or not self.training:
            return x
        keep = 1 - self.p
        mask = x.new_empty((x.shape[0], ) + (1, ) * (x.ndim - 1))
        return x * mask.bernoulli_(keep) / keep


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then + mlp(norm2(x)).

    Returns (x (B, T, D), cls_attn (B, heads, T) or None). ``residuals``
    (:data:`SlotResiduals`, each (N, C) or (B, N, C)) are added at the
    prompt slot after norm1, the qkv projection and the output projection;
    ``q_scale`` and ``attn_mask``: :class:`Attention`.
    """

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int,
                 qkv_bias: bool = True, drop: float = 0.,
                 attn_drop: float = 0., drop_path: float = 0.,
                 norm_eps: float = 1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, mlp_hidden, drop)

    def forward(self, x: Tensor, q_scale: Optional[Tensor] = None,
                cls_attn: bool = False, explicit: bool = False,
                residuals: Optional[SlotResiduals] = None,
                attn_mask: Optional[Tensor] = None
                ) -> Tuple[Tensor, Optional[Tensor]]:
        h = self.norm1(x)
        if residuals is not None:
            h = add_to_slot(h, residuals[0])
            residuals = residuals[1:]
        a, row = self.attn(h, q_scale, cls_attn, explicit, residuals,
                           attn_mask)
        x = x + self.drop_path(a)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x, row


class AttentionRecord:
    """What :meth:`ViTEncoder.record_attention` collects in a forward.

    ``cls_attn[l]``: (B, heads, T), the softmax attention of block l's cls
    query over its T = 1 + N + M keys (the row AR ranks with, detached);
    ``ar_indices[l]``: (B, k), the patches AR reinforced after block l, most
    salient first (PromptedViT with ``ar_mode='topk'``). Another forward
    inside the same ``with`` overwrites them.
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
            defaults to none).
    """

    #: Number of tokens in the prompt slot (0: plain ViT).
    num_prompt_tokens: int = 0
    #: The record being filled inside :meth:`record_attention`, else None.
    attention_record: Optional[AttentionRecord] = None

    @property
    def num_extra_tokens(self) -> int:
        """Tokens before the patches (cls + prompt slot), the attribute of
        mmpretrain's ViTs that its tools (``vis_cam``) read."""
        return 1 + self.num_prompt_tokens

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
                 patch_bias: bool = True):
        super().__init__()
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
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.num_patches, d))
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = [drop_path_rate * i / max(self.num_layers - 1, 1)
               for i in range(self.num_layers)]
        self.blocks = nn.ModuleList([
            Block(d, self.num_heads, a['feedforward_channels'], qkv_bias,
                  drop_rate, attn_drop_rate, dpr[i], norm_eps)
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
                                       'pos_embed', 'blocks', 'norm')]

    # ----------------------------------------------------------------- hooks
    def enter_block(self, layer: int, x: Tensor, ctx) -> Tensor:
        """Tokens block ``layer`` receives. x: (B, 1+[N]+M, D); before block
        0 it has no prompt slot yet. Default: unchanged."""
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
    def embed(self, img: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        """(B, C, H, W) -> ([cls, patches] + pos (B, 1+M, D), (h, w))."""
        x, hw = self.patch_embed(img)
        pos = self.pos_embed
        if hw != self.grid_size:
            pos = resize_pos_embed(pos, self.grid_size, hw)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + pos
        return self.pos_drop(x), hw

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
        """The one loop over the blocks. x: [cls, patches] (B, 1+M, D) from
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
        n = 1 + self.num_prompt_tokens
        return tuple(
            o[:, n:].transpose(1, 2).reshape(o.shape[0], -1, *hw)
            for o in self.output_tokens(raw))

    def forward(self, img: Tensor) -> Tuple[Tensor, ...]:
        """Patch-token maps (B, D, h, w) of the ``out_indices`` blocks (the
        form :meth:`outputs` gives)."""
        return self.outputs(*self.run_image(img))


def prompt_init_bound(patch_size: int, embed_dims: int) -> float:
    """VPT's uniform prompt init bound ``sqrt(6 / (3*p*p + D))``."""
    return math.sqrt(6. / float(3 * patch_size * patch_size + embed_dims))
