"""The VTAB-1k / FGVC protocol: sweep, final runs over seeds, report.

    # lr x wd on train800, chosen on val200 (FGVC: train / val)
    python tools/protocol.py sweep configs/vtab/ivpt_vitb16_*.py --method ivpt
    # the chosen pair on train800val200 (FGVC: train+val), tested, 3 seeds
    python tools/protocol.py final configs/vtab/ivpt_vitb16_*.py --method ivpt
    # Table 1 (VTAB-1k) or Table 9 (FGVC) layout, ours beside the paper's
    python tools/protocol.py report --benchmark vtab --method ivpt

``--method`` picks a variant of the per-task iVPT configs (baselines and
ablations: see ``mmseg_ivpt.apis.protocol.METHODS``). Runs go through
tools/train.py (``--gpus N``: tools/dist_train.sh) into
``WORK_ROOT/<benchmark>/<method>/<task>/{sweep,final}/...``; each keeps the
config it ran. ``--dry-run`` prints the commands instead (for clusters).
"""
import argparse
import glob
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import Config, DictAction  # noqa: E402

import mmseg_ivpt  # noqa: E402,F401
from mmseg_ivpt.apis import build_model_on_meta, count_parameters  # noqa
from mmseg_ivpt.apis.protocol import (BASE_LRS, METHODS,  # noqa: E402
                                      WEIGHT_DECAYS, apply_method,
                                      benchmark_of, last_accuracy, report,
                                      run_training, set_splits,
                                      summarise_seeds, task_of)
from mmseg_ivpt.datasets import FGVC_DATASETS, VTAB_TASKS  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load(path, args):
    cfg = Config.fromfile(path)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return apply_method(cfg, args.method)


def task_dir(args, cfg):
    return osp.join(args.work_root, benchmark_of(cfg), args.method,
                    task_of(cfg))


def sweep(args):
    for path in args.configs:
        cfg = load(path, args)
        scale = cfg.train_dataloader.batch_size * max(args.gpus, 1) / 256
        base = osp.join(task_dir(args, cfg), 'sweep')
        scores = {}
        for lr in args.lrs:
            for wd in args.wds:
                run = set_splits(load(path, args), 'sweep')
                run.optim_wrapper.optimizer.lr = lr * scale
                run.optim_wrapper.optimizer.weight_decay = wd
                wdir = osp.join(base, f'lr{lr:g}_wd{wd:g}')
                cmd = run_training(run, wdir, args.gpus, args.dry_run)
                if args.dry_run:
                    print(' '.join(cmd))
                    continue
                scores[f'{lr:g},{wd:g}'] = dict(
                    lr=lr * scale, wd=wd, val_top1=last_accuracy(wdir))
        if args.dry_run:
            continue
        best = max(scores.values(), key=lambda s: s['val_top1'])
        with open(osp.join(base, 'best.json'), 'w') as f:
            json.dump(dict(best=best, all=scores), f, indent=1)
        print(f'{task_of(cfg)}: best lr {best["lr"]:g}, wd {best["wd"]:g} '
              f'(val top-1 {best["val_top1"]:.2f})')


def final(args):
    for path in args.configs:
        cfg = load(path, args)
        tdir = task_dir(args, cfg)
        if args.lr is not None:
            lr, wd = args.lr, args.wd
        else:
            best_file = osp.join(tdir, 'sweep', 'best.json')
            if not osp.isfile(best_file):
                raise SystemExit(f'{best_file} not found: run `sweep` first '
                                 f'or pass --lr and --wd')
            with open(best_file) as f:
                best = json.load(f)['best']
            lr, wd = best['lr'], best['wd']
        accs = {}
        for seed in args.seeds:
            run = load(path, args)
            run.optim_wrapper.optimizer.lr = lr
            run.optim_wrapper.optimizer.weight_decay = wd
            run.randomness = dict(seed=seed)
            wdir = osp.join(tdir, 'final', f'seed{seed}')
            cmd = run_training(run, wdir, args.gpus, args.dry_run)
            if args.dry_run:
                print(' '.join(cmd))
            else:
                accs[seed] = last_accuracy(wdir)
        if not args.dry_run:
            res = summarise_seeds(accs)
            res.update(lr=lr, wd=wd)
            with open(osp.join(tdir, 'final', 'results.json'), 'w') as f:
                json.dump(res, f, indent=1)
            print(f'{task_of(cfg)}: test top-1 {res["mean"]:.2f} ± '
                  f'{res["std"]:.2f} over seeds {res["seeds"]}')


def make_report(args):
    bench = args.benchmark
    tasks = list(VTAB_TASKS if bench == 'vtab' else FGVC_DATASETS)
    results, params = {}, {}
    for path in sorted(glob.glob(osp.join(ROOT, 'configs', bench,
                                          'ivpt_vitb16_*.py'))):
        cfg = load(path, args)
        task = task_of(cfg)
        params[task] = count_parameters(build_model_on_meta(cfg))['trainable']
        res = osp.join(args.work_root, bench, args.method, task, 'final',
                       'results.json')
        if osp.isfile(res):
            with open(res) as f:
                results[task] = json.load(f)
    print(f'# {bench.upper()} — {args.method} (ViT-B/16), top-1 %: '
          f'{len(results)}/{len(tasks)} tasks have results in '
          f'{args.work_root}')
    print(report(results, bench, args.method, params, tasks))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--method', default='ivpt', choices=list(METHODS))
    common.add_argument('--work-root', default='work_dirs/protocol')
    common.add_argument('--cfg-options', nargs='+', action=DictAction)
    runs = argparse.ArgumentParser(add_help=False)
    runs.add_argument('configs', nargs='+')
    runs.add_argument('--gpus', type=int, default=1)
    runs.add_argument('--dry-run', action='store_true')
    s = sub.add_parser('sweep', parents=[common, runs])
    s.add_argument('--lrs', type=float, nargs='+', default=list(BASE_LRS),
                   help='base learning rates (scaled by batch / 256)')
    s.add_argument('--wds', type=float, nargs='+',
                   default=list(WEIGHT_DECAYS))
    f = sub.add_parser('final', parents=[common, runs])
    f.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    f.add_argument('--lr', type=float, help='skip the sweep: this lr')
    f.add_argument('--wd', type=float, default=0.)
    r = sub.add_parser('report', parents=[common])
    r.add_argument('--benchmark', choices=['vtab', 'fgvc'], required=True)
    args = p.parse_args()
    dict(sweep=sweep, final=final, report=make_report)[args.cmd](args)


if __name__ == '__main__':
    main()
