"""Look at what a config's data pipeline feeds the model: mmseg's
``browse_dataset`` for this toolbox's configs, segmentation and
classification alike (mmseg 1.2.2's crashes under OpenCV 5:
docs/analysis.md).

    python tools/analysis/browse_dataset.py CONFIG --output-dir DIR \
        [--split train|val|test] [--num 20] [--cfg-options ...]

One PNG per sample, ``<index>_<image name>.png``: segmentation configs give
image | ground truth (the data set's palette, ignored pixels black) side by
side, classification configs the image with its label in the file name
(``<index>_label<k>_<class>_<image name>.png``). The image is the pipeline's
output as the model's data preprocessor receives it (after resizing,
cropping, flipping; before normalisation), converted from BGR to RGB.
"""
import argparse
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools._venv import ensure  # noqa: E402

ensure()  # the repository's .venv unless this python has the packages


def to_rgb(inputs):
    """Packed (C, H, W) BGR uint8 -> (H, W, 3) RGB."""
    import numpy as np
    img = inputs.numpy().transpose(1, 2, 0)
    return np.ascontiguousarray(img[..., ::-1]).astype(np.uint8)


def paint(seg, palette):
    """(H, W) class ids (255 = ignore) -> (H, W, 3) palette colours."""
    import numpy as np
    pal = np.asarray(palette, np.uint8)
    out = np.zeros(seg.shape + (3, ), np.uint8)
    valid = seg < len(pal)
    out[valid] = pal[seg[valid]]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('--output-dir', required=True)
    p.add_argument('--split', choices=['train', 'val', 'test'],
                   default='train')
    p.add_argument('--num', type=int, default=20,
                   help='how many samples, from the first (default 20)')
    from mmengine.config import DictAction
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args()
    if args.num < 1:
        p.error(f'--num must be >= 1, got {args.num}')

    import numpy as np
    from mmengine.registry import DATASETS, init_default_scope
    from PIL import Image

    from mmseg_ivpt.engine.config_repair import arm_annotation_checks
    from mmseg_ivpt.engine.runner import ConfigError, check_data, load_config
    args.launcher, args.work_dir, args.local_rank = 'none', None, 0
    cfg = load_config(args)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    loader = f'{args.split}_dataloader'
    try:
        arm_annotation_checks(check_data(cfg, [loader]))
    except ConfigError as e:
        raise SystemExit(f'browse_dataset: {e}')
    dataset = DATASETS.build(cfg[loader].dataset)
    os.makedirs(args.output_dir, exist_ok=True)
    classes = dataset.metainfo.get('classes') or ()
    palette = dataset.metainfo.get('palette')
    written = 0
    for i in range(min(args.num, len(dataset))):
        sample = dataset[i]
        img = to_rgb(sample['inputs'])
        ds = sample['data_samples']
        name = osp.splitext(osp.basename(ds.img_path))[0]
        if 'gt_sem_seg' in ds:
            seg = ds.gt_sem_seg.data[0].numpy().astype(np.int64)
            if palette is None:
                rng = np.random.default_rng(0)
                palette = rng.integers(0, 255, (len(classes), 3))
            sep = np.full((img.shape[0], 2, 3), 255, np.uint8)
            canvas = np.concatenate([img, sep, paint(seg, palette)], axis=1)
            out = osp.join(args.output_dir, f'{i:04d}_{name}.png')
        else:
            label = int(ds.gt_label[0])
            cls = classes[label] if label < len(classes) else str(label)
            canvas = img
            out = osp.join(args.output_dir,
                           f'{i:04d}_label{label}_{cls}_{name}.png')
        Image.fromarray(canvas).save(out)
        written += 1
    print(f'browse_dataset: {written} of {len(dataset)} {args.split} '
          f'samples written to {args.output_dir}')


if __name__ == '__main__':
    main()
