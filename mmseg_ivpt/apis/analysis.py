"""What tools/analysis/ shares (needs mmengine): FLOPs with attention
counted, a model of either toolbox from a config and a checkpoint, and the
attention a forward of it computed.

FLOPs. mmengine's counter (``mmengine.analysis``, fvcore's rules: one
multiply-add is one FLOP) has no rule for
``aten::scaled_dot_product_attention`` and skips it with a warning, so every ViT whose attention runs through SDPA
(ours, and mmpretrain's own ViTs under torch >= 2) is counted without its
``Q Kᵀ`` and ``A V`` products. :func:`install_flop_handles` adds the rule to
mmengine's default table; ``import mmseg_ivpt`` calls it, so mmengine's
``get_model_complexity_info`` and the tools built on it (mmpretrain's
``get_flops``) count attention once a config imports ``mmseg_ivpt``.
"""
import math
from typing import Callable, Dict, List, Tuple

import numpy as np

import torch
from torch import Tensor, nn

from ..models.vit import ViTEncoder

SDPA_OP = 'aten::scaled_dot_product_attention'


def sdpa_flop_jit(inputs: list, outputs: list) -> int:
    """FLOPs of ``scaled_dot_product_attention(q, k, v)`` in mmengine's
    convention (a multiply-add is one FLOP; softmax and scaling are not
    counted, as for an explicit ``softmax(q @ kᵀ) @ v`` through two
    ``aten::matmul``): q (..., Tq, E), k (..., Tk, E), v (..., Tk, Ev) give
    ``prod(...) * Tq * Tk * (E + Ev)``."""
    from mmengine.analysis.jit_handles import get_shape
    q, k, v = (get_shape(x) for x in inputs[:3])
    return math.prod(q[:-1]) * k[-2] * (q[-1] + v[-1])


def install_flop_handles() -> None:
    """Add the SDPA rule to mmengine's default FLOP and activation tables
    (idempotent; leaves every other rule as it is)."""
    from mmengine.analysis import complexity_analysis as ca
    from mmengine.analysis.jit_handles import generic_activation_jit
    ca._DEFAULT_SUPPORTED_FLOP_OPS.setdefault(SDPA_OP, sdpa_flop_jit)
    ca._DEFAULT_SUPPORTED_ACT_OPS.setdefault(SDPA_OP,
                                            generic_activation_jit())


def count_flops(model: nn.Module, inputs: Tuple) -> Tuple[int, Dict[str, int]]:
    """(total FLOPs, FLOPs by operator) of ``model(*inputs)``, attention
    included (mmengine's ``FlopAnalyzer`` with the SDPA rule)."""
    from mmengine.analysis import FlopAnalyzer
    install_flop_handles()
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return int(analyzer.total()), dict(analyzer.by_operator())


class TensorForward(nn.Module):
    """``model(x, mode='tensor')`` as a one-argument module (what a tracer
    needs): the classifier's logits / the segmentor's decode-head output."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor):
        return self.model(x, mode='tensor')


# ------------------------------------------------------------- the models
def scope_of(cfg) -> str:
    """``'mmseg'`` or ``'mmpretrain'``: the toolbox a config is for."""
    scope = cfg.get('default_scope', 'mmseg')
    if scope not in ('mmseg', 'mmpretrain'):
        raise ValueError(f'default_scope={scope!r}; allowed: mmseg, '
                         'mmpretrain')
    return scope


def backbone_of(model: nn.Module) -> ViTEncoder:
    bb = getattr(model, 'backbone', None)
    if not isinstance(bb, ViTEncoder):
        raise ValueError(f'the model\'s backbone is {type(bb).__name__}, not '
                         'one of this toolbox\'s ViTs (PromptedViT, GatedViT)')
    return bb


def load_model(cfg, checkpoint: str, device: str = 'cpu'
               ) -> Tuple[nn.Module, Callable[[str], object]]:
    """The model of ``cfg`` (an mmengine ``Config``) with ``checkpoint``
    (full or prompt-only), through its toolbox's inference API, and a
    function running that API on an image path: mmseg's ``init_model`` /
    ``inference_model``, mmpretrain's ``ImageClassificationInferencer``
    (mmpretrain's ``inference_model`` only takes models of its zoo)."""
    if scope_of(cfg) == 'mmseg':
        from mmseg.apis import inference_model, init_model
        model = init_model(cfg, checkpoint, device=device)
        return model, lambda img: inference_model(model, img)
    from mmengine.registry import DefaultScope
    from mmpretrain.apis import ImageClassificationInferencer

    # the inferencer builds its pipeline in whatever scope is current (a
    # process that used mmseg before would look for mmseg's transforms)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        inferencer = ImageClassificationInferencer(model=cfg,
                                                   pretrained=checkpoint,
                                                   device=device)
    return inferencer.model, lambda img: inferencer(img)[0]


def displayed_image(model: nn.Module, x: Tensor) -> np.ndarray:
    """The RGB uint8 (H, W, 3) image a normalised input x (1, 3, H, W) of
    the model's data preprocessor shows."""
    pre = model.data_preprocessor
    img = x[0].detach().float().cpu()
    if getattr(pre, '_enable_normalize', False):
        img = img * pre.std.cpu() + pre.mean.cpu()
    if not getattr(pre, '_channel_conversion', False):
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


__all__ = ['SDPA_OP', 'TensorForward', 'backbone_of', 'capture_attention',
           'count_flops', 'displayed_image', 'install_flop_handles',
           'load_model', 'scope_of', 'sdpa_flop_jit']
