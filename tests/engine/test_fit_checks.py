"""The checks that a model, its checkpoint and its data fit each other, in
process (the cases as a user meets them, through the tools, are in
test_segmentation_e2e.py, test_classification_e2e.py and test_bank.py):
heads against the backbone (which backbones get the check), heads against
the data's classes, val/test task against the train task,
the annotation check in the pipelines, a checkpoint against the model, a
trained checkpoint given as init_cfg, and every shipped config passing."""
import copy
import glob
import os.path as osp
from collections import OrderedDict

import numpy as np
import pytest
import torch
from ivpt_runs import ROOT
from mmengine.config import Config
from torch import nn

from mmseg_ivpt.datasets import DataError
from mmseg_ivpt.engine.checks import (
    ConfigError,
    check_checkpoint_fits,
    check_data_fits,
    check_model,
)
from mmseg_ivpt.engine.config_repair import (
    arm_annotation_check,
    arm_annotation_checks,
)
from mmseg_ivpt.models import CheckpointMismatchError

SEG = osp.join(ROOT, 'configs', 'demo', 'setr_ivpt_tiny_shapes.py')
EUROSAT = osp.join(ROOT, 'configs', 'vtab', 'ivpt_vitb16_eurosat.py')


# ------------------------------------------------------------ data vs head
@pytest.mark.slow
def test_every_shipped_config_fits_its_data():
    """No false alarm: each shipped config's heads have its data set's
    classes and its val/test sets are its train task. (The ViT-L, ViT-H
    and Swin-B leaves take classes and task from the ViT-B leaves' task
    base, test_configs.py checks.)"""
    configs = [c for c in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                                    recursive=True) if '_base_' not in c and
               not any(f'/{b}/' in c for b in (
                   'vitl16', 'vith14', 'swinb', 'dinov2-vitb14',
                   'clip-vitb16'))]
    # VTAB, FGVC, the ViT-L ADE20K, the demo, DINOv2/CLIP ADE20K, GaPT's
    # ViT-B ADE20K (configs/gapt_ade20k/), Mask2Former ADE20K / Cityscapes
    assert len(configs) == 19 + 5 + 6 + 1 + 6 + 6 + 8
    for path in configs:
        cfg = Config.fromfile(path)
        check_data_fits(cfg, ('train_dataloader', 'val_dataloader',
                              'test_dataloader'))


CUB = osp.join(ROOT, 'configs', 'fgvc', 'ivpt_vitb16_cub.py')
LOADERS = ('train_dataloader', 'val_dataloader')


@pytest.mark.parametrize('config,options,loaders,pattern', [
    (EUROSAT, {'model.head.num_classes': 9}, LOADERS,
     r"model.head.num_classes=9 but train_dataloader.dataset \(VTAB-1k task "
     r"'eurosat'\) has 10 classes: the model would miss classes"),
    (EUROSAT, {'data_preprocessor.num_classes': 11}, LOADERS,
     'data_preprocessor.num_classes=11'),
    (EUROSAT, {'test_dataloader.dataset.task': 'svhn'}, LOADERS, None),
    (EUROSAT, {'test_dataloader.dataset.task': 'svhn'}, ('test_dataloader',),
     r"test_dataloader.dataset is VTAB-1k task 'svhn' .*--cfg-options "
     r'test_dataloader.dataset.task=eurosat'),
    (CUB, {'val_dataloader.dataset.name': 'nabirds'}, LOADERS,
     r"model.head.num_classes=200 but val_dataloader.dataset \(FGVC "
     r"'nabirds'\) has 555"),
    (SEG, {'model.auxiliary_head.num_classes': 3}, ('val_dataloader',),
     r'model.auxiliary_head.num_classes=3 but val_dataloader.dataset '
     r'\(ShapesSegDataset\) has 4 classes')])
def test_heads_against_the_classes_and_the_tasks(config, options, loaders,
                                                 pattern):
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    if pattern is None:
        check_data_fits(cfg, loaders)
        return
    with pytest.raises(ConfigError, match=pattern):
        check_data_fits(cfg, loaders)


def _new_method_class():
    """A method written after the checks: a PromptTunedViT whose name no
    list of the package holds."""
    from mmseg_ivpt.models import PromptTunedViT

    class TestOnlyNewMethod(PromptTunedViT):
        method_param_names = ()

    return TestOnlyNewMethod


@pytest.mark.parametrize('scope', ['mmseg', 'mmpretrain'])
def test_head_checks_follow_the_backbone_class(scope):
    """The heads are checked against every backbone built on the package's
    ViT: the shipped methods, a new one registered by name (it was never
    added to a list) or given as a class; not a Swin (of ours or the
    toolbox's), nor a ResNet."""
    import importlib
    registry = importlib.import_module(f'{scope}.registry').MODELS
    new = _new_method_class()
    registry.register_module(name=new.__name__, module=new)
    wide = dict(in_channels=64)  # ViT-B ('b', the default arch) gives 768

    def model(bb_type, key):
        return {'backbone': dict(type=bb_type), key: dict(wide)}

    key = 'decode_head' if scope == 'mmseg' else 'head'
    other = 'ResNetV1c' if scope == 'mmseg' else 'ResNet'
    try:
        for bb_type in ('PromptedViT', 'GatedViT', new.__name__,
                        f'{scope}.{new.__name__}', new):
            with pytest.raises(ConfigError, match=rf'model.{key}.in_channels'
                               r'=64 does not match the backbone: [\w.]+\('
                               r"arch=None\) gives 768-channel"):
                check_model(model(bb_type, key), scope)
        # unchecked: the heads may be anything
        for bb_type in ('PromptedSwin', 'SwinTransformer', other,
                        'NoSuchBackbone'):
            check_model(model(bb_type, key), scope)
        # the right width passes
        check_model({'backbone': dict(type=new.__name__, arch=dict(
            embed_dims=64, num_layers=2, num_heads=4,
            feedforward_channels=128)), key: dict(wide)}, scope)
    finally:
        registry.module_dict.pop(new.__name__)


M2F = osp.join(ROOT, 'configs',
               'mask2former_ivpt_dinov2-vitl14-reg4_ade20k.py')


def test_heads_are_checked_against_the_neck():
    """A neck that changes the channels (mmseg's MultiLevelNeck, 1024 ->
    256) feeds heads of its width: refused before (the heads were held to
    the backbone's 1024), passes now; heads of the backbone's width behind
    it, and a neck that does not take the backbone's width, are refused.
    Feature2Pyramid keeps the width (embed_dim), so it is checked too."""
    model = Config.fromfile(M2F).model.to_dict()
    check_model(model, 'mmseg')  # Feature2Pyramid, 1024 in and out
    neck = dict(type='MultiLevelNeck', in_channels=[1024] * 4,
                out_channels=256, scales=[4, 2, 1, 0.5])
    narrow = dict(model, neck=neck,
                  decode_head=dict(model['decode_head'],
                                   in_channels=[256] * 4))
    check_model(narrow, 'mmseg')
    with pytest.raises(ConfigError, match=r'model.decode_head.in_channels='
                       r'\[1024, 1024, 1024, 1024\] does not match the neck: '
                       r'MultiLevelNeck gives 256-channel'):
        check_model(dict(narrow, decode_head=model['decode_head']), 'mmseg')
    with pytest.raises(ConfigError, match=r'model.neck.in_channels=\[768, '
                       r'.*does not match the backbone: PromptedViT'
                       r"\(arch='l'\) gives 1024"):
        check_model(dict(narrow, neck=dict(neck, in_channels=[768] * 4)),
                    'mmseg')
    with pytest.raises(ConfigError, match=r'model.neck.embed_dim=768 does '
                       r'not match the backbone'):
        check_model(dict(model, neck=dict(model['neck'], embed_dim=768)),
                    'mmseg')
    with pytest.raises(ConfigError, match=r'model.decode_head.in_index=4 but '
                       r'the neck returns 4 feature map'):
        check_model(dict(narrow, decode_head=dict(
            narrow['decode_head'], in_index=4)), 'mmseg')


def test_class_count_checks_know_mask2former():
    """Mask2Former's num_classes is held to the data's classes; its
    class weights (one per class and "no object") to num_classes: a
    --cfg-options num_classes alone passed the checks before and failed
    inside mmdet's loss."""
    cfg = Config.fromfile(M2F)
    check_data_fits(cfg, LOADERS)
    check_model(cfg.model, 'mmseg')
    cfg.merge_from_dict({'model.decode_head.num_classes': 19})
    with pytest.raises(ConfigError, match=r'model.decode_head.num_classes=19 '
                       r'but train_dataloader.dataset \(ADE20KDataset\) has '
                       r'150'):
        check_data_fits(cfg, LOADERS)
    with pytest.raises(ConfigError, match=r'model.decode_head.loss_cls.'
                       r'class_weight has 151 entries but model.decode_head.'
                       r'num_classes=19.*19 \+ 1 = 20'):
        check_model(cfg.model, 'mmseg')
    cfg.merge_from_dict({'model.decode_head.loss_cls.class_weight':
                         [1.] * 19 + [.1]})
    check_model(cfg.model, 'mmseg')


def test_segmentation_tta():
    # tools/test.py --tta: the model is wrapped, the pipeline a TestTimeAug
    cfg = Config.fromfile(SEG)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model
    cfg.model.module.decode_head.num_classes = 5
    with pytest.raises(ConfigError, match='decode_head.num_classes=5'):
        check_data_fits(cfg, ('test_dataloader', ))
    cfg.model.module.decode_head.num_classes = 4
    before = copy.deepcopy(cfg.test_dataloader)
    armed = check_data_fits(cfg, ('test_dataloader', ))
    assert cfg.test_dataloader == before  # a check changes nothing
    arm_annotation_checks(armed)
    arm_annotation_checks(check_data_fits(cfg, ('test_dataloader', )))
    branches = cfg.test_dataloader.dataset.pipeline[1]['transforms']
    names = [[t['type'] for t in b] for b in branches]
    assert names[2:] == [['LoadAnnotations'], ['CheckSegAnnotation'],
                         ['PackSegInputs']]
    assert branches[3][0]['num_classes'] == 4


def test_annotation_check_is_put_after_loading_once():
    ds = dict(pipeline=[dict(type='LoadImageFromFile'),
                        dict(type='mmseg.LoadAnnotations'),
                        dict(type='PackSegInputs')])
    check = dict(type='CheckSegAnnotation', num_classes=3)
    arm_annotation_check(ds, check)
    arm_annotation_check(ds, check)  # idempotent
    assert [t['type'] for t in ds['pipeline']] == [
        'LoadImageFromFile', 'mmseg.LoadAnnotations', 'CheckSegAnnotation',
        'PackSegInputs']


def test_check_seg_annotation():
    from mmseg_ivpt.datasets import CheckSegAnnotation
    check = CheckSegAnnotation(num_classes=4, dataset='val_dataloader.dataset')

    def results(seg, **kw):
        return dict(gt_seg_map=seg, seg_map_path='/d/a.png',
                    img_path='/d/a.jpg', ori_shape=(6, 8), **kw)
    ok = np.full((6, 8), 255, np.uint8)
    ok[:3] = 3
    assert check(results(ok))['gt_seg_map'] is ok
    assert check(dict(img=np.zeros((6, 8, 3)))) is not None  # inference
    bad = ok.copy()
    bad[0, 0] = 6
    with pytest.raises(DataError, match=r'/d/a.png \(val_dataloader.dataset'
                       r'\): file value\(s\) 7: with reduce_zero_label .* '
                       r"so 0..4 \(or 255, ignored\) for the data set's 4"):
        check(results(bad, reduce_zero_label=True))
    with pytest.raises(DataError, match=r'label value\(s\) 6: .* so 0..3'):
        check(results(bad))
    with pytest.raises(DataError, match=r'/d/a.png .*the mask is 6x4 \(HxW\)'
                       r' but /d/a.jpg is 6x8'):
        check(results(ok[:, :4]))
    with pytest.raises(DataError, match=r'shape \(6, 8, 3\).*not colours'):
        check(results(np.zeros((6, 8, 3), np.uint8)))


def test_reduce_zero_label_of():
    from mmseg_ivpt.datasets import reduce_zero_label_of
    assert reduce_zero_label_of(dict(type='ShapesSegDataset'))
    assert reduce_zero_label_of(dict(type='ADE20KDataset'))
    assert not reduce_zero_label_of(dict(type='CityscapesDataset'))
    assert not reduce_zero_label_of(dict(type='ShapesSegDataset',
                                         reduce_zero_label=False))


# ------------------------------------------------------ checkpoint vs model
class _Tiny(nn.Module):
    def __init__(self, classes=4):
        super().__init__()
        self.neck = nn.Linear(3, 5)
        self.head = nn.Module()
        self.head.fc = nn.Linear(5, classes)


def test_checkpoint_against_the_model():
    model = _Tiny()
    check_checkpoint_fits(model, dict(state_dict=model.state_dict()), 'a.pth')
    other = _Tiny(classes=10).state_dict()
    with pytest.raises(CheckpointMismatchError, match=(
            r'a.pth does not fit the model of this config:\n  '
            r'head.fc.weight: checkpoint \(10, 5\) vs model \(4, 5\)\n  '
            r'head.fc.bias: checkpoint \(10,\) vs model \(4,\)\n'
            r"The checkpoint's head predicts 10 classes, this config's 4")):
        check_checkpoint_fits(model, dict(state_dict=other), 'a.pth')
    partial = {k: v for k, v in model.state_dict().items()
               if not k.startswith('head.')}
    with pytest.raises(CheckpointMismatchError,
                       match=r'missing in the checkpoint \(2\): head.fc'):
        check_checkpoint_fits(model, partial, 'a.pth')
    with pytest.raises(CheckpointMismatchError,
                       match="b.pth holds none of the model's tensors"):
        check_checkpoint_fits(model, {'x.weight': torch.zeros(1)}, 'b.pth')


def test_trained_checkpoint_given_as_init_cfg(tmp_path):
    """init_cfg naming a prompt-only checkpoint: the message says so, the
    ViT it records, and what to do; an unknown file names itself."""
    from ivpt_helpers import IMG, PATCH, TINY

    from mmseg_ivpt.models import PromptedViT
    from mmseg_ivpt.models.checkpoint import load_pretrained
    sd = OrderedDict({'backbone.prompts': torch.zeros(4, 2, 64),
                      'head.fc.weight': torch.zeros(3, 64)})
    sd._metadata = OrderedDict(backbone=dict(
        pretrained='vit.pth', pretrained_abs='/models/vit.pth',
        encoder_fingerprint='abc'))
    path = str(tmp_path / 'iter_4.pth')
    torch.save(dict(state_dict=sd, meta=dict(prompt_only={})), path)
    model = PromptedViT(arch=TINY, img_size=IMG, patch_size=PATCH,
                        num_prompts=2)
    with pytest.raises(CheckpointMismatchError, match=(
            f"init_cfg checkpoint='{path}' is a prompt-only checkpoint of a "
            r'trained model .* trained on the pretrained ViT /models/vit.pth'
            r'.*give this file as the checkpoint .*load_from=')):
        load_pretrained(model, path)
    path = str(tmp_path / 'odd.pth')
    torch.save({'x.weight': torch.zeros(2)}, path)
    with pytest.raises(CheckpointMismatchError,
                       match=f"init_cfg checkpoint='{path}': cannot tell the "
                             'layout'):
        load_pretrained(model, path)
