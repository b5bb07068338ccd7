"""A checkpoint meets a config that is not the one it was trained with,
through every door a user loads it by (issue 29): tools/test.py as a
subprocess from another directory, mmseg's ``init_model`` and
``MMSegInferencer``, mmpretrain's inferencer, ``load_from``, the prompt
bank. Another method or encoder option (29.1) is a MethodMismatchError
naming each setting with both values; a head of another ``num_classes``
(29.2) is a CheckpointMismatchError naming the tensor and both shapes,
never a random head. The tools end such errors, and a missing checkpoint,
with one line ``<tool>: error: ...``; ``--debug`` shows the traceback
(29.11). The checkpoints are the session's tiny runs (``seg_run``,
``cls_run``)."""
import os.path as osp
import re

import pytest
from ivpt_runs import SEG_CFG, run_tool, save_seg_vit

pytestmark = pytest.mark.slow  # the tools run as subprocesses, and runs

DEEP = ['model.backbone.prompt_structure=deep',
        'model.backbone.dynamic_aggregation=False']


def _seg_cfg(seg_run):
    """The config seg_run trained with (its work_dir's copy: data and
    pretrained ViT set)."""
    return str(seg_run / osp.basename(SEG_CFG))


def _config(seg_run, options):
    """seg_run's config with ``options`` (as ``--cfg-options``)."""
    from mmengine.config import Config
    cfg = Config.fromfile(_seg_cfg(seg_run))
    cfg.merge_from_dict(options)
    return cfg


def _one_line_error(res, tool, error, *texts):
    """``res`` failed with ``<tool>: error: <error>: ...`` and no
    traceback, holding every text; returns stderr."""
    err = res.stderr
    assert res.returncode != 0, res.stdout[-2000:] + err[-4000:]
    assert 'Traceback' not in err, err[-4000:]
    assert not re.search(r'mIoU: \d', res.stdout + err)  # nothing tested
    assert f'{tool}: error: {error}: ' in err, err[-4000:]
    for t in texts:
        assert t in err, (t, err[-4000:])
    return err


@pytest.fixture(scope='module')
def cdc_no_da(seg_run, tmp_path_factory):
    """A full checkpoint, saved by mmengine as the runner saves one, of the
    demo's model with CDC and no DA: its tensors have the shapes of the
    VPT-deep and vanilla-CDC models of the same N."""
    from mmengine.config import Config
    from mmengine.runner.checkpoint import (
        get_state_dict,
        save_checkpoint,
        weights_to_cpu,
    )
    from mmseg.apis import init_model
    cfg = Config.fromfile(_seg_cfg(seg_run))
    cfg.model.backbone.dynamic_aggregation = False
    model = init_model(cfg, None, device='cpu')
    path = str(tmp_path_factory.mktemp('cdc') / 'cdc_no_da.pth')
    save_checkpoint(dict(state_dict=weights_to_cpu(get_state_dict(model))),
                    path)
    return path


def test_test_tool_refuses_another_method(seg_run, cdc_no_da, tmp_path):
    """29.1 and 29.11: a CDC checkpoint under the VPT-deep config printed a
    plausible mIoU; now one line naming the setting and both values."""
    res = run_tool('test.py', _seg_cfg(seg_run), cdc_no_da, '--work-dir',
                   tmp_path / 'w', '--cfg-options', *DEEP, cwd=tmp_path)
    _one_line_error(res, 'test.py', 'MethodMismatchError',
                    f'{cdc_no_da} was trained with other backbone settings '
                    'than model.backbone (PromptedViT) has:',
                    "prompt_structure: checkpoint 'cdc', this model 'deep'",
                    'model.backbone.prompt_structure=cdc')


def test_test_tool_one_line_errors(seg_run, seg_data, tmp_path):
    """29.11: a missing checkpoint and an encoder mismatch end in one line;
    with --debug the traceback is shown."""
    ckpt = str(seg_run / 'iter_4.pth')
    missing = str(tmp_path / 'nope.pth')
    res = run_tool('test.py', _seg_cfg(seg_run), missing, cwd=tmp_path)
    _one_line_error(res, 'test.py', 'FileNotFoundError',
                    f"checkpoint '{missing}' not found")
    res = run_tool('test.py', _seg_cfg(seg_run), missing, '--debug',
                   cwd=tmp_path)
    assert res.returncode != 0 and 'Traceback' in res.stderr
    other = str(save_seg_vit(tmp_path / 'other_vit.pth', seed=1))
    res = run_tool('test.py', _seg_cfg(seg_run), ckpt, '--work-dir',
                   tmp_path / 'w', '--cfg-options',
                   f'model.backbone.init_cfg.checkpoint={other}',
                   cwd=tmp_path)
    _one_line_error(res, 'test.py', 'EncoderMismatchError',
                    f"{ckpt} was trained on the frozen ViT "
                    f"{seg_data['pretrained']}", other)


def test_train_tool_one_line_error(seg_run, tmp_path):
    res = run_tool('train.py', _seg_cfg(seg_run), '--work-dir',
                   tmp_path / 'w', '--cfg-options',
                   'train_dataloader.dataset.data_root=/nowhere', cwd=tmp_path)
    _one_line_error(res, 'train.py', 'ConfigError',
                    "train_dataloader.dataset.data_root='/nowhere' does not "
                    'exist')


def test_mmseg_apis_refuse_another_method(seg_run, cdc_no_da):
    """29.1: init_model and MMSegInferencer, on the prompt-only checkpoint
    tools/train.py wrote and on the full one."""
    from mmseg.apis import MMSegInferencer, init_model

    from mmseg_ivpt.models import MethodMismatchError
    ckpt = str(seg_run / 'iter_4.pth')
    with pytest.raises(MethodMismatchError,
                       match=r"(?s)iter_4.pth was trained .*final_norm: "
                             r"checkpoint False, this model True"):
        init_model(_seg_cfg(seg_run), ckpt, device='cpu',
                   cfg_options={'model.backbone.final_norm': True})
    with pytest.raises(MethodMismatchError,
                       match="prompt_structure: checkpoint 'cdc', this "
                             "model 'vanilla_cdc'"):
        MMSegInferencer(model=_config(seg_run, {
            'model.backbone.prompt_structure': 'vanilla_cdc',
            'model.backbone.dynamic_aggregation': False}),
            weights=cdc_no_da, device='cpu')


def test_mmseg_apis_refuse_another_head(seg_run):
    """29.2: a 5-class head on the 4-class checkpoint ran a random head."""
    from mmseg.apis import MMSegInferencer, init_model

    from mmseg_ivpt.models import CheckpointMismatchError
    ckpt = str(seg_run / 'iter_4.pth')
    text = (r'(?s)iter_4.pth does not fit the model of this config:.*'
            r'decode_head.conv_seg.weight: checkpoint \(4, 32, 1, 1\) vs '
            r'model \(5, 32, 1, 1\).*'
            r"The checkpoint's decode_head predicts 4 classes, this config's "
            r'5 \(model.decode_head.num_classes\)')
    with pytest.raises(CheckpointMismatchError, match=text):
        init_model(_seg_cfg(seg_run), ckpt, device='cpu', cfg_options={
            'model.decode_head.num_classes': 5})
    with pytest.raises(CheckpointMismatchError, match=text):
        MMSegInferencer(model=_config(seg_run, {
            'model.decode_head.num_classes': 5}), weights=ckpt, device='cpu')


def test_mmpretrain_inferencer(cls_run):
    """29.2 (a 4-class kitti config on the 10-class checkpoint) and 29.1
    (another pooling of the same tensors) through mmpretrain's
    inferencer."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmpretrain.apis import ImageClassificationInferencer

    from mmseg_ivpt.models import (
        CheckpointMismatchError,
        MethodMismatchError,
    )
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        with pytest.raises(CheckpointMismatchError,
                           match=r'head.fc.weight: checkpoint \(10, 64\) vs '
                                 r'model \(4, 64\)'):
            ImageClassificationInferencer(model=cls_run['kitti'],
                                          pretrained=cls_run['ckpt'],
                                          device='cpu')
        cfg = Config.fromfile(cls_run['cfg'])
        cfg.model.backbone.out_type = 'avg_featmap'
        with pytest.raises(MethodMismatchError,
                           match="out_type: checkpoint 'cls_token', this "
                                 "model 'avg_featmap'"):
            ImageClassificationInferencer(model=cfg,
                                          pretrained=cls_run['ckpt'],
                                          device='cpu')


def test_load_from_and_the_bank(seg_run, seg_data, tmp_path):
    """29.1: ``load_from`` in a config (what the runner loads before
    training) and a task of the prompt bank."""
    from mmseg_ivpt.apis import PromptBank
    from mmseg_ivpt.engine.runner import build_runner
    from mmseg_ivpt.models import MethodMismatchError
    ckpt = str(seg_run / 'iter_4.pth')
    cfg = _config(seg_run, {'model.backbone.final_norm': True})
    cfg.load_from, cfg.work_dir = ckpt, str(tmp_path / 'w')
    runner = build_runner(cfg, 'train')
    with pytest.raises(MethodMismatchError, match='final_norm: checkpoint '
                       'False, this model True'):
        runner.load_or_resume()
    with pytest.raises(MethodMismatchError,
                       match=r"(?s)task 'shapes': .*iter_4.pth was trained "
                             r'.*final_norm: checkpoint False, this model '
                             r'True'):
        PromptBank(seg_data['pretrained'], [dict(
            name='shapes', config=_seg_cfg(seg_run), checkpoint=ckpt,
            cfg_options={'model.backbone.final_norm': True})])
