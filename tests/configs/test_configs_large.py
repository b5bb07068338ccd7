"""The ViT-L/16 and ViT-H/14 VTAB-1k configs (iVPT Table 5 / Table 13):
every task builds on the meta device with the trainable parameters of the
method's formula, a frozen encoder as large as timm's ViT of that size, the
ViT-B/16 task's N, k, classes and task, and the ViT-B/16 recipe otherwise."""
import glob
import os.path as osp
from functools import lru_cache

import pytest
import timm
import torch
from ivpt_runs import ROOT
from mmengine.config import Config

from mmseg_ivpt.analysis.params import build_model_on_meta, count_parameters

VTAB = osp.join(ROOT, 'configs', 'vtab')
#: name: (arch, L, D, heads, patch, pretrained file)
ARCHS = {
    'vitl16': ('l', 24, 1024, 16, 16, 'pretrain/vit-large-p16_in21k.pth'),
    'vith14': ('h', 32, 1280, 16, 14, 'pretrain/vit-huge-p14_in21k.pth'),
}


@lru_cache(maxsize=None)
def timm_encoder_size(depth, dim, heads, patch):
    """Parameters of timm's ViT of that size at 224 without a head."""
    with torch.device('meta'):
        t = timm.models.VisionTransformer(
            img_size=224, patch_size=patch, embed_dim=dim, depth=depth,
            num_heads=heads, num_classes=0)
    return sum(p.numel() for p in t.parameters())


@lru_cache(maxsize=None)
def load(path):
    return Config.fromfile(path)


def _task_files(name):
    return sorted(glob.glob(osp.join(VTAB, name, f'ivpt_{name}_*.py')))


def test_every_vitb_task_has_large_configs():
    tasks = sorted(osp.basename(p)[len('ivpt_vitb16_'):]
                   for p in glob.glob(osp.join(VTAB, 'ivpt_vitb16_*.py')))
    assert len(tasks) == 19
    for name in ARCHS:
        assert [osp.basename(p)[len(f'ivpt_{name}_'):]
                for p in _task_files(name)] == tasks


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(ARCHS))
def test_large_vtab_configs_build_with_their_parameters(name):
    arch, L, D, heads, patch, pretrained = ARCHS[name]
    encoder = timm_encoder_size(L, D, heads, patch)
    M = (224 // patch) ** 2
    for path in _task_files(name):
        cfg = Config.fromfile(path)
        task = osp.basename(path)[len(f'ivpt_{name}_'):-3]
        ref = load(osp.join(VTAB, f'ivpt_vitb16_{task}.py'))
        b, h = cfg.model.backbone, cfg.model.head
        # the ViT-B/16 task: N, k, classes, data
        assert (b.num_prompts, b.ar_tokens, h.num_classes) == (
            ref.model.backbone.num_prompts, ref.model.backbone.ar_tokens,
            ref.model.head.num_classes), path
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            assert cfg[key].dataset.task == task == ref[key].dataset.task
        assert cfg.data_preprocessor.num_classes == h.num_classes
        # the ViT-B/16 recipe otherwise
        for key in ('optim_wrapper', 'param_scheduler', 'train_cfg',
                    'train_pipeline', 'test_pipeline', 'randomness'):
            assert cfg[key] == ref[key], (path, key)
        assert (b.arch, b.patch_size, b.img_size, h.in_channels) == (
            arch, patch, 224, D)
        assert b.init_cfg.checkpoint == cfg.pretrained == pretrained
        assert b.ar_tokens <= M, (path, 'AR needs k <= M')
        counts = count_parameters(build_model_on_meta(cfg))
        n, k, c = b.num_prompts, b.ar_tokens, h.num_classes
        # CDC L N D, DA (L-1) N^2, AR (L-1) k D, head (D + 1) C
        assert counts['trainable'] == (L * n * D + (L - 1) * n * n +
                                       (L - 1) * k * D + (D + 1) * c), path
        assert counts['head.trainable'] == (D + 1) * c
        frozen = counts['backbone.total'] - counts['backbone.trainable']
        assert frozen == encoder, path


def test_encoder_sizes_match_the_paper():
    """Table 18: ViT-H/14 630M (630,764,800); ViT-L/16 is 303M in timm
    (303,301,632; the paper's table says 307M)."""
    assert timm_encoder_size(32, 1280, 16, 14) == 630_764_800
    assert timm_encoder_size(24, 1024, 16, 16) == 303_301_632
