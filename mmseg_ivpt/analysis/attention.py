"""The attention a forward of a model of this toolbox computed, and the
image it saw (tools/analysis/attention_maps.py)."""
from typing import Callable, List

import numpy as np
import torch
from torch import Tensor, nn

from ..models.vit import ViTEncoder


def backbone_of(model: nn.Module) -> ViTEncoder:
    """The model's backbone if it is one of this toolbox's ViTs (the
    analysis reads their cls-row attention and token layout); a named
    error otherwise (a Swin, whose attention is per window and who has no
    cls token, included)."""
    bb = getattr(model, 'backbone', None)
    if not isinstance(bb, ViTEncoder):
        raise ValueError(f'the model\'s backbone is {type(bb).__name__}, not '
                         'one of this toolbox\'s ViTs (PromptedViT, GatedViT)')
    return bb


#: the flags by which the toolboxes' data preprocessors flip the channels:
#: mmseg's ``SegDataPreProcessor(bgr_to_rgb=True)`` sets
#: ``channel_conversion``, mmpretrain's ``ClsDataPreprocessor(to_rgb=True)``
#: ``to_rgb``, mmengine's ``ImgDataPreprocessor(bgr_to_rgb=True)`` (and
#: mmpretrain's ``SelfSupDataPreprocessor``) ``_channel_conversion``.
CHANNEL_FLIP_FLAGS = ('channel_conversion', 'to_rgb', '_channel_conversion')


def input_is_rgb(preprocessor: nn.Module) -> bool:
    """Whether the model receives RGB: images are loaded as BGR (mmcv's
    ``LoadImageFromFile``, what both toolboxes' inference uses), and the
    data preprocessor flips them when one of :data:`CHANNEL_FLIP_FLAGS` is
    set."""
    return any(bool(getattr(preprocessor, flag, False))
               for flag in CHANNEL_FLIP_FLAGS)


def displayed_image(model: nn.Module, x: Tensor) -> np.ndarray:
    """The RGB uint8 (H, W, 3) image a normalised input x (1, 3, H, W) of
    the model's data preprocessor shows."""
    pre = model.data_preprocessor
    img = x[0].detach().float().cpu()
    if getattr(pre, '_enable_normalize', False):
        img = img * pre.std.cpu() + pre.mean.cpu()
    if not input_is_rgb(pre):
        img = img.flip(0)  # loaded as BGR, kept so: show RGB
    return img.clamp(0, 255).round().byte().permute(1, 2, 0).numpy()


def capture_attention(model: nn.Module, infer: Callable[[str], object],
                      img_path: str) -> dict:
    """Run the toolbox's inference on ``img_path`` once, recording in the
    backbone (:meth:`ViTEncoder.record_attention`) and the input it got.

    Returns ``input`` (1, 3, H, W) float, ``image`` (H, W, 3) uint8 RGB,
    ``grid`` (h, w) patches, ``rows`` (L, heads, T) the cls rows, ``maps``
    (L, h, w) their head-mean over the patch keys (the AR saliency of each
    block), ``ar`` (L-1, k) AR's selections or None, ``result``.
    """
    bb = backbone_of(model)
    seen: List[Tensor] = []
    handle = bb.register_forward_pre_hook(
        lambda m, args: seen.append(args[0].detach().clone()))
    try:
        with bb.record_attention() as rec:
            result = infer(img_path)
    finally:
        handle.remove()
    if len(seen) != 1:
        raise RuntimeError(f'the backbone ran {len(seen)} times for one '
                           'image (sliding-window or test-time augmented '
                           "inference); use test_cfg mode='whole'")
    x = seen[0]
    p, n = bb.patch_size, bb.num_extra_tokens
    grid = (-(-x.shape[-2] // p), -(-x.shape[-1] // p))
    rows = torch.stack([rec.cls_attn[i] for i in range(bb.num_layers)])
    rows = rows[:, 0].float().cpu()  # (L, heads, T)
    maps = rows[:, :, n:].mean(dim=1).reshape(-1, *grid)
    ar = None
    if rec.ar_indices:
        ar = torch.stack([rec.ar_indices[i][0]
                          for i in sorted(rec.ar_indices)]).cpu()
    return dict(input=x.float().cpu(), image=displayed_image(model, x),
                grid=grid, patch_size=p, rows=rows, maps=maps, ar=ar,
                result=result)
