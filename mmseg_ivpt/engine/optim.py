"""The optimizer multipliers of the method's own tensors, asked of the model.

A prompt method trains tensors of another kind than the encoder's weights
(prompts, DA, AR, EXPRESS residuals, GaPT's gates and temperatures). Which
tensors they are is declared once, by the backbone
(:meth:`PromptTuning.method_parameters`); this constructor reads that
declaration, so no config lists tensor names and a new method tensor gets
the method's multipliers without a word in any config.
"""
import logging
from typing import Dict, List, Optional

from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import (
    OPTIM_WRAPPER_CONSTRUCTORS,
    OPTIM_WRAPPERS,
    OPTIMIZERS,
)
from torch import nn

from ..models import PromptTuning

#: the keys of ``paramwise_cfg`` this constructor adds to mmengine's
METHOD_KEYS = ('method_lr_mult', 'method_decay_mult')


def method_parameters(model: nn.Module) -> Dict[str, nn.Parameter]:
    """``{name in the model: parameter}`` of the method tensors of every
    :class:`~mmseg_ivpt.models.PromptTuning` module of ``model`` (the
    wrapped model of a model wrapper: its ``.module``)."""
    if hasattr(model, 'module'):
        model = model.module
    out: Dict[str, nn.Parameter] = {}
    seen = set()
    for prefix, m in model.named_modules():
        if not isinstance(m, PromptTuning):
            continue
        for name, p in m.method_parameters().items():
            if isinstance(p, nn.Parameter) and id(p) not in seen:
                seen.add(id(p))
                out[f'{prefix}.{name}' if prefix else name] = p
    return out


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class PromptOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor, plus multipliers for the method's
    tensors that the model declares.

    ``paramwise_cfg`` takes every key of
    :class:`~mmengine.optim.DefaultOptimWrapperConstructor`
    (``custom_keys``, ``bias_lr_mult``, ``norm_decay_mult``...) and:

    - ``method_lr_mult`` (float): lr of every method tensor = base lr x this.
    - ``method_decay_mult`` (float): weight decay of every method tensor =
      base weight decay x this.

    The method tensors are those of every module ``m`` of the model with
    ``isinstance(m, PromptTuning)``: ``m.method_parameters()`` (prompts,
    ``da_weights``, ``ar_prompts``, EXPRESS's residuals, GaPT's
    ``gate_logits`` and ``temperatures``; whatever a backbone declares).
    They are treated as if one custom key named each of them with
    ``dict(lr_mult=method_lr_mult, decay_mult=method_decay_mult)`` (a
    multiplier not given is 1, as in a custom key): that setting wins over
    every custom key that is only part of the tensor's name (``'backbone'``:
    mmengine picks the longest matching key, and the tensor's own full name
    is longer than any such key) and over the bias / norm rules. Only a
    custom key that is the tensor's full name (``'backbone.prompts'``)
    still decides for that tensor. Frozen method tensors
    (``requires_grad=False``) are left out as mmengine leaves every frozen
    parameter out. Without either key this is mmengine's default
    constructor.

    Registered in mmengine's root ``OPTIM_WRAPPER_CONSTRUCTORS``, so mmseg
    and mmpretrain configs both reach it::

        optim_wrapper = dict(
            constructor='PromptOptimWrapperConstructor',
            optimizer=dict(type='SGD', lr=0.001, momentum=0.9),
            paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=10.)},
                               method_lr_mult=1000.))
    """

    def __init__(self, optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None):
        paramwise_cfg = dict(paramwise_cfg or {})
        self.method_cfg = {k: paramwise_cfg.pop(k) for k in METHOD_KEYS
                           if k in paramwise_cfg}
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        if self.method_cfg and self.base_lr is None:
            raise ValueError(f'{sorted(self.method_cfg)} need the '
                             f'optimizer\'s lr (optim_wrapper.optimizer.lr)')
        if 'method_decay_mult' in self.method_cfg and self.base_wd is None:
            raise ValueError('method_decay_mult needs the optimizer\'s '
                             'weight_decay (base_wd should not be None)')

    def method_group(self, param: nn.Parameter) -> dict:
        """The param group of one trainable method tensor."""
        lr_mult = self.method_cfg.get('method_lr_mult', 1.)
        group = {'params': [param], 'lr': self.base_lr * lr_mult}
        if self.base_wd is not None:
            group['weight_decay'] = self.base_wd * self.method_cfg.get(
                'method_decay_mult', 1.)
        # as mmengine copies a custom key's settings into its param groups
        for key in METHOD_KEYS:
            if key in self.method_cfg:
                group[key[len('method_'):]] = self.method_cfg[key]
        return group

    def __call__(self, model: nn.Module):
        if hasattr(model, 'module'):
            model = model.module
        if not self.method_cfg:
            return super().__call__(model)
        method = method_parameters(model)
        if not any(isinstance(m, PromptTuning) for m in model.modules()):
            print_log(f'PromptOptimWrapperConstructor: {type(model).__name__}'
                      f' has no PromptTuning module; '
                      f'{sorted(self.method_cfg)} have no effect',
                      logger='current', level=logging.WARNING)
        own_key = set(self.paramwise_cfg.get('custom_keys', {}))
        by_id = {id(p): n for n, p in method.items()
                 if n not in own_key and f'.{n}' not in own_key}
        params: List[dict] = []
        self.add_params(params, model)
        for i, group in enumerate(params):
            ps = group['params']
            if len(ps) == 1 and id(ps[0]) in by_id and ps[0].requires_grad:
                params[i] = self.method_group(ps[0])
                print_log(f'paramwise_options -- {by_id[id(ps[0])]}: ' +
                          ', '.join(f'{k}={v}' for k, v in params[i].items()
                                    if k != 'params') +
                          ' (method tensor)', logger='current')
        optimizer_cfg = self.optimizer_cfg.copy()
        optimizer_cfg['params'] = params
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        optim_wrapper_cfg = self.optim_wrapper_cfg.copy()
        optim_wrapper_cfg.setdefault('type', 'OptimWrapper')
        return OPTIM_WRAPPERS.build(optim_wrapper_cfg,
                                    default_args=dict(optimizer=optimizer))
