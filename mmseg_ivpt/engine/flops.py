"""The FLOP rule mmengine's counter lacks: attention through
``aten::scaled_dot_product_attention``.

mmengine's counter (``mmengine.analysis``, fvcore's rules: one multiply-add
is one FLOP) has no rule for SDPA and skips it with a warning, so every ViT
whose attention runs through SDPA (ours, and mmpretrain's own ViTs under
torch >= 2) is counted without its ``Q Kᵀ`` and ``A V`` products.
:func:`install_flop_handles` adds the rule to mmengine's default table;
``import mmseg_ivpt`` calls it, so mmengine's ``get_model_complexity_info``
and the tools built on it (mmpretrain's ``get_flops``) count attention once
a config imports ``mmseg_ivpt``.
"""
import math

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
