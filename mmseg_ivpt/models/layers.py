"""The pieces the encoders and the prompt methods share: patch embedding,
MLP (GELU, QuickGELU or SwiGLU), LayerScale, drop path, the image-grid and
``out_indices`` checks, position-embedding resampling, the prompt slot of a
ViT sequence, VPT's prompt init and iVPT's cross-layer dynamic connection
(CDC) with dynamic aggregation (DA).

No encoder lives here and nothing here imports one: :mod:`.vit` and
:mod:`.swin` are siblings that both build on this module. Plain torch.
"""
import math
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn


# ---------------------------------------------------------------- checks
def arch_preset(arch: Union[str, dict], presets: Dict[str, dict],
                keys: Sequence[str], what: str = 'preset') -> Optional[dict]:
    """A copy of the preset ``arch`` names, or None when ``arch`` is a dict
    with exactly ``keys`` (the encoder reads and checks its values); named
    errors otherwise."""
    if isinstance(arch, str):
        if arch.lower() not in presets:
            raise ValueError(f'arch={arch!r} is not a known {what}; allowed: '
                             f'{sorted(presets)} or a dict with keys '
                             f'{list(keys)}')
        return dict(presets[arch.lower()])
    if not isinstance(arch, dict):
        raise TypeError(f'arch must be a preset name or a dict, got {arch!r}')
    missing = [k for k in keys if k not in arch]
    extra = [k for k in arch if k not in keys]
    if missing or extra:
        raise ValueError(f'arch dict must have exactly the keys '
                         f'{list(keys)}; missing {missing}, '
                         f'unexpected {extra}')
    return None


def to_2tuple(x: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(x, int):
        return (x, x)
    x = tuple(int(v) for v in x)
    if len(x) != 2:
        raise ValueError(f'expected an int or a pair, got {x!r}')
    return x


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


# --------------------------------------------------- position embedding
#: How a position embedding is resampled to another patch grid:
#: ``'bicubic'``: bicubic, ``align_corners=False`` (mmseg's and mmpretrain's
#: ``resize_pos_embed``); ``'bicubic_antialias'``: the same with
#: ``antialias=True`` (timm's ``resample_abs_pos_embed``, also what timm's
#: ``dynamic_img_size`` does); ``'dinov2'``: DINOv2's
#: ``interpolate_pos_encoding`` (facebookresearch/dinov2,
#: ``dinov2/models/vision_transformer.py``): bicubic by the scale factor
#: ``(dst + 0.1) / src``, no antialiasing.
POS_INTERP_MODES = ('bicubic', 'bicubic_antialias', 'dinov2')


def resize_pos_embed(pos_embed: Tensor, src_hw: Tuple[int, int],
                     dst_hw: Tuple[int, int],
                     num_prefix_tokens: int = 1,
                     mode: str = 'bicubic') -> Tensor:
    """Resample the patch part of an absolute position embedding.

    Args:
        pos_embed: (1, num_prefix_tokens + Hs*Ws, D).
        src_hw: (Hs, Ws), the grid ``pos_embed`` was made for.
        dst_hw: (Hd, Wd), the grid wanted.
        num_prefix_tokens: positions before the grid (cls; 0 for an
            embedding of the patches only, timm's ``no_embed_class``).
        mode: one of :data:`POS_INTERP_MODES`.

    Returns:
        (1, num_prefix_tokens + Hd*Wd, D). The prefix (cls) part is kept as
        it is.
    """
    if mode not in POS_INTERP_MODES:
        raise ValueError(f'pos_interp={mode!r}; allowed: {POS_INTERP_MODES}')
    if tuple(src_hw) == tuple(dst_hw):
        return pos_embed
    prefix = pos_embed[:, :num_prefix_tokens]
    grid = pos_embed[:, num_prefix_tokens:]
    d = grid.shape[-1]
    if grid.shape[1] != src_hw[0] * src_hw[1]:
        raise ValueError(f'pos_embed has {grid.shape[1]} patch positions, '
                         f'which is not the grid {src_hw}')
    grid = grid.reshape(1, src_hw[0], src_hw[1], d).permute(0, 3, 1, 2)
    if mode == 'dinov2':
        scale = tuple((dst + .1) / src for dst, src in zip(dst_hw, src_hw))
        grid = F.interpolate(grid.float(), scale_factor=scale, mode='bicubic',
                             align_corners=False)
        if tuple(grid.shape[-2:]) != tuple(dst_hw):  # cannot happen (floor)
            raise RuntimeError(f'dinov2 resampling gave {grid.shape[-2:]}, '
                               f'not {dst_hw}')
    else:
        grid = F.interpolate(grid.float(), size=dst_hw, mode='bicubic',
                             align_corners=False,
                             antialias=mode == 'bicubic_antialias')
    grid = grid.to(pos_embed.dtype)
    grid = grid.permute(0, 2, 3, 1).reshape(1, dst_hw[0] * dst_hw[1], d)
    return torch.cat([prefix, grid], dim=1)


# --------------------------------------------------------------- modules
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


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``: the activation of OpenAI's CLIP."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


#: ``act_layer`` values of :class:`Mlp`.
ACT_LAYERS = {'gelu': nn.GELU, 'quick_gelu': QuickGELU, 'silu': nn.SiLU}
#: ``mlp_type`` values: ``'mlp'`` fc1 -> act -> fc2; ``'swiglu'``: fc1 to
#: ``hidden`` channels split in halves (x1, x2), ``act(x1) * x2``, fc2 from
#: ``hidden / 2`` (timm's ``SwiGLUPacked``, DINOv2's ``SwiGLUFFNFused``
#: with ``w12`` = fc1, ``w3`` = fc2).
MLP_TYPES = ('mlp', 'swiglu')


class Mlp(nn.Module):
    """(B, T, D) -> (B, T, D). ``hidden`` is fc1's output width (for
    ``'swiglu'`` both halves: fc2 reads ``hidden // 2``)."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.,
                 act_layer: str = 'gelu', mlp_type: str = 'mlp'):
        super().__init__()
        if act_layer not in ACT_LAYERS:
            raise ValueError(f'act_layer={act_layer!r}; allowed: '
                             f'{sorted(ACT_LAYERS)}')
        if mlp_type not in MLP_TYPES:
            raise ValueError(f'mlp_type={mlp_type!r}; allowed: {MLP_TYPES}')
        if mlp_type == 'swiglu' and hidden % 2:
            raise ValueError(f"mlp_type='swiglu' needs an even hidden "
                             f'width (both halves), got {hidden}')
        self.glu = mlp_type == 'swiglu'
        self.fc1 = nn.Linear(dim, hidden)
        self.act = ACT_LAYERS[act_layer]()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden // 2 if self.glu else hidden, dim)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        x = self.fc1(x)
        if self.glu:
            x1, x2 = x.chunk(2, dim=-1)
            x = self.act(x1) * x2
        else:
            x = self.act(x)
        return self.drop2(self.fc2(self.drop1(x)))


class LayerScale(nn.Module):
    """Per-channel scale ``x * gamma`` of a block's branch (CaiT; DINOv2),
    ``gamma`` (D,) starting at ``init``; timm's names."""

    def __init__(self, dim: int, init: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim, ), float(init)))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


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


# --------------------------------------------------------------- prompts
def prompt_init_bound(patch_size: int, embed_dims: int) -> float:
    """VPT's uniform prompt init bound ``sqrt(6 / (3*p*p + D))``."""
    return math.sqrt(6. / float(3 * patch_size * patch_size + embed_dims))


def insert_slot(x: Tensor, p: Tensor, start: int) -> Tensor:
    """[prefix (cls + registers: ``start`` tokens), patches] (B, start+M, D)
    + slot (B, N, D) -> (B, start+N+M, D)."""
    return torch.cat([x[:, :start], p, x[:, start:]], dim=1)


def replace_slot(x: Tensor, p: Tensor, start: int) -> Tensor:
    """Overwrite the prompt slot of x (B, start+N+M, D), the N tokens after
    the ``start`` prefix tokens, with p (B, N, D)."""
    return torch.cat([x[:, :start], p, x[:, start + p.shape[1]:]], dim=1)


def cdc_prompts(P: Tensor, structure: str,
                da: Optional[Tensor] = None) -> Tensor:
    """What each of L consecutive blocks receives, ``P̂`` (L, N, D), from
    their prompts ``P`` (L, N, D) (iVPT Sec. 3.2; P̂^0 = P^0 always):

    * ``'vanilla_cdc'``: P̂^l = P^0 + ... + P^l;
    * ``'cdc'``: P̂^l = P^l + P^{l-1} (Eq. 4), or with the DA matrices
      ``da`` = Γ (L-1, N, N) P̂^l = P^l + Γ^{l-1} P^{l-1} (Eq. 5-6);
    * anything else (``'deep'``...): P̂ = P.

    PromptedViT applies it to its L blocks, PromptedSwin to each stage's
    blocks (the chain restarts at every stage).
    """
    if structure == 'vanilla_cdc':
        return P.cumsum(dim=0)
    if structure == 'cdc':
        prev = P[:-1]
        if da is not None:
            prev = da @ prev  # Γ^{l-1} P^{l-1}
        return torch.cat([P[:1], P[1:] + prev], dim=0)
    return P
