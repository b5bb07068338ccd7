"""Convert VTAB-1k's 19 tasks from TensorFlow Datasets into the layout the
configs read (docs/data.md), without tensorflow.

    python tools/dataset_converters/vtab1k.py \
        --tfds-dir ~/tensorflow_datasets --out data/vtab-1k \
        [--tasks cifar kitti ...] [--format png|jpg]

Reads the data sets as TFDS prepared them (array_record or tfrecord), with
google-research/task_adaptation's split strings, label functions and image
pre-processing (mmseg_ivpt.datasets.converters.vtab_tasks). Writes
<out>/<task>/images/{train800,val200,test}/NNNNNN.png, the four txt files
and manifest.json. Finished tasks are skipped; interrupted ones resume.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools._venv import ensure  # noqa: E402

ensure('torch', 'mmengine', 'mmpretrain', 'tensorflow_datasets', 'PIL', 'tqdm')

from mmseg_ivpt.datasets.converters.common import ConversionError  # noqa
from mmseg_ivpt.datasets.converters.vtab import convert  # noqa: E402
from mmseg_ivpt.datasets.converters.vtab_tasks import (  # noqa: E402
    TRAIN_SIZE, VAL_SIZE, VTAB_SOURCES)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--tfds-dir', required=True,
                        help="TFDS's data_dir (holds <builder>/<version>/)")
    parser.add_argument('--out', required=True, help='e.g. data/vtab-1k')
    parser.add_argument('--tasks', nargs='+', default=None,
                        choices=list(VTAB_SOURCES), metavar='TASK',
                        help='default: all 19: ' + ' '.join(VTAB_SOURCES))
    parser.add_argument('--format', default='png', choices=['png', 'jpg'],
                        help='png (default, lossless: the pixels VPT reads '
                        'from TFDS) or jpg (as the community folders)')
    parser.add_argument('--sizes', nargs=2, type=int, metavar=('TRAIN', 'VAL'),
                        default=[TRAIN_SIZE, VAL_SIZE],
                        help='train800 / val200 sizes (default 800 200, '
                        'VTAB-1k; others only for smoke tests, recorded in '
                        'the manifest and reported by verify.py)')
    args = parser.parse_args(argv)
    try:
        done = convert(args.tfds_dir, args.out, args.tasks, args.format,
                       tuple(args.sizes))
    except ConversionError as e:
        raise SystemExit(f'vtab1k.py: error: {e}')
    n = sum(v == 'converted' for v in done.values())
    print(f'vtab1k.py: {n} task(s) converted, {len(done) - n} already done, '
          f'in {args.out}')


if __name__ == '__main__':
    main()
