"""Accuracy / mIoU under Gaussian input noise (iVPT paper Figs. 4 and 6).

    python tools/analysis/noise_robustness.py CONFIG CKPT [CONFIG CKPT ...] \
        --rates 0 0.1 0.2 0.3 0.4 0.5 [--labels CDC EXPRESS] \
        [--out-dir DIR] [--seed 0] [--metric NAME] [--cfg-options ...]

Each (config, checkpoint) pair -- classification (mmpretrain) or
segmentation (mmseg), full or prompt-only checkpoint -- is tested on its
config's test split once per rate, the same way as ``tools/test.py``, with
Gaussian noise of std ``rate`` added to the normalised network input (after
the config's test pipeline and data preprocessor; docs/robustness.md says
why and what that is in pixel units). The noise is seeded (``--seed``): the
same images get the same draws at every rate and for every model. Rate 0 is
exactly ``tools/test.py``'s result.

Writes ``<out-dir>/noise_robustness.csv`` (model, rate, metric, value,
config, checkpoint) and ``<out-dir>/noise_robustness.png`` (metric against
rate, one line per model). The metric is ``accuracy/top1``
(classification) or ``mIoU`` (segmentation) unless ``--metric`` names
another key of the evaluator's results.
"""
import argparse
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools._venv import ensure  # noqa: E402

ensure()  # the repository's .venv unless this python has the packages

from mmseg_ivpt.analysis.robustness import (  # noqa: E402
    evaluate_under_noise,
    model_labels,
    plot,
    write_csv,
)
from mmseg_ivpt.engine.runner import build_runner, load_config  # noqa: E402


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Test models under Gaussian input noise (iVPT Figs. 4, 6)')
    parser.add_argument('models', nargs='+', metavar='CONFIG CKPT',
                        help='pairs of config file and checkpoint')
    parser.add_argument('--rates', type=float, nargs='+',
                        default=[0., .1, .2, .3, .4, .5],
                        help='noise rates: std of the noise on the '
                        'normalised input (default 0 0.1 ... 0.5)')
    parser.add_argument('--labels', nargs='+',
                        help='one name per model for the CSV and the plot '
                        '(default: the config names)')
    parser.add_argument('--out-dir', default='work_dirs/noise_robustness',
                        help='where the CSV, the PNG and the test logs go')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the noise (default 0)')
    parser.add_argument('--metric',
                        help="evaluator key to report (default "
                        "'accuracy/top1', else 'mIoU')")
    parser.add_argument('--title', default='', help='title of the plot')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='settings merged into every config (xxx=yyy), e.g. '
        'test_dataloader.dataset.data_root=PATH')
    args = parser.parse_args(argv)
    if len(args.models) % 2:
        parser.error(f'models: expected pairs CONFIG CKPT, got '
                     f'{len(args.models)} paths: {args.models}')
    args.pairs = list(zip(args.models[::2], args.models[1::2]))
    for cfg, ckpt in args.pairs:
        if not osp.isfile(cfg):
            parser.error(f'config {cfg!r} not found')
        if not osp.isfile(ckpt):
            parser.error(f'checkpoint {ckpt!r} not found')
    if any(not r >= 0 for r in args.rates):
        parser.error(f'--rates must all be >= 0, got {args.rates}')
    try:
        args.names = model_labels([c for c, _ in args.pairs], args.labels)
    except ValueError as e:
        parser.error(str(e))
    return args


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    rows = []
    for i, ((config, ckpt), name) in enumerate(zip(args.pairs, args.names)):
        work_dir = osp.join(args.out_dir, 'work',
                            f'{i}_{name}'.replace('/', '_'))
        cfg = load_config(argparse.Namespace(
            config=config, cfg_options=args.cfg_options, work_dir=work_dir,
            launcher='none', local_rank=0))
        cfg.load_from = ckpt
        cfg.experiment_name = f'noise_robustness_{i}'  # one runner each
        runner = build_runner(cfg, 'test')
        for r in evaluate_under_noise(runner, args.rates, args.seed,
                                      args.metric):
            rows.append(dict(r, model=name, config=config, checkpoint=ckpt))
            print(f'{name}: rate {r["rate"]:g}: {r["metric"]} = '
                  f'{r["value"]:.4f}', flush=True)
    csv_path = osp.join(args.out_dir, 'noise_robustness.csv')
    png_path = osp.join(args.out_dir, 'noise_robustness.png')
    write_csv(csv_path, rows)
    plot(png_path, rows, args.title)
    print(f'wrote {csv_path} and {png_path}')


if __name__ == '__main__':
    main()
