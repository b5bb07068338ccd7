"""The backbones, in plain PyTorch (importable with torch alone)."""
from .checkpoint import CheckpointMismatchError, load_pretrained
from .gated_vit import GatedViT
from .prompted_vit import (PROMPT_STRUCTURES, PromptedViT, PromptTunedViT,
                           insert_slot, replace_slot)
from .vit import ARCH_SETTINGS, ViTEncoder, resize_pos_embed

__all__ = [
    'ARCH_SETTINGS', 'CheckpointMismatchError', 'GatedViT', 'PROMPT_STRUCTURES',
    'PromptTunedViT', 'PromptedViT', 'ViTEncoder', 'insert_slot',
    'load_pretrained', 'replace_slot', 'resize_pos_embed'
]
