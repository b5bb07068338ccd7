"""PromptTunedViT: prompt tuning (:class:`~.prompt_tuning.PromptTuning`) on
the ViT encoder (:class:`~.vit.ViTEncoder`), with the ViT's output formats.
A ViT method subclasses it and fills in the hooks of the encoder's block
loop (:class:`~.prompted_vit.PromptedViT`, :class:`~.gated_vit.GatedViT`).
"""
from typing import Tuple

import torch.nn.functional as F
from torch import Tensor

from .prompt_tuning import PromptTuning
from .vit import ViTEncoder

OUT_TYPES = ('featmap', 'cls_token', 'avg_featmap', 'avg_all_tokens')


class PromptTunedViT(PromptTuning, ViTEncoder):
    """What every prompt-tuned ViT shares: :class:`PromptTuning` on
    :class:`ViTEncoder`, and the output formats.

    Args (beyond :class:`ViTEncoder`'s and :class:`PromptTuning`'s):
        out_type: ``'featmap'`` (tuple of (B, D, h, w), mmseg),
            ``'cls_token'``, ``'avg_featmap'`` or ``'avg_all_tokens'``
            (tuple of (B, D), mmpretrain). ``avg_featmap`` is the mean of the
            patch tokens; ``avg_all_tokens`` the mean of all non-cls tokens
            of the last block, prompts included (registers not: they are
            prefix tokens, as in timm's ``avg`` pooling), then a LayerNorm
            chosen by
            ``pool_norm`` (the MAE pooling of VPT's and GaPT's code).
        pool_norm: the norm after ``avg_all_tokens``: ``'fresh'`` (a
            LayerNorm without affine weights, i.e. a new frozen LayerNorm at
            its initial value: VPT's ``vit_mae.py``, whose ``fc_norm``
            replaces the pretrained norm and stays frozen) or
            ``'pretrained'`` (the pretrained final norm: GaPT's
            ``vit_mae.py``). ``None``: the class's ``default_pool_norm``.
        finetune: ``'prompt'``, ``'bias'`` (the blocks' biases, LayerNorm
            biases included; patch-embedding and final-norm biases stay
            frozen, which gives the paper's 270,336 for ViT-L) or ``'full'``.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)``; a timm, mmseg
            (vit2mmseg), mmpretrain, DINOv2 (torch hub) or CLIP (OpenAI,
            OpenCLIP) ViT checkpoint, layout detected.
    """

    out_types: Tuple[str, ...] = OUT_TYPES

    @property
    def num_prompts(self) -> int:
        """N, the config's ``num_prompts`` (``num_prompt_tokens``)."""
        return self.num_prompt_tokens

    def outputs(self, raw, hw) -> Tuple[Tensor, ...]:
        """tuple over ``out_indices`` of (B, D, H/p, W/p) maps
        (``featmap``) or (B, D) vectors (``cls_token``, ``avg_featmap``,
        ``avg_all_tokens``), from the raw block outputs ``raw`` (see
        :meth:`ViTEncoder.outputs`)."""
        if self.out_type == 'featmap':
            return super().outputs(raw, hw)
        if self.out_type == 'avg_all_tokens':
            s = self.num_prefix_tokens
            return tuple(self._pool_norm(o[:, s:].mean(dim=1))
                         for o in self.output_tokens(raw, norm=False))
        outs = self.output_tokens(raw)
        if self.out_type == 'cls_token':
            return tuple(o[:, 0] for o in outs)
        n = self.num_extra_tokens  # avg_featmap: the patch tokens
        return tuple(o[:, n:].mean(dim=1) for o in outs)

    def _pool_norm(self, x: Tensor) -> Tensor:
        """The LayerNorm after ``avg_all_tokens`` pooling, (B, D)."""
        if self.pool_norm == 'pretrained':
            return self.norm(x)
        return F.layer_norm(x, self.norm.normalized_shape, eps=self.norm.eps)
