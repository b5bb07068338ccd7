"""`import mmseg_ivpt` registers the backbones in mmseg and mmpretrain, and
configs reach them through custom_imports alone."""
import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from ivpt_helpers import IMG, PATCH, TINY

import mmseg_ivpt
from mmseg_ivpt.models import GatedViT, PromptedViT

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def test_registered_in_both_scopes():
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    from mmseg.registry import MODELS as SEG_MODELS
    assert set(mmseg_ivpt.REGISTERED_SCOPES) == {'mmseg', 'mmpretrain'}
    for cls in (PromptedViT, GatedViT):
        assert SEG_MODELS.get(cls.__name__) is cls
        assert PRETRAIN_MODELS.get(cls.__name__) is cls


def test_mmpretrain_classifier_trains_prompts_and_head():
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = _build_classifier(MODELS)
    samples = [DataSample().set_gt_label(i) for i in range(2)]
    loss = model(torch.randn(2, 3, IMG, IMG), samples, mode='loss')['loss']
    loss.backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert grads == {'backbone.prompts', 'backbone.da_weights',
                     'backbone.ar_prompts', 'head.fc.weight', 'head.fc.bias'}


def _build_classifier(MODELS):
    return MODELS.build(dict(
        type='ImageClassifier',
        backbone=dict(type='PromptedViT', arch=TINY, img_size=IMG,
                      patch_size=PATCH, num_prompts=2, ar_tokens=3,
                      dynamic_aggregation=True, out_type='cls_token'),
        head=dict(type='LinearClsHead', num_classes=5, in_channels=64,
                  loss=dict(type='CrossEntropyLoss'))))


@pytest.mark.slow
def test_config_reaches_backbone_through_custom_imports(tmp_path):
    """A fresh interpreter that never imports mmseg_ivpt itself builds an
    mmseg segmentor from a config file inheriting mmseg's own base."""
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(textwrap.dedent(f"""
        _base_ = ['mmseg::_base_/models/setr_pup.py']
        custom_imports = dict(imports=['mmseg_ivpt'],
                              allow_failed_imports=False)
        norm_cfg = dict(type='BN', requires_grad=True)
        model = dict(
            data_preprocessor=dict(size=({IMG}, {IMG})),
            pretrained=None,
            backbone=dict(_delete_=True, type='PromptedViT', arch={TINY!r},
                          img_size={IMG}, patch_size={PATCH}, num_prompts=2,
                          out_indices=(1, 3)),
            decode_head=dict(in_channels=64, channels=16, in_index=1,
                             num_classes=4, norm_cfg=norm_cfg),
            auxiliary_head=None)
    """))
    code = textwrap.dedent(f"""
        import sys, torch
        from mmengine.config import Config
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
        register_all_modules()
        cfg = Config.fromfile({str(cfg)!r})
        assert 'mmseg_ivpt' in sys.modules
        model = MODELS.build(cfg.model)
        out = model(torch.randn(1, 3, {IMG}, {IMG}), mode='tensor')
        print(type(model.backbone).__name__, tuple(out.shape))
    """)
    env = dict(os.environ, PYTHONPATH=ROOT)
    res = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path),
                         env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'PromptedViT (1, 4, 64, 64)' in res.stdout  # PUP: 4x upsampling x2


def test_our_tests_are_not_the_stray_tests_package():
    """mmsegmentation's wheel installs a top-level `tests` package; ours is
    not a package, so pytest imports these files by their own names and
    `tests` (if anything) is that stray one, never this folder."""
    assert __name__ == 'test_registry'
    assert not os.path.exists(os.path.join(HERE, '__init__.py'))
    spec = importlib.util.find_spec('tests')
    if spec is not None and spec.origin:
        assert os.path.dirname(spec.origin) != HERE
