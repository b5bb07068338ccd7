"""Classification through tools/train.py in the mmpretrain scope: a tiny
VTAB-layout task and a tiny FGVC-json task, inheriting the shipped configs
(only the model size, image size and schedule length are made small)."""
import os
import re

import pytest
import torch
from ivpt_runs import make_fgvc, ok, pretrained_tiny, run_tool, small_config

pytestmark = pytest.mark.slow  # every test trains or uses cls_run


def _check_run(work, log):
    assert 'accuracy/top1' in log
    assert "default_scope = 'mmpretrain'" in open(
        next(work.glob('*.py'))).read()
    ckpt = torch.load(work / 'epoch_2.pth', weights_only=False)
    sd = ckpt['state_dict']
    assert {'backbone.prompts', 'backbone.da_weights', 'backbone.ar_prompts',
            'head.fc.weight'} <= set(sd)
    assert not any(k.startswith('backbone.blocks.') for k in sd)


def test_train_tiny_vtab_task(cls_run):
    _check_run(cls_run['work'], cls_run['log'])


def test_train_tiny_fgvc_task(tmp_path):
    make_fgvc(tmp_path / 'cub', labels=(1, 5, 7, 5, 1, 7, 7, 1))
    over = f"data_root={str(tmp_path / 'cub')!r}"
    cfg = small_config(tmp_path, 'configs/fgvc/ivpt_vitb16_cub.py', over,
                       pretrained_tiny(tmp_path))
    work = tmp_path / 'work'
    res = ok(run_tool('train.py', cfg, '--work-dir', work))
    _check_run(work, res.stdout + res.stderr)


def test_test_tool_out_and_show_dir(cls_run, tmp_path):
    """Issue 18.6: tools/test.py on a classification config writes what
    mmpretrain's test.py writes: --out FILE.pkl, the predictions of every
    test image (their accuracy is the printed top-1); --show-dir DIR, one
    painted image per test image, DIR/<image>_0.png."""
    import pickle
    out, show = tmp_path / 'preds.pkl', tmp_path / 'show'
    res = run_tool('test.py', cls_run['cfg'], cls_run['ckpt'], '--work-dir',
                   tmp_path / 'w', '--out', out, '--show-dir', show)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    top1 = float(re.findall(r'accuracy/top1: ([\d.]+)',
                            res.stdout + res.stderr)[-1])
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 8
    right = [int(p['pred_label']) == int(p['gt_label']) for p in preds]
    assert abs(100 * sum(right) / 8 - top1) < 1e-3
    assert sorted(os.listdir(show)) == sorted(f'{i}.jpg_0.png'
                                              for i in range(8))
    res = run_tool('test.py', cls_run['cfg'], cls_run['ckpt'], '--out',
                   tmp_path / 'preds')
    assert res.returncode != 0 and 'give a path ending in .pkl' in res.stderr


def test_head_of_other_classes_than_the_checkpoint(cls_run, tmp_path):
    """Issue 18.4: a 4-class (kitti) config on the 10-class checkpoint is
    refused at load time, naming the file, the tensor, both shapes (it
    tested a random head: top-1 0.0)."""
    res = run_tool('test.py', cls_run['kitti'], cls_run['ckpt'],
                   '--work-dir', tmp_path / 'w')
    err = res.stderr[-6000:]
    assert res.returncode != 0 and 'accuracy/top1' not in res.stdout + err
    for text in ('CheckpointMismatchError',
                 f"{cls_run['ckpt']} does not fit the model",
                 'head.fc.weight: checkpoint (10, 64) vs model (4, 64)',
                 "The checkpoint's head predicts 10 classes, this config's "
                 '4 (model.head.num_classes)'):
        assert text in err, (text, err)


@pytest.mark.parametrize('opts,message', [
    ([f'{k}_dataloader.dataset.task=kitti' for k in ('train', 'val', 'test')],
     "model.head.num_classes=10 but train_dataloader.dataset (VTAB-1k task "
     "'kitti') has 4 classes"),
    (['val_dataloader.dataset.task=svhn'],
     "val_dataloader.dataset is VTAB-1k task 'svhn' but "
     "train_dataloader.dataset is VTAB-1k task 'eurosat'")],
    ids=['head-vs-data', 'val-task'])
def test_data_that_do_not_fit_the_head(cls_run, tmp_path, opts, message):
    """Issue 18.5: a 10-class head on 4-class kitti, and a val set of
    another task than the train set (same number of classes), stop
    tools/train.py before any work with a ConfigError naming the option
    (tools/test.py with a test set of another task: test_fit_checks.py)."""
    res = run_tool('train.py', cls_run['cfg'], '--work-dir', tmp_path / 'w',
                   '--cfg-options', *opts)
    assert res.returncode != 0, res.stdout[-3000:]
    assert 'ConfigError' in res.stderr and message in res.stderr, \
        res.stderr[-3000:]
    assert not list(tmp_path.glob('w/*.pth'))
