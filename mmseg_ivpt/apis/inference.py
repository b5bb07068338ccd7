"""A model of either toolbox from a config and a checkpoint, through that
toolbox's own inference API."""
from typing import Callable, Tuple

from torch import nn


def scope_of(cfg) -> str:
    """``'mmseg'`` or ``'mmpretrain'``: the toolbox a config is for."""
    scope = cfg.get('default_scope', 'mmseg')
    if scope not in ('mmseg', 'mmpretrain'):
        raise ValueError(f'default_scope={scope!r}; allowed: mmseg, '
                         'mmpretrain')
    return scope


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
