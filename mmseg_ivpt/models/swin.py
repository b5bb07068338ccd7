"""A Swin Transformer encoder in plain PyTorch, and the checkpoint layouts
it reads.

:class:`SwinEncoder` is timm's ``SwinTransformer`` math (patch embedding
with LayerNorm, window attention with a relative position bias,
cyclic-shifted windows with timm's -100 mask, patch merging at the start of
stages 1.., final LayerNorm) with timm's parameter names:
``timm.models.swin_transformer.SwinTransformer.state_dict()`` loads as it
is. :meth:`SwinEncoder.fit_encoder_state_dict` (so
:func:`~.checkpoint.load_encoder_weights` and ``init_cfg``) also reads the
original Microsoft layout and mmpretrain's ``SwinTransformer`` (renamed, and
its patch-merging channels put back into timm's order): the layouts are
here, beside the encoder.

A sibling of :class:`~.vit.ViTEncoder` (as in timm), not a kind of it: it
knows nothing of prompts and imports no ViT. It has one hook,
:meth:`SwinEncoder.block_prompts`: the tokens a block attends to in every
window besides the window's own (a method, :class:`~.prompted_swin.
PromptedSwin`, fills it in). With the hook left as it is this is a plain
Swin.

This module imports nothing but torch.
"""
import functools
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .checkpoint import CheckpointMismatchError, abbrev_keys
from .layers import (
    DropPath,
    Mlp,
    PatchEmbed,
    arch_preset,
    check_patch_grid,
    resolve_out_indices,
)

SWIN_ARCHS: Dict[str, dict] = {
    't': dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    's': dict(embed_dims=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    'b': dict(embed_dims=128, depths=(2, 2, 18, 2),
              num_heads=(4, 8, 16, 32)),
    'l': dict(embed_dims=192, depths=(2, 2, 18, 2),
              num_heads=(6, 12, 24, 48)),
}
for _short, _long in (('t', 'tiny'), ('s', 'small'), ('b', 'base'),
                      ('l', 'large')):
    SWIN_ARCHS[_long] = SWIN_ARCHS[_short]
_SWIN_KEYS = ('embed_dims', 'depths', 'num_heads')



def resolve_swin_arch(arch: Union[str, dict]) -> dict:
    """``embed_dims`` (stage 0 width), ``depths`` and ``num_heads`` (one per
    stage) of a preset name or dict."""
    preset = arch_preset(arch, SWIN_ARCHS, _SWIN_KEYS, 'Swin preset')
    if preset is not None:
        return preset
    out = dict(embed_dims=int(arch['embed_dims']),
               depths=tuple(int(d) for d in arch['depths']),
               num_heads=tuple(int(h) for h in arch['num_heads']))
    if len(out['depths']) != len(out['num_heads']) or not out['depths']:
        raise ValueError(f"arch: depths {out['depths']} and num_heads "
                         f"{out['num_heads']} must have one entry per stage")
    for s, (d, h) in enumerate(zip(out['depths'], out['num_heads'])):
        width = out['embed_dims'] * 2 ** s
        if d < 1 or h < 1 or width % h:
            raise ValueError(f'arch: stage {s} has depth {d}, {h} heads and '
                             f'width {width}; need depth >= 1 and the width '
                             f'divisible by the heads')
    return out


# ------------------------------------------------------------------ windows
def window_partition(x: Tensor, w: Tuple[int, int]) -> Tensor:
    """(B, H, W, C) -> (B * nW, w0 * w1, C), windows row-major per image."""
    b, h, wd, c = x.shape
    x = x.view(b, h // w[0], w[0], wd // w[1], w[1], c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, w[0] * w[1], c)


def window_reverse(windows: Tensor, w: Tuple[int, int], h: int,
                   wd: int) -> Tensor:
    """(B * nW, w0 * w1, C) -> (B, H, W, C); inverse of window_partition."""
    c = windows.shape[-1]
    x = windows.view(-1, h // w[0], wd // w[1], w[0], w[1], c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, wd, c)


@functools.lru_cache(maxsize=None)
def relative_position_index(w: Tuple[int, int]) -> Tensor:
    """(A, A) index into the (2*w0-1)*(2*w1-1) bias table, A = w0*w1 (the
    Swin paper's Eq. 4 bias B, indexed as timm and the original code).
    Computed once per window size, on the CPU (also when a model is built
    on the meta device, where the index ops are slow); callers copy it."""
    cpu = dict(device='cpu')
    coords = torch.stack(torch.meshgrid(torch.arange(w[0], **cpu),
                                        torch.arange(w[1], **cpu),
                                        indexing='ij')).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    return (rel[..., 0] + w[0] - 1) * (2 * w[1] - 1) + rel[..., 1] + w[1] - 1


def shift_mask(h: int, wd: int, w: Tuple[int, int],
               shift: Tuple[int, int], device=None) -> Tensor:
    """(nW, A, A) additive mask of shifted-window attention: -100 between
    tokens that come from different regions of the rolled map (timm)."""
    img = torch.zeros(1, h, wd, 1, device=device)
    cnt = 0
    for hs in ((0, -w[0]), (-w[0], -shift[0]), (-shift[0], None)):
        for ws in ((0, -w[1]), (-w[1], -shift[1]), (-shift[1], None)):
            img[:, hs[0]:hs[1], ws[0]:ws[1], :] = cnt
            cnt += 1
    win = window_partition(img, w).squeeze(-1)  # (nW, A)
    diff = win.unsqueeze(1) - win.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.).masked_fill(diff == 0, 0.)


# ------------------------------------------------------------------ modules
class WindowAttention(nn.Module):
    """Window multi-head self-attention with relative position bias.

    ``forward(x, mask, prompts)``: x (B*nW, A, C) windows, batch-major as
    :func:`window_partition` makes them; mask (nW, A, A) or None; prompts
    (B, N, C) or None: extra keys/values every window of image b attends to
    (zero bias, never masked). Returns (B*nW, A, C): the window tokens only.
    """

    def __init__(self, dim: int, num_heads: int, window: Tuple[int, int],
                 qkv_bias: bool = True, attn_drop: float = 0.,
                 proj_drop: float = 0.):
        super().__init__()
        self.num_heads = num_heads
        self.window = window
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window[0] - 1) * (2 * window[1] - 1), num_heads))
        self.register_buffer('relative_position_index',
                             relative_position_index(window).clone(),
                             persistent=False)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def position_bias(self) -> Tensor:
        """(1, heads, A, A)."""
        a = self.window[0] * self.window[1]
        idx = self.relative_position_index.view(-1)
        bias = self.relative_position_bias_table[idx].view(a, a, -1)
        return bias.permute(2, 0, 1).unsqueeze(0)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None,
                prompts: Optional[Tensor] = None) -> Tensor:
        bw, a, c = x.shape
        h = self.num_heads
        q, k, v = self.qkv(x).reshape(bw, a, 3, h, c // h).permute(
            2, 0, 3, 1, 4).unbind(0)  # (B*nW, h, A, hd)
        bias = self.position_bias()
        if mask is not None:
            nw = mask.shape[0]
            # (nW, h, A, A) per image, batch-major like the windows
            bias = (bias + mask[:, None]).repeat(bw // nw, 1, 1, 1)
        if prompts is not None:
            b, n = prompts.shape[:2]
            nw = bw // b
            wgt, bs = self.qkv.weight[c:], None
            if self.qkv.bias is not None:
                bs = self.qkv.bias[c:]
            pk, pv = F.linear(prompts, wgt, bs).reshape(
                b, 1, n, 2, h, c // h).permute(3, 0, 1, 4, 2, 5).unbind(0)
            # (B, 1, h, N, hd) -> one copy per window of the same image
            pk = pk.expand(b, nw, h, n, c // h).reshape(bw, h, n, c // h)
            pv = pv.expand(b, nw, h, n, c // h).reshape(bw, h, n, c // h)
            k, v = torch.cat([pk, k], 2), torch.cat([pv, v], 2)
            bias = F.pad(bias, (n, 0))  # zero bias towards the prompts
        drop = self.attn_drop if self.training else 0.
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias.to(q.dtype), dropout_p=drop)
        out = out.transpose(1, 2).reshape(bw, a, c)
        return self.proj_drop(self.proj(out))


def _fit_window(res: Tuple[int, int], window: int,
                shift: bool) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """timm's rule: a window as large as the map is the whole map, and a
    map that fits in one window is not shifted."""
    w = tuple(min(r, window) for r in res)
    s = tuple(0 if (r <= window or not shift) else window // 2 for r in res)
    return w, s


class SwinBlock(nn.Module):
    """Swin block: x + attn(norm1(x)) in (shifted) windows, then
    + mlp(norm2(x)).

    ``forward(x, prompts)``: x (B, H, W, C); prompts (B, N, C) or None, the
    block's prompt tokens (normalised here by ``norm1`` like the image
    tokens). Returns (B, H, W, C).
    """

    def __init__(self, dim: int, num_heads: int, resolution: Tuple[int, int],
                 window_size: int, shift: bool, mlp_ratio: float = 4.,
                 qkv_bias: bool = True, drop: float = 0.,
                 attn_drop: float = 0., drop_path: float = 0.,
                 norm_eps: float = 1e-5):
        super().__init__()
        self.window, self.shift = _fit_window(resolution, window_size, shift)
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = WindowAttention(dim, num_heads, self.window, qkv_bias,
                                    attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)

    def forward(self, x: Tensor, prompts: Optional[Tensor] = None) -> Tensor:
        b, h, wd, c = x.shape
        w, s = self.window, self.shift
        y = self.norm1(x)
        if prompts is not None:
            prompts = self.norm1(prompts)
        if any(s):
            y = torch.roll(y, shifts=(-s[0], -s[1]), dims=(1, 2))
        y = F.pad(y, (0, 0, 0, (-wd) % w[1], 0, (-h) % w[0]))
        hp, wp = y.shape[1:3]
        mask = shift_mask(hp, wp, w, s, y.device) if any(s) else None
        y = self.attn(window_partition(y, w), mask, prompts)
        y = window_reverse(y, w, hp, wp)[:, :h, :wd]
        if any(s):
            y = torch.roll(y, shifts=s, dims=(1, 2))
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C): 2x2 neighbours
    concatenated in timm's channel order (x[0::2, 0::2], x[1::2, 0::2],
    x[0::2, 1::2], x[1::2, 1::2]), LayerNorm, linear reduction."""

    def __init__(self, dim: int, norm_eps: float = 1e-5):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim, eps=norm_eps)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        h, w = x.shape[1:3]
        x = x.reshape(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 4, 2, 5)
        return self.reduction(self.norm(x.flatten(3)))


class SwinPatchEmbed(PatchEmbed):
    """(B, C, H, W) -> (B, H/p, W/p, D) with a LayerNorm (Swin's
    ``patch_norm``); sides that are not multiples of p are padded."""

    def __init__(self, patch_size: int, in_channels: int, embed_dims: int,
                 norm_eps: float = 1e-5):
        super().__init__(patch_size, in_channels, embed_dims)
        self.norm = nn.LayerNorm(embed_dims, eps=norm_eps)

    def forward(self, x: Tensor) -> Tensor:
        x, (h, w) = super().forward(x)
        return self.norm(x).reshape(x.shape[0], h, w, -1)


class SwinStage(nn.Module):
    """Patch merging (stages 1..; timm's place for it), then the blocks;
    even blocks use plain windows, odd blocks shifted ones."""

    def __init__(self, in_dim: int, dim: int, depth: int, num_heads: int,
                 resolution: Tuple[int, int], window_size: int,
                 drop_path: Sequence[float], downsample: bool, **block_kw):
        super().__init__()
        self.downsample = (PatchMerging(in_dim, block_kw.get('norm_eps',
                                                             1e-5))
                           if downsample else nn.Identity())
        self.blocks = nn.ModuleList([
            SwinBlock(dim, num_heads, resolution, window_size,
                      shift=j % 2 == 1, drop_path=drop_path[j], **block_kw)
            for j in range(depth)])


class SwinEncoder(nn.Module):
    """Swin Transformer (timm's names and math), with a hook for the prompt
    tokens each block attends to (:meth:`block_prompts`).

    Args:
        arch: ``'t'``, ``'s'``, ``'b'``, ``'l'`` (or ``'base'``...) or a dict
            with ``embed_dims`` (stage 0), ``depths``, ``num_heads``.
        img_size: training image size; fixes, as in timm, which stages
            shift their windows (a map no larger than a window is one
            unshifted window). Other sizes run too (padded to windows).
        patch_size: 4 for the released models.
        window_size: 7 for the 224 models.
        out_indices: stages whose outputs are returned (negative from the
            end); the last stage's output is final-normed.
        norm_eps: LayerNorm epsilon (1e-5: timm's and the original Swin's).
        with_cp: activation checkpointing of the blocks while training.
    """

    #: The options that change what a trained encoder computes, recorded
    #: with a prompt-tuned backbone's tensors (``PromptTuning.
    #: recorded_settings``).
    recorded_settings = ('embed_dims', 'depths', 'num_heads', 'patch_size',
                         'window_size', 'out_indices', 'norm_eps')

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 img_size: Union[int, Sequence[int]] = 224,
                 patch_size: int = 4,
                 in_channels: int = 3,
                 window_size: int = 7,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 out_indices: Union[int, Sequence[int]] = -1,
                 norm_eps: float = 1e-5,
                 with_cp: bool = False):
        super().__init__()
        a = resolve_swin_arch(arch)
        self.depths = a['depths']
        self.num_heads = a['num_heads']
        self.norm_eps = norm_eps
        self.num_stages = n = len(self.depths)
        self.embed_dims = a['embed_dims']
        self.stage_dims = tuple(self.embed_dims * 2 ** s for s in range(n))
        self.num_features = self.stage_dims[-1]
        if not isinstance(window_size, int) or window_size <= 0:
            raise ValueError(f'window_size must be a positive int, got '
                             f'{window_size!r}')
        self.img_size = check_patch_grid(img_size, patch_size)
        self.patch_size = patch_size
        self.window_size = window_size
        self.grid_size = tuple(s // patch_size for s in self.img_size)
        self.out_indices = resolve_out_indices(out_indices, n, 'stages')
        self.with_cp = with_cp

        self.patch_embed = SwinPatchEmbed(patch_size, in_channels,
                                          self.embed_dims, norm_eps)
        total = sum(self.depths)
        dpr = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        layers, res, start = [], self.grid_size, 0
        for s, (depth, heads) in enumerate(zip(self.depths, a['num_heads'])):
            if s > 0:
                res = tuple(r // 2 for r in res)
            layers.append(SwinStage(
                self.stage_dims[max(s - 1, 0)], self.stage_dims[s], depth,
                heads, res, window_size, dpr[start:start + depth],
                downsample=s > 0, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                drop=drop_rate, attn_drop=attn_drop_rate, norm_eps=norm_eps))
            start += depth
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(self.num_features, eps=norm_eps)
        self._init_encoder_weights()

    def _init_encoder_weights(self) -> None:
        """Random init as timm's (used when no checkpoint is given):
        truncated normal (std .02) for the linear weights and the relative
        position bias tables, zero linear biases; LayerNorms start as
        PyTorch makes them."""
        for name, p in self.named_parameters():
            if name.endswith(('relative_position_bias_table', 'reduction'
                              '.weight', 'qkv.weight', 'proj.weight',
                              'fc1.weight', 'fc2.weight')):
                nn.init.trunc_normal_(p, std=.02)
            elif name.startswith('layers.') and name.endswith('.bias') \
                    and 'norm' not in name:
                nn.init.zeros_(p)

    def encoder_state_dict_keys(self) -> List[str]:
        """Names of the pretrained Swin's tensors (what a checkpoint
        gives)."""
        return [k for k in SwinEncoder.state_dict(self).keys()
                if k.split('.')[0] in ('patch_embed', 'layers', 'norm')]

    def fit_encoder_state_dict(self, sd: Dict[str, Tensor],
                               source: str = 'state dict'):
        """The pretrained Swin of ``sd`` (a timm, original or mmpretrain
        layout) in this encoder's names: (layout, the renamed state dict,
        exactly the encoder's tensors). What
        :func:`~.checkpoint.load_encoder_weights` (so ``load_pretrained``
        and ``init_cfg``) calls."""
        layout = detect_swin_layout(sd)
        sd = convert_swin_to_timm(sd, layout, self.num_stages)
        return layout, sd, fit_swin_state_dict(self, sd, source, layout)

    def frozen_modules(self) -> Tuple[nn.Module, ...]:
        """The modules of the pretrained Swin that a frozen encoder keeps
        in eval mode while training (no dropout, no drop path)."""
        return (self.patch_embed, self.layers, self.norm)

    def bias_tuned(self, name: str) -> bool:
        """Whether bias tuning trains the encoder parameter ``name``: the
        biases inside ``layers`` (blocks and patch-merging norms); not the
        patch embedding's nor the final norm's, as for the ViT."""
        return name.startswith('layers.') and name.endswith('.bias')

    # ----------------------------------------------------------------- hooks
    def forward_context(self):
        """Per-forward state computed once for all blocks (e.g. prompts),
        passed to :meth:`block_prompts` as ``ctx``."""
        return None

    def block_prompts(self, stage: int, block: int, batch_size: int,
                      ctx) -> Optional[Tensor]:
        """Prompt tokens (B, N, C_stage) block ``block`` of ``stage`` attends
        to in every window, or None. Default: none (a plain Swin)."""
        return None

    # --------------------------------------------------------------- forward
    def forward_features(self, img: Tensor) -> List[Tensor]:
        """img (B, C, H, W) -> the ``out_indices`` stages' maps
        (B, H_s, W_s, C_s), the last stage's final-normed."""
        x = self.patch_embed(img)
        ctx = self.forward_context()
        outs = []
        for s, stage in enumerate(self.layers):
            x = stage.downsample(x)
            for j, blk in enumerate(stage.blocks):
                p = self.block_prompts(s, j, x.shape[0], ctx)
                if self.with_cp and self.training and torch.is_grad_enabled():
                    x = checkpoint(blk, x, p, use_reentrant=False)
                else:
                    x = blk(x, p)
            if s in self.out_indices:
                outs.append(self.norm(x) if s == self.num_stages - 1 else x)
        return outs

    def forward(self, img: Tensor) -> Tuple[Tensor, ...]:
        """Maps (B, C_s, H_s, W_s) of the ``out_indices`` stages."""
        return tuple(o.permute(0, 3, 1, 2).contiguous()
                     for o in self.forward_features(img))


# ------------------------------------------------------------- checkpoints
_SWIN_RENAMES = {
    'timm': [],
    'original': [(r'^layers\.(\d+)\.downsample\.', 'layers.{+1}.downsample.')],
    'mmpretrain': [
        (r'^patch_embed\.projection\.', 'patch_embed.proj.'),
        (r'^stages\.(\d+)\.blocks\.(\d+)\.attn\.w_msa\.',
         r'layers.\1.blocks.\2.attn.'),
        (r'^stages\.(\d+)\.blocks\.(\d+)\.ffn\.layers\.0\.0\.',
         r'layers.\1.blocks.\2.mlp.fc1.'),
        (r'^stages\.(\d+)\.blocks\.(\d+)\.ffn\.layers\.1\.',
         r'layers.\1.blocks.\2.mlp.fc2.'),
        (r'^stages\.(\d+)\.blocks\.(\d+)\.(norm\d)\.',
         r'layers.\1.blocks.\2.\3.'),
        (r'^stages\.(\d+)\.downsample\.', 'layers.{+1}.downsample.'),
    ],
}
# Tensors a Swin checkpoint may hold that the encoder does not use or
# recomputes: classifier heads, the index/mask buffers.
_SWIN_DROPPED = re.compile(r'^head\.|relative_position_index$|attn_mask$')


def detect_swin_layout(sd: Dict[str, Tensor]) -> str:
    """'timm', 'original' (Microsoft's release: patch merging at the end
    of stages 0..) or 'mmpretrain', from the tensor names."""
    if any(re.match(r'stages\.\d+\.blocks\.\d+\.attn\.w_msa\.', k)
           for k in sd):
        return 'mmpretrain'
    if any(re.match(r'layers\.\d+\.blocks\.\d+\.attn\.qkv\.', k) for k in sd):
        return 'original' if any(k.startswith('layers.0.downsample.')
                                 for k in sd) else 'timm'
    raise CheckpointMismatchError(
        'cannot tell the layout of this checkpoint: expected a timm, original '
        f'or mmpretrain Swin; its first keys are {sorted(sd)[:8]}')


def _unfold_to_timm(v: Tensor) -> Tensor:
    """Patch-merging channels from mmpretrain's order (nn.Unfold: c, dy, dx)
    to timm's (dx, dy, c), along the last dimension (4C)."""
    c = v.shape[-1] // 4
    lead = v.shape[:-1]
    v = v.reshape(*lead, c, 2, 2)
    n = len(lead)
    return v.permute(*range(n), n + 2, n + 1, n).reshape(*lead, 4 * c)


def convert_swin_to_timm(sd: Dict[str, Tensor], layout: str,
                         num_stages: int) -> Dict[str, Tensor]:
    """Rename a Swin state dict of ``layout`` to timm's names."""
    rules = [(re.compile(p), r) for p, r in _SWIN_RENAMES[layout]]
    last_norm = re.compile(rf'^norm{num_stages - 1}\.')
    out = {}
    for k, v in sd.items():
        if _SWIN_DROPPED.search(k):
            continue
        if layout == 'mmpretrain':
            if last_norm.match(k):
                k = 'norm.' + k.split('.', 1)[1]
            elif re.match(r'^norm\d+\.', k):
                continue  # per-stage output norms: timm has none
            if '.downsample.' in k:
                v = _unfold_to_timm(v)
        for pat, rep in rules:
            m = pat.match(k)
            if m:
                if '{+1}' in rep:
                    rep = rep.replace('{+1}', str(int(m.group(1)) + 1))
                k = pat.sub(rep, k, count=1)
                break
        out[k] = v
    return out


def fit_swin_state_dict(model: SwinEncoder, sd: Dict[str, Tensor],
                        source: str = 'state dict',
                        layout: str = 'timm') -> Dict[str, Tensor]:
    """Check a timm-named Swin state dict against ``model``'s encoder and
    return exactly the encoder's tensors; anything that does not fit is a
    :class:`CheckpointMismatchError` listing it."""
    keys = model.encoder_state_dict_keys()
    own = model.state_dict()
    missing = sorted(set(keys) - set(sd))
    unexpected = sorted(set(sd) - set(keys))
    wrong = [f'{k}: checkpoint {tuple(sd[k].shape)} vs model '
             f'{tuple(own[k].shape)}'
             for k in keys if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        msg = [f'{source} ({layout} layout) does not fit this Swin '
               f'(embed_dims={model.embed_dims}, depths={model.depths}, '
               f'window_size={model.window_size}):']
        for what, items in (('missing in the checkpoint', missing),
                            ('not in the model', unexpected),
                            ('shape mismatch', wrong)):
            if items:
                msg.append(f'  {what} ({len(items)}): {abbrev_keys(items)}')
        raise CheckpointMismatchError('\n'.join(msg))
    return {k: sd[k] for k in keys}
