"""mmseg_ivpt: visual prompt tuning (iVPT, VPT, ProVP, GaPT) of frozen ViTs
for mmsegmentation and mmpretrain.

``import mmseg_ivpt`` registers the backbones into mmseg's and mmpretrain's
``MODELS`` (where installed) and makes mmengine load checkpoints safely with
torch >= 2.6. ``mmseg_ivpt.models`` alone needs only torch.
"""
from .models import GatedViT, PromptedViT, ViTEncoder
from .registry import register_all
from .version import __version__

REGISTERED_SCOPES = register_all()

__all__ = ['GatedViT', 'PromptedViT', 'ViTEncoder', 'REGISTERED_SCOPES',
           '__version__']
