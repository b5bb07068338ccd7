"""The method's optimizer multipliers come from the model
(``PromptOptimWrapperConstructor``): a method tensor the configs never
name gets them, ``--cfg-options prompt_lr_mult=M`` changes them, and
mmengine's custom keys cannot take them away."""
import argparse
import os.path as osp

import pytest
import torch
from ivpt_helpers import TINY
from ivpt_runs import ROOT
from mmengine.optim import build_optim_wrapper
from torch import nn

from mmseg_ivpt.engine.optim import (
    PromptOptimWrapperConstructor,
    method_parameters,
)
from mmseg_ivpt.models import PromptedViT

ADE = osp.join(ROOT, 'configs', 'setr_ivpt_vitl_ade20k.py')


class DummyMethodViT(PromptedViT):
    """PromptedViT with one more method tensor, declared only here."""

    method_param_names = PromptedViT.method_param_names + ('dummy_scale', )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dummy_scale = nn.Parameter(torch.ones(3))


@pytest.fixture(scope='module')
def dummy_registered():
    from mmseg.registry import MODELS
    MODELS.register_module(name='_TestDummyMethodViT', module=DummyMethodViT,
                           force=True)
    yield '_TestDummyMethodViT'
    MODELS._module_dict.pop('_TestDummyMethodViT', None)


def _load(options, config=ADE):
    from mmseg_ivpt.engine.runner import load_config
    return load_config(argparse.Namespace(
        config=config, launcher='none', cfg_options=options, work_dir=None,
        local_rank=0))


# a small ViT in the place of the ViT-L (the heads keep their sizes: only
# the optimizer is built, nothing runs)
SMALL = {'model.backbone.arch.embed_dims': 64,
         'model.backbone.arch.num_heads': 4,
         'model.backbone.arch.feedforward_channels': 128}


def _groups(cfg):
    """{parameter name: its param group} of the optimizer of ``cfg``."""
    from mmengine.registry import MODELS, init_default_scope
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    ow = build_optim_wrapper(model, cfg.optim_wrapper)
    name = {id(p): n for n, p in model.named_parameters()}
    return model, {name[id(p)]: g for g in ow.optimizer.param_groups
                   for p in g['params']}


def test_undeclared_tensor_gets_the_prompt_multiplier(dummy_registered):
    """A new method tensor trains at base lr x prompt_lr_mult in the real
    ADE20K config, which names no tensor."""
    cfg = _load(dict(SMALL, **{'model.backbone.type': dummy_registered}))
    assert set(cfg.optim_wrapper.paramwise_cfg.custom_keys) == {'head'}
    model, groups = _groups(cfg)
    base = cfg.optim_wrapper.optimizer.lr
    assert isinstance(model.backbone, DummyMethodViT)
    assert groups['backbone.dummy_scale']['lr'] == pytest.approx(
        base * cfg.prompt_lr_mult) == pytest.approx(1.0)
    for name in ('prompts', 'da_weights'):  # the declared ones alike
        assert groups[f'backbone.{name}']['lr'] == pytest.approx(1.0)
    assert groups['decode_head.conv_seg.weight']['lr'] == pytest.approx(
        base * 10)  # mmseg's heads x10 stays
    assert set(method_parameters(model)) == {
        'backbone.prompts', 'backbone.da_weights', 'backbone.dummy_scale'}


def test_prompt_lr_mult_on_the_command_line(dummy_registered):
    opts = dict(SMALL, **{'model.backbone.type': dummy_registered,
                          'prompt_lr_mult': 30})
    cfg = _load(opts)
    assert cfg.optim_wrapper.paramwise_cfg.method_lr_mult == 30.
    _, groups = _groups(cfg)
    for name in ('dummy_scale', 'prompts', 'da_weights'):
        assert groups[f'backbone.{name}']['lr'] == pytest.approx(0.03)
    # a multiplier set explicitly in the same command is kept
    cfg = _load(dict(opts, **{'optim_wrapper.paramwise_cfg.method_lr_mult':
                              5.}))
    assert cfg.optim_wrapper.paramwise_cfg.method_lr_mult == 5.


# ------------------------------------------------ the constructor's rules
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = PromptedViT(arch=TINY, img_size=32, patch_size=8,
                                    num_prompts=2, dynamic_aggregation=True,
                                    ar_tokens=2)
        self.head = nn.Linear(64, 3)


class Wrapper(nn.Module):  # what a model wrapper (DDP) looks like
    def __init__(self, module):
        super().__init__()
        self.module = module


def _build(paramwise_cfg, model=None, wd=0.1):
    model = model or Net()
    ctor = PromptOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01,
                                                 weight_decay=wd)),
        paramwise_cfg)
    ow = ctor(model)
    inner = model.module if hasattr(model, 'module') else model
    name = {id(p): n for n, p in inner.named_parameters()}
    return {name[id(p)]: g for g in ow.optimizer.param_groups
            for p in g['params']}


def test_method_multipliers_win_over_shorter_custom_keys():
    g = _build(dict(method_lr_mult=100., method_decay_mult=0.,
                    custom_keys={'backbone': dict(lr_mult=0.1,
                                                  decay_mult=0.5),
                                 'head': dict(lr_mult=10.)},
                    bias_decay_mult=0.))
    for name in ('prompts', 'da_weights', 'ar_prompts'):
        assert g[f'backbone.{name}']['lr'] == pytest.approx(1.0)
        assert g[f'backbone.{name}']['weight_decay'] == 0.
        assert g[f'backbone.{name}']['lr_mult'] == 100.
    assert g['head.weight']['lr'] == pytest.approx(0.1)
    assert g['head.bias']['lr'] == pytest.approx(0.1)
    assert 'backbone.blocks.0.attn.qkv.weight' not in g  # frozen: left out


def test_a_custom_key_naming_the_tensor_still_decides():
    g = _build(dict(method_lr_mult=100.,
                    custom_keys={'backbone.ar_prompts': dict(lr_mult=2.)}))
    assert g['backbone.ar_prompts']['lr'] == pytest.approx(0.02)
    assert g['backbone.prompts']['lr'] == pytest.approx(1.0)


def test_missing_multipliers_are_one_and_no_keys_is_mmengines_default():
    g = _build(dict(method_decay_mult=0.,
                    custom_keys={'backbone': dict(lr_mult=0.1)}))
    assert g['backbone.prompts']['lr'] == pytest.approx(0.01)
    assert g['backbone.prompts']['weight_decay'] == 0.
    # without method keys: exactly mmengine's default constructor
    torch.manual_seed(0)
    ours = _build(dict(custom_keys={'head': dict(lr_mult=10.)}))
    from mmengine.optim import DefaultOptimWrapperConstructor
    torch.manual_seed(0)
    model = Net()
    ow = DefaultOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01,
                                                 weight_decay=0.1)),
        dict(custom_keys={'head': dict(lr_mult=10.)}))(model)
    name = {id(p): n for n, p in model.named_parameters()}
    ref = {name[id(p)]: g for g in ow.optimizer.param_groups
           for p in g['params']}
    strip = lambda d: {k: {a: b for a, b in v.items() if a != 'params'}  # noqa
                       for k, v in d.items()}
    assert strip(ours) == strip(ref)


def test_model_wrapper_and_checks():
    g = _build(dict(method_lr_mult=10.), model=Wrapper(Net()))
    assert g['backbone.prompts']['lr'] == pytest.approx(0.1)
    with pytest.raises(ValueError, match='base_wd'):
        PromptOptimWrapperConstructor(
            dict(optimizer=dict(type='SGD', lr=0.1)),
            dict(method_decay_mult=0.))
