"""`make demo`: the whole segmentation pipeline on a CPU, no downloads.

1. generates the shapes data set in the ADE20K layout (data/demo/shapes),
2. writes a random tiny ViT as the "pretrained" backbone (no weights can be
   downloaded; the pipeline is the point),
3. trains iVPT (CDC + DA) with a SETR-PUP head through tools/train.py,
4. evaluates the checkpoint through tools/test.py (mIoU),
5. runs mmseg's init_model + inference_model on a validation image and writes
   image | ground truth | prediction side by side to
   work_dirs/demo/demo_result.png.

Every step is what a user types; pass --iters to train shorter or longer.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)
from tools._venv import ensure  # noqa: E402

ensure()  # the repository's .venv unless this python has the packages

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

CONFIG = osp.join(ROOT, 'configs', 'demo', 'setr_ivpt_tiny_shapes.py')


def run(cmd):
    print('+', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def chance_miou(ann_dir: str, num_classes: int) -> float:
    """mIoU of predicting the most frequent class everywhere."""
    counts = np.zeros(num_classes)
    for f in glob.glob(osp.join(ann_dir, '*.png')):
        a = np.asarray(Image.open(f)).astype(int) - 1  # reduce_zero_label
        counts += np.bincount(a[a >= 0], minlength=num_classes)
    return float(counts.max() / counts.sum() / num_classes)


def side_by_side(img_path, ann_path, pred, palette, out_path):
    img = np.asarray(Image.open(img_path).convert('RGB'))
    ann = np.asarray(Image.open(ann_path)).astype(int) - 1
    pal = np.asarray(palette, np.uint8)
    gt = np.where(ann[..., None] >= 0, pal[ann.clip(0)], 0).astype(np.uint8)
    pr = pal[pred]
    sep = np.full((img.shape[0], 2, 3), 255, np.uint8)
    canvas = np.concatenate([img, sep, gt, sep, pr], axis=1)
    Image.fromarray(canvas).resize(
        (canvas.shape[1] * 4, canvas.shape[0] * 4), Image.NEAREST
    ).save(out_path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--iters', type=int, default=600)
    p.add_argument('--work-dir', default='work_dirs/demo')
    args = p.parse_args()
    os.chdir(ROOT)

    import torch
    from mmengine.config import Config

    from mmseg_ivpt.datasets import generate_shapes_dataset
    from mmseg_ivpt.models import ViTEncoder
    cfg = Config.fromfile(CONFIG)
    generate_shapes_dataset(cfg.data_root, num_train=200, num_val=40)
    if not osp.isfile(cfg.pretrained):
        torch.manual_seed(0)
        vit = ViTEncoder(arch=cfg.tiny_vit, img_size=cfg.crop_size,
                         patch_size=8)
        torch.save(vit.state_dict(), cfg.pretrained)

    py = sys.executable
    opts = ['--cfg-options', f'train_cfg.max_iters={args.iters}',
            f'train_cfg.val_interval={args.iters}',
            f'default_hooks.checkpoint.interval={args.iters}',
            f'param_scheduler.0.end={args.iters}']
    run([py, 'tools/train.py', CONFIG, '--work-dir', args.work_dir] + opts)
    ckpt = osp.join(args.work_dir, f'iter_{args.iters}.pth')
    test_dir = osp.join(args.work_dir, 'test')
    run([py, 'tools/test.py', CONFIG, ckpt, '--work-dir', test_dir])
    metrics = sorted(glob.glob(osp.join(test_dir, '*', '*.json')))[-1]
    with open(metrics) as f:
        miou = json.load(f)['mIoU']

    from mmseg.apis import inference_model, init_model
    model = init_model(CONFIG, ckpt, device='cpu')
    name = 'shapes_000000'
    img = osp.join(cfg.data_root, 'images', 'validation', name + '.jpg')
    ann = osp.join(cfg.data_root, 'annotations', 'validation', name + '.png')
    result = inference_model(model, img)
    pred = result.pred_sem_seg.data[0].cpu().numpy()
    out_png = osp.join(args.work_dir, 'demo_result.png')
    side_by_side(img, ann, pred, model.dataset_meta['palette'], out_png)

    chance = 100 * chance_miou(
        osp.join(cfg.data_root, 'annotations', 'validation'), cfg.num_classes)
    size = osp.getsize(ckpt) / 2**20
    print(f'\nDemo done: mIoU {miou:.2f} on {cfg.num_classes} classes '
          f'(chance, always the most frequent class: {chance:.2f}); '
          f'prompt-only checkpoint {ckpt} ({size:.2f} MB); '
          f'image | ground truth | prediction: {out_png}')


if __name__ == '__main__':
    main()
