"""Classification through tools/train.py in the mmpretrain scope: a tiny
VTAB-layout task and a tiny FGVC-json task, inheriting the shipped configs
(only the model size, image size and schedule length are made small)."""
import os
import os.path as osp
import re
import subprocess
import sys
import textwrap

import pytest
import torch
from ivpt_helpers import TINY
from test_classification_data import make_fgvc, make_vtab

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def small_config(tmp_path, base, dataset_overrides, pretrained):
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(textwrap.dedent(f"""
        _base_ = [{osp.join(ROOT, base)!r}]
        model = dict(backbone=dict(arch=dict(_delete_=True, **{TINY!r}),
                                   img_size=32, patch_size=8,
                                   num_prompts=3, ar_tokens=2,
                                   init_cfg=dict(checkpoint={pretrained!r})),
                     head=dict(in_channels=64))
        small_train = [dict(type='LoadImageFromFile'),
                       dict(type='ResizeEdge', scale=36, edge='short'),
                       dict(type='RandomCrop', crop_size=32),
                       dict(type='RandomFlip', prob=0.5, direction='horizontal'),
                       dict(type='PackInputs')]
        small_test = [dict(type='LoadImageFromFile'),
                      dict(type='ResizeEdge', scale=36, edge='short'),
                      dict(type='CenterCrop', crop_size=32),
                      dict(type='PackInputs')]
        loader = dict(batch_size=4, num_workers=0, persistent_workers=False)
        train_dataloader = dict(**loader, dataset=dict(
            pipeline=small_train, {dataset_overrides}))
        val_dataloader = dict(**loader, dataset=dict(
            pipeline=small_test, {dataset_overrides}))
        test_dataloader = val_dataloader
        train_cfg = dict(max_epochs=2, val_interval=2)
        default_hooks = dict(checkpoint=dict(interval=2))
    """))
    return str(cfg)


def pretrained_tiny(tmp_path):
    from mmseg_ivpt.models import ViTEncoder
    path = str(tmp_path / 'tiny_vit.pth')
    torch.save(ViTEncoder(arch=TINY, img_size=32, patch_size=8).state_dict(),
               path)
    return path


def _tool(tool, cfg, *args):
    """tools/<tool>.py as a user runs it."""
    return subprocess.run([sys.executable, f'tools/{tool}.py', cfg, *args],
                          cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def _train(cfg, work):
    res = _tool('train', cfg, '--work-dir', str(work))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return res


@pytest.fixture(scope='module')
def vtab_run(tmp_path_factory):
    """One tiny eurosat run (10 classes, 8 images), and the data of two
    other tasks beside it: svhn (10 classes too) and kitti (4)."""
    tmp = tmp_path_factory.mktemp('cls')
    make_vtab(tmp / 'vtab', task='eurosat', n=8)
    make_vtab(tmp / 'vtab', task='svhn', n=8)
    make_vtab(tmp / 'vtab', task='kitti', n=8,
              labels=[i % 4 for i in range(8)])
    pretrained = pretrained_tiny(tmp)
    over = f"data_root={str(tmp / 'vtab')!r}"
    cfg = small_config(tmp, 'configs/vtab/ivpt_vitb16_eurosat.py', over,
                       pretrained)
    (tmp / 'kitti').mkdir()
    kitti = small_config(tmp / 'kitti', 'configs/vtab/ivpt_vitb16_kitti.py',
                         over, pretrained)
    work = tmp / 'work'
    res = _train(cfg, work)
    return dict(tmp=tmp, cfg=cfg, kitti=kitti, work=work, log=res.stdout +
                res.stderr, ckpt=str(work / 'epoch_2.pth'))


def _check_run(work, log):
    assert 'accuracy/top1' in log
    assert "default_scope = 'mmpretrain'" in open(
        next(work.glob('*.py'))).read()
    ckpt = torch.load(work / 'epoch_2.pth', weights_only=False)
    sd = ckpt['state_dict']
    assert {'backbone.prompts', 'backbone.da_weights', 'backbone.ar_prompts',
            'head.fc.weight'} <= set(sd)
    assert not any(k.startswith('backbone.blocks.') for k in sd)


def test_train_tiny_vtab_task(vtab_run):
    _check_run(vtab_run['work'], vtab_run['log'])


def test_train_tiny_fgvc_task(tmp_path):
    make_fgvc(tmp_path / 'cub', labels=(1, 5, 7, 5, 1, 7, 7, 1))
    over = f"data_root={str(tmp_path / 'cub')!r}"
    cfg = small_config(tmp_path, 'configs/fgvc/ivpt_vitb16_cub.py', over,
                       pretrained_tiny(tmp_path))
    work = tmp_path / 'work'
    res = _train(cfg, work)
    _check_run(work, res.stdout + res.stderr)


def test_test_tool_out_and_show_dir(vtab_run, tmp_path):
    """Issue 18.6: tools/test.py on a classification config writes what
    mmpretrain's test.py writes: --out FILE.pkl, the predictions of every
    test image (their accuracy is the printed top-1); --show-dir DIR, one
    painted image per test image, DIR/<image>_0.png."""
    import pickle
    out, show = tmp_path / 'preds.pkl', tmp_path / 'show'
    res = _tool('test', vtab_run['cfg'], vtab_run['ckpt'], '--work-dir',
                str(tmp_path / 'w'), '--out', str(out), '--show-dir',
                str(show))
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
    res = _tool('test', vtab_run['cfg'], vtab_run['ckpt'], '--out',
                str(tmp_path / 'preds'))
    assert res.returncode != 0 and 'give a path ending in .pkl' in res.stderr


def test_head_of_other_classes_than_the_checkpoint(vtab_run, tmp_path):
    """Issue 18.4: a 4-class (kitti) config on the 10-class checkpoint is
    refused at load time, naming the file, the tensor, both shapes (it
    tested a random head: top-1 0.0)."""
    res = _tool('test', vtab_run['kitti'], vtab_run['ckpt'], '--work-dir',
                str(tmp_path / 'w'))
    err = res.stderr[-6000:]
    assert res.returncode != 0 and 'accuracy/top1' not in res.stdout + err
    for text in ('CheckpointMismatchError',
                 f"{vtab_run['ckpt']} does not fit the model",
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
def test_data_that_do_not_fit_the_head(vtab_run, tmp_path, opts, message):
    """Issue 18.5: a 10-class head on 4-class kitti, and a val set of
    another task than the train set (same number of classes), stop
    tools/train.py before any work with a ConfigError naming the option
    (tools/test.py with a test set of another task: test_fit_checks.py)."""
    res = _tool('train', vtab_run['cfg'], '--work-dir', str(tmp_path / 'w'),
                '--cfg-options', *opts)
    assert res.returncode != 0, res.stdout[-3000:]
    assert 'ConfigError' in res.stderr and message in res.stderr, \
        res.stderr[-3000:]
    assert not list(tmp_path.glob('w/*.pth'))
