"""Check a VTAB-1k or FGVC data folder (converted here or obtained
elsewhere): images exist and decode, labels in range, counts as the iVPT
paper's Table 17, no image in both training and test.

    python tools/dataset_converters/verify.py data/vtab-1k
    python tools/dataset_converters/verify.py data/fgvc/CUB_200_2011

One line per problem (file and line); exit status 1 if there is any.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools._venv import ensure  # noqa: E402

ensure('torch', 'mmengine', 'mmpretrain', 'PIL')

from mmseg_ivpt.datasets.converters.verify import verify  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('root', help='a data root (data/vtab-1k, data/fgvc) '
                        'or one task / data set folder')
    parser.add_argument('--no-counts', action='store_true',
                        help='do not compare the counts with Table 17 (a '
                        'folder made with other --sizes)')
    args = parser.parse_args(argv)
    found, problems = verify(args.root, counts=not args.no_counts)
    for p in problems:
        print(p)
    names = ', '.join(n for _, n, _ in found) or 'nothing'
    print(f'verify.py: {len(problems)} problem(s) in {args.root} '
          f'(checked: {names})', file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == '__main__':
    main()
