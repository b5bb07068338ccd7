"""Classification through tools/train.py in the mmpretrain scope: a tiny
VTAB-layout task and a tiny FGVC-json task, inheriting the shipped configs
(only the model size, image size and schedule length are made small)."""
import os.path as osp
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


@pytest.mark.parametrize('bench', ['vtab', 'fgvc'])
def test_train_tiny_task(tmp_path, bench):
    if bench == 'vtab':
        make_vtab(tmp_path / 'vtab', task='eurosat', n=8)
        base = 'configs/vtab/ivpt_vitb16_eurosat.py'
        over = f"data_root={str(tmp_path / 'vtab')!r}"
    else:
        make_fgvc(tmp_path / 'cub', labels=(1, 5, 7, 5, 1, 7, 7, 1))
        base = 'configs/fgvc/ivpt_vitb16_cub.py'
        over = f"data_root={str(tmp_path / 'cub')!r}"
    cfg = small_config(tmp_path, base, over, pretrained_tiny(tmp_path))
    work = tmp_path / 'work'
    res = subprocess.run([sys.executable, 'tools/train.py', cfg,
                          '--work-dir', str(work)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    log = res.stdout + res.stderr
    assert 'accuracy/top1' in log
    assert "default_scope = 'mmpretrain'" in open(
        next(work.glob('*.py'))).read()
    ckpt = torch.load(work / 'epoch_2.pth', weights_only=False)
    sd = ckpt['state_dict']
    assert {'backbone.prompts', 'backbone.da_weights', 'backbone.ar_prompts',
            'head.fc.weight'} <= set(sd)
    assert not any(k.startswith('backbone.blocks.') for k in sd)
