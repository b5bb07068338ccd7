"""Make VPT's FGVC layout (<out>/<folder>/{train,val,test}.json and the
images) from a data set's official archives (docs/data.md).

    python tools/dataset_converters/fgvc.py cub \
        --src ~/Downloads/cub --out data/fgvc
    python tools/dataset_converters/fgvc.py stanford_dogs \
        --src DIR --splits VPT_JSON_DIR

--src holds the official archives (or their extracted contents):
  cub             CUB_200_2011.tgz
  nabirds         nabirds.tar.gz
  oxford_flowers  102flowers.tgz, imagelabels.mat, setid.mat
  stanford_dogs   images.tar, lists.tar
  stanford_cars   car_ims.tgz + cars_annos.mat, or the devkit
                  (cars_train.tgz, cars_test.tgz, car_devkit.tgz,
                  cars_test_annos_withlabels.mat), or a class-folder mirror
--splits DIR installs VPT's own train/val/test.json after checking them;
without it the split is the official test (and val for Flowers) plus a
seeded class-stratified 10 % hold-out of train (VPT's sizes, not VPT's
exact images).
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools._venv import ensure  # noqa: E402

ensure('torch', 'mmengine', 'scipy', 'PIL')

from mmseg_ivpt.datasets.converters.common import ConversionError  # noqa
from mmseg_ivpt.datasets.converters.fgvc import (DEFAULT_SEED,  # noqa: E402
                                                 FOLDERS, convert)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 2)[2])
    parser.add_argument('name', choices=list(FOLDERS))
    parser.add_argument('--src', required=True,
                        help='folder with the official archives / files')
    parser.add_argument('--out', default='data/fgvc',
                        help='data root (default data/fgvc, as the configs)')
    parser.add_argument('--splits', default=None,
                        help="folder with VPT's train.json, val.json, "
                        'test.json')
    parser.add_argument('--seed', type=int, default=DEFAULT_SEED,
                        help='of the stratified hold-out (default 0)')
    args = parser.parse_args(argv)
    try:
        convert(args.name, args.src, args.out, args.splits, args.seed)
    except ConversionError as e:
        raise SystemExit(f'fgvc.py: error: {e}')


if __name__ == '__main__':
    main()
