"""A generated segmentation data set in the ADE20K layout (no downloads).

Coloured shapes (discs, squares, triangles) on textured backgrounds::

    <root>/images/{training,validation}/shapes_000000.jpg
    <root>/annotations/{training,validation}/shapes_000000.png

As in ADE20K, annotation value 0 means "not labelled" and classes start at
1 (``reduce_zero_label=True`` maps them to 0..K-1 and 0 to 255), so the same
pipeline serves both. Used by ``make demo`` and the tests.
"""
import os
import os.path as osp
from typing import Tuple

import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS
from PIL import Image

CLASSES = ('background', 'disc', 'square', 'triangle')
PALETTE = [[40, 40, 40], [220, 60, 60], [60, 200, 60], [60, 90, 230]]
# base colour of each shape class; every shape gets a jittered version
_SHAPE_RGB = np.array([[200, 70, 60], [70, 190, 80], [70, 90, 210]], float)


@DATASETS.register_module()
class ShapesSegDataset(BaseSegDataset):
    """The generated shapes data set (ADE20K layout, 4 classes)."""

    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self, img_suffix='.jpg', seg_map_suffix='.png',
                 reduce_zero_label=True, **kwargs):
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Stripes of random frequency and colours, plus noise: (H, W, 3)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    theta = rng.uniform(0, np.pi)
    freq = rng.uniform(0.15, 0.6)
    wave = 0.5 + 0.5 * np.sin(freq * (xx * np.cos(theta) +
                                      yy * np.sin(theta)))
    c1, c2 = rng.uniform(60, 200, size=(2, 3))
    img = wave[..., None] * c1 + (1 - wave[..., None]) * c2
    return img + rng.normal(0, 12, size=img.shape)


def _shape_mask(rng: np.random.Generator, size: int, kind: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    r = rng.uniform(size * 0.12, size * 0.25)
    cy, cx = rng.uniform(r, size - r, size=2)
    if kind == 0:  # disc
        return (yy - cy)**2 + (xx - cx)**2 <= r * r
    if kind == 1:  # square
        return (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85)
    # triangle pointing up: below the apex, inside the two slanted sides
    top, bottom = cy - r, cy + r
    half = (yy - top) / (2 * r) * r
    return (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= half)


def make_sample(rng: np.random.Generator,
                size: int = 64) -> Tuple[np.ndarray, np.ndarray]:
    """One image (H, W, 3) uint8 and its annotation (H, W) uint8, with
    ADE20K's convention (0 unlabelled, 1 background, 2.. the shapes)."""
    img = _background(rng, size)
    ann = np.ones((size, size), np.uint8)
    for _ in range(rng.integers(1, 4)):
        kind = int(rng.integers(0, 3))
        mask = _shape_mask(rng, size, kind)
        colour = _SHAPE_RGB[kind] + rng.normal(0, 20, size=3)
        img[mask] = colour + rng.normal(0, 10, size=(mask.sum(), 3))
        ann[mask] = kind + 2
    return np.clip(img, 0, 255).astype(np.uint8), ann


def generate_shapes_dataset(root: str, num_train: int = 200,
                            num_val: int = 40, size: int = 64,
                            seed: int = 0) -> str:
    """Write the data set under ``root`` (skipped when it is complete);
    returns ``root``."""
    rng = np.random.default_rng(seed)
    for split, n in (('training', num_train), ('validation', num_val)):
        img_dir = osp.join(root, 'images', split)
        ann_dir = osp.join(root, 'annotations', split)
        if osp.isdir(ann_dir) and len(os.listdir(ann_dir)) == n:
            continue
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        for i in range(n):
            img, ann = make_sample(rng, size)
            name = f'shapes_{i:06d}'
            Image.fromarray(img).save(osp.join(img_dir, name + '.jpg'),
                                      quality=95)
            Image.fromarray(ann).save(osp.join(ann_dir, name + '.png'))
    return root
