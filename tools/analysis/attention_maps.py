"""Attention maps of every block and AR's selections (iVPT paper Fig. 7).

    python tools/analysis/attention_maps.py CONFIG CKPT IMAGE [IMAGE ...] \
        [--compare CONFIG2 CKPT2] [--out-dir DIR]

For each image, one PNG (``<out-dir>/<image stem>_attention.png``): per
model a row with the image as the model saw it (after the config's test
pipeline) and, for every block l, the cls token's attention over the
patches (softmax over all keys, mean over the heads: the saliency AR ranks
with), min-max normalised per panel, upsampled onto the image (nearest, one
square per patch, the 'jet' colour map blended with ``--alpha``). A model
with AR (``ar_tokens`` > 0, ``ar_mode='topk'``) gets a second row: for each
block l < L-1 the k patches AR reinforced after it at full brightness, the
rest dimmed. ``--compare`` puts a second model below the first (VPT against
iVPT, as in Fig. 7). Works for segmentation (mmseg, ``test_cfg``
``mode='whole'``) and classification (mmpretrain) configs alike, with full
or prompt-only checkpoints. The values plotted are also written to
``<stem>_attention.npz`` (``m0_maps`` (L, h, w), ``m0_rows`` (L, heads, T),
``m0_ar`` (L-1, k), ``m0_image``, ``m0_input``; ``m1_*`` for ``--compare``).

The attention comes from the backbone's own cls-row computation (the one
AR uses), recorded during the toolbox's ordinary inference
(``ViTEncoder.record_attention``).
"""
import argparse
import json
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools._venv import ensure  # noqa: E402

ensure()  # the repository's .venv unless this python has the packages

import numpy as np  # noqa: E402

GAP = 4  # white pixels between panels and between rows
LABEL = 14  # height of the text band above each row
DIM = 0.35  # brightness of the patches AR did not select


def heat_panel(image: np.ndarray, amap: np.ndarray, patch: int, scale: int,
               alpha: float) -> np.ndarray:
    """image (H, W, 3) uint8 and a patch map (h, w) -> the blended panel
    (H*scale, W*scale, 3) uint8."""
    import matplotlib
    h, w = image.shape[:2]
    lo, hi = float(amap.min()), float(amap.max())
    norm = (amap - lo) / (hi - lo) if hi > lo else np.zeros_like(amap)
    heat = matplotlib.colormaps['jet'](norm)[..., :3] * 255.
    heat = heat.repeat(patch, 0).repeat(patch, 1)[:h, :w]
    out = (1 - alpha) * image.astype(np.float64) + alpha * heat
    return upscale(np.round(out).astype(np.uint8), scale)


def ar_panel(image: np.ndarray, indices: np.ndarray, grid, patch: int,
             scale: int) -> np.ndarray:
    """The image with the patches in ``indices`` (flat, row-major over the
    grid) at full brightness and the others dimmed."""
    h, w = image.shape[:2]
    keep = np.zeros(grid[0] * grid[1], bool)
    keep[indices] = True
    keep = keep.reshape(grid).repeat(patch, 0).repeat(patch, 1)[:h, :w]
    dimmed = np.round(image.astype(np.float64) * DIM).astype(np.uint8)
    return upscale(np.where(keep[..., None], image, dimmed), scale)


def upscale(img: np.ndarray, scale: int) -> np.ndarray:
    return img.repeat(scale, 0).repeat(scale, 1)


def model_rows(name: str, cap: dict, scale: int, alpha: float):
    """[(label, [panels])] for one model: its attention row and, with AR,
    its AR row."""
    image, p = cap['image'], cap['patch_size']
    maps = cap['maps'].numpy()
    first = upscale(image, scale)
    rows = [(f'{name}: image | cls attention, blocks 1..{len(maps)}',
             [first] + [heat_panel(image, m, p, scale, alpha) for m in maps])]
    if cap['ar'] is not None:
        ar = cap['ar'].numpy()
        panels = [first] + [ar_panel(image, idx, cap['grid'], p, scale)
                            for idx in ar]
        rows.append((f'{name}: AR top-{ar.shape[1]} after blocks '
                     f'1..{len(ar)}', panels))
    return rows


def compose(rows) -> np.ndarray:
    """Rows of equally sized panels on a white canvas, a text band above
    each row."""
    from PIL import Image, ImageDraw
    ph, pw = rows[0][1][0].shape[:2]
    cols = max(len(panels) for _, panels in rows)
    width = cols * pw + (cols - 1) * GAP
    height = len(rows) * (LABEL + ph) + (len(rows) - 1) * GAP
    canvas = np.full((height, width, 3), 255, np.uint8)
    for r, (_, panels) in enumerate(rows):
        top = r * (LABEL + ph + GAP) + LABEL
        for c, panel in enumerate(panels):
            left = c * (pw + GAP)
            canvas[top:top + ph, left:left + pw] = panel
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    for r, (label, _) in enumerate(rows):
        draw.text((2, r * (LABEL + ph + GAP) + 1), label, fill=(0, 0, 0))
    return np.asarray(img)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('images', nargs='+')
    p.add_argument('--compare', nargs=2, metavar=('CONFIG2', 'CKPT2'),
                   help='a second model, drawn below the first')
    p.add_argument('--names', nargs='+',
                   help='row labels (default: the config file names)')
    p.add_argument('--out-dir', default='work_dirs/attention_maps')
    p.add_argument('--device', default='cpu')
    p.add_argument('--scale', type=int, default=4,
                   help='integer upscaling of every panel (default 4)')
    p.add_argument('--alpha', type=float, default=0.5,
                   help='weight of the heat map over the image (0..1)')
    from mmengine.config import DictAction
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='overrides for CONFIG (and CONFIG2)')
    args = p.parse_args()
    if args.scale < 1:
        p.error(f'--scale must be >= 1, got {args.scale}')
    if not 0 <= args.alpha <= 1:
        p.error(f'--alpha must be in [0, 1], got {args.alpha}')
    for path in [args.config, args.checkpoint] + args.images + list(
            args.compare or []):
        if not osp.isfile(path):
            p.error(f'{path}: no such file')
    return args


def main():
    args = parse_args()
    from mmseg_ivpt.analysis.attention import capture_attention
    from mmseg_ivpt.apis.inference import load_model
    from mmseg_ivpt.engine.config import read_config
    specs = [(args.config, args.checkpoint)]
    if args.compare:
        specs.append(tuple(args.compare))
    names = args.names or [osp.splitext(osp.basename(c))[0]
                           for c, _ in specs]
    if len(names) != len(specs):
        raise SystemExit(f'--names: {len(specs)} names needed, got '
                         f'{len(names)}')
    models = []
    for config, ckpt in specs:
        cfg = read_config(config, args.cfg_options)  # as tools/train.py
        models.append(load_model(cfg, ckpt, args.device))
    os.makedirs(args.out_dir, exist_ok=True)
    for img_path in args.images:
        rows, arrays, meta = [], {}, []
        for i, ((model, infer), name) in enumerate(zip(models, names)):
            cap = capture_attention(model, infer, img_path)
            rows += model_rows(name, cap, args.scale, args.alpha)
            for key in ('maps', 'rows', 'input', 'image', 'ar'):
                if cap[key] is not None:
                    arrays[f'm{i}_{key}'] = np.asarray(cap[key])
            meta.append(dict(name=name, grid=list(cap['grid']),
                             patch_size=cap['patch_size'],
                             ar=cap['ar'] is not None))
        stem = osp.join(args.out_dir, osp.splitext(
            osp.basename(img_path))[0] + '_attention')
        from PIL import Image
        Image.fromarray(compose(rows)).save(stem + '.png')
        np.savez(stem + '.npz', meta=json.dumps(dict(
            models=meta, rows=[label for label, _ in rows],
            scale=args.scale, alpha=args.alpha, gap=GAP, label=LABEL,
            dim=DIM)), **arrays)
        print(f'{img_path}: {stem}.png ({len(rows)} rows)')


if __name__ == '__main__':
    main()
