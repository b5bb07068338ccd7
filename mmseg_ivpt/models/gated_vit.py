"""GatedViT: GaPT's gated prompt tuning with adaptive attention shaping
(GaPT paper, its public code; docs/design.md), on the shared encoder.

* Shallow prompts ``prompts`` (1, N, D), inserted before block 0.
* Gates for blocks l = 0..L-2: ``g_l = sigmoid(gate_logits[l])``, logits
  initialised to ``-gate_init``. After block l the prompt slot becomes
  ``g_l * out + (1 - g_l) * in``, ``in`` being what block l received. The
  last block is not gated. cls and patch tokens are the block's output.
* Adaptive attention shaping: one temperature per block ``temperatures``
  (L,), init 1, that divides all attention logits of the block:
  ``softmax(q k^T scale / tau)``. It is applied by scaling the queries by
  ``1 / tau``, so attention stays on SDPA. At the start of every forward the
  *stored* parameter is clamped in place into ``temperature_range`` (GaPT's
  ``reinit_temp``: projected SGD). Clamping only the value used would give a
  zero gradient outside the range, so a temperature that one large step
  pushed out would stay frozen there; projected, it comes back into range
  and keeps its gradient.

Pooling for the self-supervised backbones (``out_type``):

* ``'cls_token'`` (MoCo-v3): final norm, then the cls token.
* ``'avg_all_tokens'`` (MAE): the mean of all non-cls tokens of the last
  block, *prompts included*, then the *pretrained* final norm
  (``pool_norm='pretrained'``, this class's default). The prompts are in the
  mean because GaPT's public code pools them so: for MAE, whose cls token was
  never trained, the gated prompts are how the task reaches the pooled
  feature; the norm is the pretrained one because GaPT's ``vit_mae.py``
  keeps ``self.norm`` (VPT's replaces it with a fresh ``fc_norm``: the
  default of :class:`~.prompted_vit.PromptedViT`).
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .layers import insert_slot, prompt_init_bound, replace_slot
from .prompt_tuned import PromptTunedViT


class GatedViT(PromptTunedViT):
    """GaPT backbone.

    Args:
        num_prompts: N >= 1 shallow prompt tokens.
        gate_init: gate logits start at ``-gate_init`` (GaPT's config
            default 10: gates nearly closed, prompts barely touched by the
            blocks at first).
        learn_temperature: learnable per-block temperatures (off: plain
            attention, no ``temperatures`` parameter).
        temperature_range: (low, high) the stored temperatures are projected
            into at every forward.
        prompt_dropout: dropout on the inserted prompts (GaPT runs: 0.1).
        Other arguments: :class:`PromptTunedViT`, :class:`ViTEncoder`.
    """

    method_param_names = ('prompts', 'gate_logits', 'temperatures')
    # gate_init only starts the gates: a loaded model has the trained ones
    recorded_settings = ('num_prompts', 'learn_temperature',
                         'temperature_range')
    default_pool_norm = 'pretrained'  # GaPT's vit_mae.py

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 img_size: Union[int, Sequence[int]] = 224,
                 patch_size: int = 16,
                 num_prompts: int = 10,
                 gate_init: float = 10.,
                 learn_temperature: bool = True,
                 temperature_range: Tuple[float, float] = (0.01, 10.),
                 prompt_dropout: float = 0.1,
                 **kwargs):
        if not isinstance(num_prompts, int) or num_prompts < 1:
            raise ValueError(f'num_prompts must be an int >= 1 for GatedViT '
                             f'(gated prompts need prompts), got '
                             f'{num_prompts!r}')
        if not isinstance(gate_init, (int, float)) or \
                not math.isfinite(gate_init):
            raise ValueError(f'gate_init must be a finite number, got '
                             f'{gate_init!r}')
        lo, hi = temperature_range
        if not 0 < lo <= hi:
            raise ValueError(f'temperature_range=(low, high) needs '
                             f'0 < low <= high, got {temperature_range!r}')
        super().__init__(arch=arch, img_size=img_size, patch_size=patch_size,
                         prompt_dropout=prompt_dropout, **kwargs)
        L, D = self.num_layers, self.embed_dims
        self.num_prompt_tokens = num_prompts
        self.temperature_range = (float(lo), float(hi))
        self.learn_temperature = bool(learn_temperature)
        v = prompt_init_bound(patch_size, D)
        self.prompts = nn.Parameter(
            torch.empty(1, num_prompts, D).uniform_(-v, v))
        self.gate_logits = nn.Parameter(torch.full((L - 1, ), -float(
            gate_init)))
        if learn_temperature:
            self.temperatures = nn.Parameter(torch.ones(L))
        else:
            self.register_parameter('temperatures', None)
        self._freeze_encoder()

    def gates(self) -> Tensor:
        """g_l = sigmoid(gate_logits), (L-1,)."""
        return self.gate_logits.sigmoid()

    def project_temperatures(self) -> None:
        """Clamp the stored temperatures into ``temperature_range`` in place
        (GaPT's ``reinit_temp``), outside autograd."""
        if self.temperatures is not None:
            with torch.no_grad():
                self.temperatures.clamp_(*self.temperature_range)

    def query_scale(self, layer: int, ctx=None) -> Optional[Tensor]:
        if self.temperatures is None:
            return None
        return 1. / self.temperatures[layer]

    def forward_context(self):
        self.project_temperatures()
        return self.gates()

    def enter_block(self, layer: int, x: Tensor, gates) -> Tensor:
        if layer > 0:
            return x
        p = self.prompt_drop(self.prompts.expand(x.shape[0], -1, -1))
        return insert_slot(x, p, self.num_prefix_tokens)

    def exit_block(self, layer: int, x_in: Tensor, x_out: Tensor,
                   cls_attn: Optional[Tensor], gates) -> Tensor:
        if layer == self.num_layers - 1:
            return x_out
        s, n = self.num_prefix_tokens, self.num_prompt_tokens
        g = gates[layer].to(x_out.dtype)
        slot = g * x_out[:, s:s + n] + (1 - g) * x_in[:, s:s + n]
        return replace_slot(x_out, slot, s)
