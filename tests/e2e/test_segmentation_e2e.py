"""Segmentation end to end, the way a user runs it: tools/train.py,
tools/test.py, tools/dist_train.sh and mmseg's inference APIs as
subprocesses, on generated data (the demo's config at a smaller scale)."""
import json
import os
import os.path as osp
import re
import shutil
import sys
import textwrap

import pytest
import torch
from ivpt_runs import ROOT, ok, run
from ivpt_runs import SEG_CFG as CFG
from ivpt_runs import train_seg as train

pytestmark = pytest.mark.slow  # the tools run as a user runs them


@pytest.fixture(scope='module')
def trained(env, seg_run):
    """Two identical 4-iteration runs: prompt-only (the session's
    ``seg_run``) and full checkpoints."""
    full_dir = env['tmp'] / 'full'
    ok(train(env, full_dir, '--cfg-options', 'custom_hooks=[]'))
    return seg_run, full_dir


def test_train_then_test_then_inference(env, trained):
    prompt_dir, full_dir = trained
    prompt_ckpt, full_ckpt = prompt_dir / 'iter_4.pth', full_dir / 'iter_4.pth'
    assert (prompt_dir / 'iter_2.pth').is_file() and prompt_ckpt.is_file()
    sd = torch.load(prompt_ckpt, weights_only=False)['state_dict']
    assert 'backbone.prompts' in sd and 'decode_head.conv_seg.weight' in sd
    assert not any(k.startswith('backbone.blocks.') for k in sd)
    # sizes for the record (docs/segmentation.md)
    print(f'prompt-only {prompt_ckpt.stat().st_size} B, full '
          f'{full_ckpt.stat().st_size} B')
    assert prompt_ckpt.stat().st_size < full_ckpt.stat().st_size / 2

    out_dir, show_dir = env['tmp'] / 'pred', env['tmp'] / 'show'
    res = ok(run([sys.executable, 'tools/test.py', CFG, str(prompt_ckpt),
                  '--work-dir', str(env['tmp'] / 'test'), '--out',
                  str(out_dir), '--show-dir', str(show_dir), '--cfg-options']
                 + env['opts'], ROOT))
    assert 'mIoU' in res.stdout + res.stderr
    assert len(os.listdir(out_dir)) == 4
    # where --show-dir's help says the painted images go
    names = sorted(f'test_shapes_{i:06d}.jpg_0.png' for i in range(4))
    assert sorted(os.listdir(show_dir / 'vis_data' / 'vis_image')) == names

    # mmseg's inference APIs, on both checkpoint kinds; the frozen ViT comes
    # from the pretrained file for the prompt-only one
    img = osp.join(env['data'], 'images', 'validation', 'shapes_000001.jpg')
    code = textwrap.dedent(f"""
        import sys, json, numpy as np
        sys.path.insert(0, {ROOT!r})
        from mmseg.apis import (MMSegInferencer, inference_model, init_model,
                                show_result_pyplot)
        preds = {{}}
        for kind, ckpt in (('prompt', {str(prompt_ckpt)!r}),
                           ('full', {str(full_ckpt)!r})):
            model = init_model({CFG!r}, ckpt, device='cpu')
            r = inference_model(model, {img!r})
            preds[kind] = r.pred_sem_seg.data.numpy()
            logits = r.seg_logits.data.numpy()
            preds[kind + '_logits'] = logits
        show_result_pyplot(model, {img!r}, r, show=False,
                           out_file={str(env['tmp'] / 'vis.png')!r})
        inferencer = MMSegInferencer(
            model={CFG!r}, weights={str(prompt_ckpt)!r}, device='cpu')
        out = inferencer({img!r}, return_datasamples=True)
        same = bool(np.array_equal(out.pred_sem_seg.data.numpy(),
                                   preds['prompt']))
        print(json.dumps(dict(
            classes=list(model.dataset_meta['classes']),
            max_logit_diff=float(np.abs(preds['prompt_logits'] -
                                        preds['full_logits']).max()),
            same_pred=bool(np.array_equal(preds['prompt'], preds['full'])),
            inferencer_same=same)))
    """)
    res = ok(run([sys.executable, '-c', code], str(env['tmp'])))
    info = json.loads(res.stdout.strip().splitlines()[-1])
    assert info['classes'] == ['background', 'disc', 'square', 'triangle']
    assert info['max_logit_diff'] <= 1e-5 and info['same_pred']
    assert info['inferencer_same']
    assert (env['tmp'] / 'vis.png').is_file()


def test_dist_train_two_processes_and_resume(env):
    """dist_train.sh with 2 CPU processes (gloo) trains; a run resumed from
    its iteration 2 reaches the uninterrupted run's prompts at iteration 4."""
    a = env['tmp'] / 'dist_a'
    res = ok(train(env, a, dist=2, PORT='29511'))
    log = res.stdout + res.stderr
    assert 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    b = env['tmp'] / 'dist_b'
    b.mkdir()
    shutil.copy(a / 'iter_2.pth', b / 'iter_2.pth')
    (b / 'last_checkpoint').write_text(str(b / 'iter_2.pth'))
    res = ok(train(env, b, '--resume', dist=2, PORT='29512'))
    assert 'resumed' in (res.stdout + res.stderr).lower()
    sa = torch.load(a / 'iter_4.pth', weights_only=False)['state_dict']
    sb = torch.load(b / 'iter_4.pth', weights_only=False)['state_dict']
    for k in ('backbone.prompts', 'backbone.da_weights'):
        assert not torch.equal(sa[k], torch.load(
            a / 'iter_2.pth', weights_only=False)['state_dict'][k])
        torch.testing.assert_close(sb[k], sa[k], rtol=0, atol=0)


# ------------------------------------------------------------- bad inputs
def test_missing_data_root_fails_before_training(env, tmp_path):
    res = run([sys.executable, 'tools/train.py', CFG, '--work-dir',
               str(tmp_path / 'w'), '--cfg-options',
               'train_dataloader.dataset.data_root=/nowhere/ade'], ROOT)
    assert res.returncode != 0
    assert "train_dataloader.dataset.data_root='/nowhere/ade' does not " \
           'exist' in res.stderr
    assert not (tmp_path / 'w').exists() or not any(
        f.endswith('.pth') for f in os.listdir(tmp_path / 'w'))


def test_head_backbone_mismatch_fails_before_training(env):
    from mmengine.config import Config

    from mmseg_ivpt.engine.runner import ConfigError, prepare
    cfg = Config.fromfile(CFG)
    cfg.merge_from_dict(dict(model=dict(decode_head=dict(in_channels=128))))
    cfg.work_dir = str(env['tmp'] / 'never')
    with pytest.raises(ConfigError, match=r'model.decode_head.in_channels=128'
                       r'.*gives 96-channel features'):
        prepare(cfg, 'train')
    cfg = Config.fromfile(CFG)
    cfg.merge_from_dict(dict(model=dict(auxiliary_head=dict(in_index=2))))
    with pytest.raises(ConfigError, match=r'auxiliary_head.in_index=2.*2 '
                       'feature map'):
        prepare(cfg, 'train')


def test_checkpoint_of_another_model_is_refused(env, trained):
    """An N=8 checkpoint into an N=4 model: tools/test.py stops with the
    mismatch before testing."""
    res = run([sys.executable, 'tools/test.py', CFG,
               str(trained[0] / 'iter_4.pth'), '--work-dir',
               str(env['tmp'] / 'bad'), '--cfg-options'] + env['opts'] +
              ['model.backbone.num_prompts=4'], ROOT)
    assert res.returncode != 0
    assert 'MethodMismatchError' in res.stderr  # a CheckpointMismatchError
    assert 'num_prompts: checkpoint 8, this model 4' in res.stderr
    assert 'backbone.prompts: checkpoint (4, 8, 96) vs model (4, 4, 96)' \
        in res.stderr


def test_check_data_names_missing_folders(tmp_path):
    """mmseg's dict data_prefix and mmpretrain's single folder both."""
    from mmengine.config import Config

    from mmseg_ivpt.engine.runner import ConfigError, check_data
    (tmp_path / 'images').mkdir()
    seg = Config(dict(val_dataloader=dict(dataset=dict(
        data_root=str(tmp_path), data_prefix=dict(
            img_path='images', seg_map_path='annotations')))))
    with pytest.raises(ConfigError, match="seg_map_path='annotations' not "
                       'found'):
        check_data(seg, ['val_dataloader'])
    cls = Config(dict(train_dataloader=dict(dataset=dict(
        data_root=str(tmp_path), data_prefix='train'))))
    with pytest.raises(ConfigError, match="data_prefix='train' not found"):
        check_data(cls, ['train_dataloader'])


# ---------------------------- what does not fit: named errors, never a metric
def _test_tool(env, ckpt, *opts, work='bad_test'):
    """tools/test.py on the demo config at the fixture's scale, ``opts``
    after the fixture's (so they win)."""
    return run([sys.executable, 'tools/test.py', CFG, str(ckpt),
                '--work-dir', str(env['tmp'] / work), '--cfg-options'] +
               env['opts'] + list(opts), ROOT)


def _failed(res, *texts):
    """The run stopped with a named error containing every text."""
    err = res.stdout[-3000:] + res.stderr[-6000:]
    assert res.returncode != 0, err
    assert not re.search(r'mIoU: \d', res.stdout + res.stderr), err
    for t in texts:
        assert t in err, (t, err)
    return err


def test_head_that_does_not_fit_the_checkpoint(env, trained):
    """Issue 18.4: a decode head of other channels than the checkpoint's is
    refused at load time, naming the file, the tensor and both shapes
    (mmengine alone prints "size mismatch" and tests a random head); one of
    other num_classes than the data is refused before (18.5)."""
    ckpt = trained[0] / 'iter_4.pth'
    err = _failed(_test_tool(env, ckpt, 'model.decode_head.channels=16'),
                  'CheckpointMismatchError', f'{ckpt} does not fit the model',
                  'decode_head.', 'vs model (16,',
                  'with the config it was trained with')
    assert re.search(r'decode_head\.\S+: checkpoint \(32, ', err), err
    _failed(_test_tool(env, ckpt, 'model.decode_head.num_classes=5'),
            'ConfigError', 'model.decode_head.num_classes=5 but '
            'test_dataloader.dataset (ShapesSegDataset) has 4 classes '
            '(background, disc, square, triangle)')


def test_head_with_other_classes_than_the_data_does_not_train(env, tmp_path):
    """Issue 18.5: a 6-class head on the 4-class shapes set stops before
    any iteration."""
    _failed(train(env, tmp_path / 'w', '--cfg-options',
                  'model.decode_head.num_classes=6'),
            'ConfigError', 'model.decode_head.num_classes=6 but '
            'train_dataloader.dataset (ShapesSegDataset) has 4 classes')
    assert not list((tmp_path / 'w').glob('*.pth'))


def test_pretrained_vit_given_as_the_checkpoint(env):
    """Issue 18.11: a pretrained ViT file is not a trained model."""
    _failed(_test_tool(env, env['pretrained']), 'CheckpointMismatchError',
            f"{env['pretrained']} is a pretrained ViT (timm layout), not a "
            'checkpoint of a trained model',
            'model.backbone.init_cfg.checkpoint=')


def test_prompt_only_checkpoint_given_as_init_cfg(env, trained, tmp_path):
    """Issue 18.11: init_cfg naming a prompt-only checkpoint says what the
    file is, which ViT it was trained on and what to do instead."""
    ckpt = trained[0] / 'iter_4.pth'
    res = run([sys.executable, 'tools/train.py', CFG, '--work-dir',
               str(tmp_path / 'w'), '--cfg-options'] + env['opts'] +
              [f'model.backbone.init_cfg.checkpoint={ckpt}'], ROOT)
    _failed(res, f"init_cfg checkpoint='{ckpt}' is a prompt-only checkpoint "
            'of a trained model', f"trained on the pretrained ViT "
            f"{env['pretrained']}", 'give this file as the checkpoint',
            f"load_from='{ckpt}'")


@pytest.fixture(scope='module')
def bad_masks(env, tmp_path_factory):
    """A copy of the data: one training mask with the file value 9 (class
    8 of 4), one validation mask of 32x32 for its 64x64 image."""
    import numpy as np
    from PIL import Image
    root = tmp_path_factory.mktemp('bad') / 'shapes'
    shutil.copytree(env['data'], root)
    label = root / 'annotations' / 'training' / 'shapes_000003.png'
    a = np.asarray(Image.open(label)).copy()
    a[5:9, 5:9] = 9
    Image.fromarray(a).save(label)
    small = root / 'annotations' / 'validation' / 'shapes_000002.png'
    Image.open(small).resize((32, 32), Image.NEAREST).save(small)
    return dict(root=str(root), label=str(label), small=str(small))


def test_label_outside_the_classes_names_the_file(env, bad_masks, tmp_path):
    """Issue 18.11: a mask label outside the classes stops training with
    the file named (was: IndexError in the loss, no file)."""
    # after the fixture's options, which name the good data
    res = run([sys.executable, 'tools/train.py', CFG, '--work-dir',
               str(tmp_path / 'w'), '--cfg-options'] + env['opts'] +
              [f"train_dataloader.dataset.data_root={bad_masks['root']}"],
              ROOT)
    _failed(res, 'DataError', bad_masks['label'], 'file value(s) 9',
            "the data set's 4 classes", 'reduce_zero_label')


def test_mask_of_another_size_names_the_file(env, trained, bad_masks):
    """Issue 18.11: a mask of another size than its image stops the test
    with the file named (was: IndexError in the metric, no file)."""
    res = _test_tool(env, trained[0] / 'iter_4.pth',
                     f"test_dataloader.dataset.data_root={bad_masks['root']}")
    _failed(res, 'DataError', bad_masks['small'], 'the mask is 32x32 (HxW)',
            'shapes_000002.jpg is 64x64')
