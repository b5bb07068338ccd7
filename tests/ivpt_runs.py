"""Tiny runs the way a user makes them, shared by the test folders: the
repository's paths, one way to run a tool as a subprocess from any working
directory, generated data in the VTAB-1k / FGVC / shapes layouts, and the
small configs the tools train on (the session fixtures that train once for
the whole suite are in tests/conftest.py)."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys
import textwrap

import numpy as np
import torch
from ivpt_helpers import TINY
from PIL import Image

TESTS = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(TESTS)
FIXTURES = osp.join(TESTS, 'fixtures')
SEG_CFG = osp.join(ROOT, 'configs', 'demo', 'setr_ivpt_tiny_shapes.py')


# ------------------------------------------------------------ subprocesses
def run(cmd, cwd, **env):
    """``cmd`` as a user in a clone runs it from ``cwd``: no PYTHONPATH (the
    tools put the repository on sys.path themselves), unbuffered output,
    ``env`` added to the environment. Returns the CompletedProcess."""
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', **env)
    full_env.pop('PYTHONPATH', None)
    return subprocess.run(cmd, cwd=str(cwd), env=full_env,
                          capture_output=True, text=True, timeout=900)


def run_tool(tool, *args, cwd=ROOT, **env):
    """``python tools/<tool> args...`` from ``cwd`` (see ``run``); ``tool``
    is a path under tools/, e.g. ``'train.py'`` or
    ``'dataset_converters/vtab1k.py'``."""
    return run([sys.executable, osp.join(ROOT, 'tools', tool),
                *map(str, args)], cwd, **env)


def ok(res):
    """``res`` exited 0 (else its output tails are the failure); returns
    it."""
    assert res.returncode == 0, (res.stdout[-4000:] + res.stderr[-6000:])
    return res


# -------------------------------------------------------- classification
def _img(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)


def make_vtab(root, task='eurosat', n=6, labels=None):
    """VTAB-1k layout under ``root/task``: ``n`` black 8x8 images, label
    ``labels[i]`` (default ``i % 10``), the same list in every split file.
    Returns the task folder."""
    d = root / task
    lines = []
    for i in range(n):
        _img(d / 'images' / f'{i}.jpg')
        lines.append(f'images/{i}.jpg {labels[i] if labels else i % 10}')
    for split in ('train800', 'val200', 'train800val200', 'test'):
        (d / f'{split}.txt').write_text('\n'.join(lines) + '\n')
    return d


def make_fgvc(root, labels=(1, 5, 7, 5)):
    """FGVC json layout under ``root``: one black image per label and
    split, ``images/<label>.cls/<split>_<i>.jpg``."""
    for split in ('train', 'val', 'test'):
        ann = {}
        for i, label in enumerate(labels):
            rel = f'{label:03d}.cls/{split}_{i}.jpg'
            _img(root / 'images' / rel)
            ann[rel] = label
        (root / f'{split}.json').write_text(json.dumps(ann))


def small_config(tmp_path, base, dataset_overrides, pretrained):
    """``tmp_path/cfg.py``: the shipped config ``base`` (relative to the
    repository) with a TINY ViT (N=3, k=2 AR) on 32x32 crops, batch 4,
    2 epochs; ``dataset_overrides`` is the text of keyword arguments for
    every data set (e.g. ``"data_root='...'"``). Returns its path."""
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
                       dict(type='RandomFlip', prob=0.5,
                            direction='horizontal'),
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
    """A random TINY ViT (32x32 images, patch 8) saved as
    ``tmp_path/tiny_vit.pth``; returns the path."""
    from mmseg_ivpt.models import ViTEncoder
    path = str(tmp_path / 'tiny_vit.pth')
    torch.save(ViTEncoder(arch=TINY, img_size=32, patch_size=8).state_dict(),
               path)
    return path


# ----------------------------------------------------------- segmentation
def save_seg_vit(path, seed):
    """A random ViT of the demo config's shape (``tiny_vit``, its crop,
    patch 8), torch seed ``seed``, saved at ``path``; returns ``path``."""
    from mmengine.config import Config

    from mmseg_ivpt.models import ViTEncoder
    cfg = Config.fromfile(SEG_CFG)
    torch.manual_seed(seed)
    vit = ViTEncoder(arch=cfg.tiny_vit, img_size=cfg.crop_size, patch_size=8)
    torch.save(vit.state_dict(), path)
    return path


def make_seg_env(tmp):
    """A small shapes data set (16 train, 4 val) and a random tiny
    "pretrained" ViT of the demo config's shape (seed 0) under ``tmp``, and
    the ``--cfg-options`` that point the demo config at them with a
    4-iteration schedule (checkpoints at 2 and 4)."""
    from mmseg_ivpt.datasets import generate_shapes_dataset
    data = generate_shapes_dataset(str(tmp / 'shapes'), num_train=16,
                                   num_val=4)
    pretrained = str(save_seg_vit(tmp / 'tiny_vit.pth', seed=0))
    opts = [f'{k}_dataloader.dataset.data_root={data}'
            for k in ('train', 'val', 'test')]
    opts += [f'model.backbone.init_cfg.checkpoint={pretrained}',
             'train_dataloader.batch_size=4', 'train_cfg.max_iters=4',
             'train_cfg.val_interval=4', 'default_hooks.checkpoint.interval=2',
             'default_hooks.logger.interval=1', 'param_scheduler.0.end=4']
    return dict(tmp=tmp, data=data, pretrained=pretrained, opts=opts)


def train_seg(env, work_dir, *extra, dist=0, **env_vars):
    """tools/train.py (or tools/dist_train.sh on ``dist`` processes) on the
    demo config with ``env``'s options (``make_seg_env``), from the
    repository's root."""
    cmd = ([sys.executable, 'tools/train.py', SEG_CFG] if not dist else
           ['bash', 'tools/dist_train.sh', SEG_CFG, str(dist)])
    cmd += ['--work-dir', str(work_dir)] + list(extra)
    cmd += ['--cfg-options'] + env['opts']
    return run(cmd, ROOT, PYTHON=sys.executable, **env_vars)


def make_cityscapes(root, num_train=4, num_val=2, seed=0):
    """Generated shapes in mmseg's Cityscapes layout (what mmseg's
    tools/dataset_converters/cityscapes.py leaves):
    ``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` and
    ``gtFine/<split>/<city>/<name>_gtFine_labelTrainIds.png``, 64x128 (two
    shapes images side by side), train ids 0..3 of the 19 and 255 (the
    shapes set's unlabelled 0). Returns ``root``."""
    from mmseg_ivpt.datasets.shapes import make_sample
    rng = np.random.default_rng(seed)
    for split, n in (('train', num_train), ('val', num_val)):
        for d in ('leftImg8bit', 'gtFine'):
            (root / d / split / 'testcity').mkdir(parents=True,
                                                  exist_ok=True)
        for i in range(n):
            (a, la), (b, lb) = make_sample(rng, 64), make_sample(rng, 64)
            ids = np.concatenate([la, lb], 1).astype(np.int16) - 1
            name = f'testcity_{i:06d}_000019'
            Image.fromarray(np.concatenate([a, b], 1)).save(
                root / 'leftImg8bit' / split / 'testcity' /
                f'{name}_leftImg8bit.png')
            Image.fromarray(np.where(ids < 0, 255, ids).astype(np.uint8)
                            ).save(root / 'gtFine' / split / 'testcity' /
                                   f'{name}_gtFine_labelTrainIds.png')
    return str(root)


def free_ports(n=1):
    """``n`` distinct TCP ports that nothing listens on now, for a server a
    test starts. Not the kernel's pick (bind to port 0, then close): that
    port lies in the ephemeral range, which the kernel hands out again to
    any process that connects, and a server started seconds later (Ray
    starts dozens of processes first) may find it taken. These lie below
    the ephemeral range (``/proc/sys/net/ipv4/ip_local_port_range``) and
    above Ray's worker ports (10002-19999), where nothing is handed out
    unasked; the scan starts at an offset of this process's id so that
    parallel test runs do not probe the same ports first."""
    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    first, last = 20000, min(low, 32768)
    span = last - first
    found = []
    for i in range(span):
        port = first + (os.getpid() * 7 + i) % span
        with socket.socket() as s:
            try:
                s.bind(('', port))
            except OSError:
                continue
        found.append(port)
        if len(found) == n:
            return found
    raise RuntimeError(f'no {n} free ports in {first}-{last - 1}')
