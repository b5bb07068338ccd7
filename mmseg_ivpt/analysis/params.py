"""Parameter counts of a config's model, without allocating its weights."""
from collections import OrderedDict

import torch


def build_model_on_meta(cfg):
    """Build ``cfg.model`` on the meta device (shapes only: a ViT-L
    segmentor costs no memory) in the config's default scope."""
    from mmengine.registry import MODELS, init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    with torch.device('meta'):
        return MODELS.build(cfg.model)


def count_parameters(model) -> 'OrderedDict[str, int]':
    """Trainable and total parameters, overall and per top-level part
    (``backbone``, ``decode_head``, ``auxiliary_head``, ``head``...)."""
    out = OrderedDict(trainable=0, total=0)
    for name, p in model.named_parameters():
        part = name.split('.')[0]
        out['total'] += p.numel()
        out.setdefault(f'{part}.total', 0)
        out[f'{part}.total'] += p.numel()
        out.setdefault(f'{part}.trainable', 0)
        if p.requires_grad:
            out['trainable'] += p.numel()
            out[f'{part}.trainable'] += p.numel()
    return out
