"""FLOPs of a model with attention counted (mmengine's ``FlopAnalyzer``
with the SDPA rule of :mod:`mmseg_ivpt.engine.flops`)."""
from typing import Dict, Tuple

from torch import Tensor, nn

from ..engine.flops import install_flop_handles


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
