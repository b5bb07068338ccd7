"""The backbones, in plain PyTorch (importable with torch alone).

Encoders (siblings, no prompts): :class:`ViTEncoder` (``vit.py``),
:class:`SwinEncoder` (``swin.py``), on the shared pieces of ``layers.py``.
Prompt tuning of either (:class:`PromptTuning`, ``prompt_tuning.py``):
:class:`PromptTunedViT` and its methods :class:`PromptedViT`,
:class:`GatedViT`; :class:`PromptedSwin`.
"""
from .checkpoint import (
                         CheckpointMismatchError,
                         EncoderMismatchError,
                         MethodMismatchError,
                         load_encoder_weights,
                         load_pretrained,
)
from .gated_vit import GatedViT
from .layers import cdc_prompts, insert_slot, replace_slot, resize_pos_embed
from .prompt_tuned import PromptTunedViT
from .prompt_tuning import PromptTuning
from .prompted_swin import SWIN_PROMPT_STRUCTURES, PromptedSwin
from .prompted_vit import PROMPT_STRUCTURES, PromptedViT
from .swin import SwinEncoder
from .vit import ARCH_SETTINGS, ViTEncoder

__all__ = [
    'ARCH_SETTINGS', 'CheckpointMismatchError', 'EncoderMismatchError',
    'GatedViT', 'MethodMismatchError', 'PROMPT_STRUCTURES', 'PromptTunedViT',
    'PromptTuning', 'PromptedSwin', 'PromptedViT', 'SWIN_PROMPT_STRUCTURES',
    'SwinEncoder', 'ViTEncoder', 'cdc_prompts', 'insert_slot',
    'load_encoder_weights', 'load_pretrained', 'replace_slot',
    'resize_pos_embed'
]
