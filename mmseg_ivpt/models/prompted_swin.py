"""PromptedSwin: iVPT's prompt structures on a hierarchical Swin Transformer:
:class:`~.prompt_tuning.PromptTuning` on :class:`~.swin.SwinEncoder` (the
encoder and its checkpoint layouts are :mod:`.swin`).

Prompts (docs/swin.md). Notation: stage s has ``depth_s`` blocks of width
``C_s``; ``P_s`` = :meth:`PromptedSwin.stage_prompts` (s) (depth_s, N_s,
C_s). As in VPT's Swin
(KMnP/vpt ``src/models/vit_prompt/swin_transformer.py``), block (s, j)
attends, in *every* window, to the window's tokens and to the N_s prompt
tokens ``P̂_s^j`` (LayerNorm'd by the block's ``norm1``, no relative
position bias and no shift mask towards them). What the prompts' own
positions would output is never used (VPT-deep replaces it at the next
block, and after a stage's last block the next stage has its own prompts),
so only the image tokens are computed. Per stage, with ``j >= 1``:

==============  ===========  ==============================================
structure       block 0      block j
==============  ===========  ==============================================
``deep``        ``P_s^0``    ``P_s^j``
``vanilla_cdc`` ``P_s^0``    ``P_s^0 + ... + P_s^j``
``cdc``         ``P_s^0``    ``P_s^j + P_s^{j-1}`` (iVPT Eq. 4)
``cdc`` + DA    ``P_s^0``    ``P_s^j + Γ_s^{j-1} P_s^{j-1}`` (Eq. 5-6)
==============  ===========  ==============================================

(:func:`~.layers.cdc_prompts`, the function PromptedViT uses too, applied
to each stage.) The chain restarts at each stage: the stages differ in
width, and Eq. 4 adds prompts of equal width. AR (Eq. 14-15) ranks image
tokens by the attention of the cls token, which Swin does not have; iVPT
does not say what replaces it, so PromptedSwin has no AR arguments, and an
AR setting is a named error (docs/swin.md).

This module imports nothing but torch.
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .layers import cdc_prompts, prompt_init_bound
from .prompt_tuning import PromptTuning
from .swin import SwinEncoder, resolve_swin_arch

#: Prompt structures PromptedSwin implements (see the module docstring).
SWIN_PROMPT_STRUCTURES = ('deep', 'vanilla_cdc', 'cdc')
SWIN_OUT_TYPES = ('featmap', 'avg_featmap')
#: iVPT's AR settings (PromptedViT's); a Swin has no cls token to rank by.
_AR_ARGS = ('ar_tokens', 'ar_mode')


class PromptedSwin(PromptTuning, SwinEncoder):
    """iVPT's prompt structures (CDC, DA; no AR) on a frozen Swin.

    Args:
        num_prompts: N prompt tokens per block, one int for every stage or
            one per stage; 0 = no prompts (linear probing, or bias tuning
            with ``finetune='bias'``).
        prompt_structure: one of ``SWIN_PROMPT_STRUCTURES`` (module
            docstring); the chain restarts at each stage.
        dynamic_aggregation: DA matrices Γ (``cdc`` only), init identity.
        out_type: ``'featmap'`` (tuple of (B, C_s, H_s, W_s), mmseg) or
            ``'avg_featmap'`` (tuple of (B, C_s): the mean over the map,
            i.e. Swin's average pooling of the final norm, mmpretrain).
        finetune: ``'prompt'``, ``'bias'`` (the biases inside ``layers``:
            blocks and patch-merging norms; not the patch embedding's nor
            the final norm's) or ``'full'``.
        prompt_dropout: dropout on the prompt tokens each block receives.
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)``: a timm,
            original (Microsoft) or mmpretrain Swin checkpoint.
        Other arguments: :class:`~.prompt_tuning.PromptTuning`,
        :class:`~.swin.SwinEncoder`.

    AR has no arguments here: AR needs a cls token. ``ar_tokens`` /
    ``ar_mode`` (a ViT method's settings) are a named ``ValueError``, even
    their "off" values (``ar_tokens=0``, ``ar_mode=None``): AR off is a
    Swin's only state, and the protocol's AR-less methods write no
    ``ar_tokens`` into a Swin config (docs/swin.md).

    Trainable tensors (attributes of the backbone, as PromptedViT's):
    ``prompts`` and ``da_weights`` (or None). The stages differ in width, so
    each is one flat tensor holding every stage's part;
    :meth:`stage_prompts` gives stage s's (depth_s, N_s, C_s) and
    :meth:`stage_da_weights` its (depth_s - 1, N_s, N_s).
    """

    method_param_names = ('prompts', 'da_weights')
    recorded_settings = ('num_prompts', 'prompt_structure',
                         'dynamic_aggregation')
    out_types = SWIN_OUT_TYPES

    def __init__(self,
                 arch: Union[str, dict] = 'b',
                 img_size: Union[int, Sequence[int]] = 224,
                 patch_size: int = 4,
                 num_prompts: Union[int, Sequence[int]] = 10,
                 prompt_structure: str = 'cdc',
                 dynamic_aggregation: bool = False,
                 prompt_dropout: float = 0.,
                 **kwargs):
        _refuse_ar(kwargs)
        if prompt_structure not in SWIN_PROMPT_STRUCTURES:
            raise ValueError(
                f'prompt_structure={prompt_structure!r} is not available for '
                f'Swin; allowed: {SWIN_PROMPT_STRUCTURES} (structures that '
                f'carry output prompts to the next block would have to '
                f'carry them through patch merging: docs/swin.md)')
        depths = resolve_swin_arch(arch)['depths']
        ns = _per_stage(num_prompts, len(depths))
        if dynamic_aggregation and prompt_structure != 'cdc':
            raise ValueError(f'dynamic_aggregation=True needs '
                             f"prompt_structure='cdc', got "
                             f'{prompt_structure!r}')
        if dynamic_aggregation and not any(ns):
            raise ValueError('dynamic_aggregation=True needs num_prompts > 0')
        super().__init__(arch=arch, img_size=img_size, patch_size=patch_size,
                         prompt_dropout=prompt_dropout, **kwargs)
        self.num_prompts = ns
        self.prompt_structure = prompt_structure
        self.dynamic_aggregation = bool(dynamic_aggregation)
        self._prompt_shapes = [(d, n, c) for d, n, c in
                               zip(self.depths, ns, self.stage_dims)]
        self._da_shapes = [(d - 1, n, n) for d, n in zip(self.depths, ns)]
        for name in self.method_param_names:
            self.register_parameter(name, None)
        if any(ns):
            v = prompt_init_bound(patch_size, self.embed_dims)
            size = sum(math.prod(s) for s in self._prompt_shapes)
            self.prompts = nn.Parameter(torch.empty(size).uniform_(-v, v))
        if dynamic_aggregation:
            self.da_weights = nn.Parameter(torch.cat([
                torch.eye(n).repeat(d, 1, 1).flatten()
                for d, n, _ in self._da_shapes]))
        self._freeze_encoder()

    # ------------------------------------------------------------- prompts
    @staticmethod
    def _split(flat: Tensor, shapes) -> List[Tensor]:
        sizes = [math.prod(s) for s in shapes]
        return [t.view(s) for t, s in zip(flat.split(sizes), shapes)]

    def stage_prompts(self, stage: int) -> Tensor:
        """``P_s`` (depth_s, N_s, C_s), a view into ``prompts``."""
        return self._split(self.prompts, self._prompt_shapes)[stage]

    def stage_da_weights(self, stage: int) -> Tensor:
        """``Γ_s`` (depth_s - 1, N_s, N_s), a view into ``da_weights``."""
        return self._split(self.da_weights, self._da_shapes)[stage]

    def forward_context(self) -> Optional[List[Tensor]]:
        """P̂ of every block, per stage: [(depth_s, N_s, C_s)]."""
        if self.prompts is None:
            return None
        prompts = self._split(self.prompts, self._prompt_shapes)
        das = (self._split(self.da_weights, self._da_shapes)
               if self.da_weights is not None else [None] * len(prompts))
        return [cdc_prompts(P, self.prompt_structure, da)
                for P, da in zip(prompts, das)]

    def block_prompts(self, stage: int, block: int, batch_size: int,
                      ctx) -> Optional[Tensor]:
        if ctx is None or self.num_prompts[stage] == 0:
            return None
        p = ctx[stage][block:block + 1].expand(batch_size, -1, -1)
        return self.prompt_drop(p)

    def forward(self, img: Tensor) -> Tuple[Tensor, ...]:
        """img (B, 3, H, W) -> tuple over ``out_indices`` of
        (B, C_s, H_s, W_s) (``featmap``) or (B, C_s) (``avg_featmap``)."""
        if self.out_type == 'featmap':
            return super().forward(img)
        return tuple(o.mean(dim=(1, 2)) for o in self.forward_features(img))


def _refuse_ar(kwargs: dict) -> None:
    """A named error for an AR argument (a ViT method's, e.g. from a config
    written for PromptedViT): PromptedSwin has none, not even an "off"."""
    for key in _AR_ARGS:
        if key in kwargs:
            raise ValueError(
                f'{key}={kwargs[key]!r}: attentive reinforcement (iVPT Eq. '
                f'14-15) ranks image tokens by their attention with the cls '
                f'token, and Swin has no cls token; PromptedSwin has no AR '
                f'(docs/swin.md). Remove {key} from the backbone')


def _per_stage(num_prompts, stages: int) -> Tuple[int, ...]:
    if isinstance(num_prompts, int) and not isinstance(num_prompts, bool):
        ns = (num_prompts, ) * stages
    elif isinstance(num_prompts, (list, tuple)):
        ns = tuple(num_prompts)
        if len(ns) != stages:
            raise ValueError(f'num_prompts={list(ns)} gives {len(ns)} '
                             f'stages; this Swin has {stages}: give one int '
                             f'or one per stage')
    else:
        raise ValueError(f'num_prompts must be an int >= 0 or one per '
                         f'stage, got {num_prompts!r}')
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
               for n in ns):
        raise ValueError(f'num_prompts must be ints >= 0, got {num_prompts!r}')
    return ns
