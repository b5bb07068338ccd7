"""Registration of the backbones in the OpenMMLab registries.

One implementation, two registrations: every backbone goes into mmseg's and
mmpretrain's ``MODELS`` (whichever of them is installed), so configs of
either toolbox reach it with ``custom_imports=dict(imports=['mmseg_ivpt'])``.
"""
from .models import GatedViT, PromptedViT
from .utils.safe_load import install_mmengine_loader

BACKBONES = (PromptedViT, GatedViT)


def register_all() -> list:
    """Register :data:`BACKBONES` and install the safe checkpoint loader.
    Returns the scopes registered into."""
    install_mmengine_loader()
    scopes = []
    for scope in ('mmseg', 'mmpretrain'):
        try:
            registry = __import__(f'{scope}.registry',
                                  fromlist=['MODELS']).MODELS
        except ImportError:
            continue
        for cls in BACKBONES:
            registry.register_module(name=cls.__name__, module=cls,
                                     force=True)
        scopes.append(scope)
    return scopes
