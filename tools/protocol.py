"""The VTAB-1k / FGVC protocol: sweep, final runs over seeds, report.

    # lr x wd on train800, chosen on val200 (FGVC: train / val)
    python tools/protocol.py sweep configs/vtab/ivpt_vitb16_*.py --method ivpt
    # the chosen pair on train800val200 (FGVC: train), tested, VPT's 5 seeds
    python tools/protocol.py final configs/vtab/ivpt_vitb16_*.py --method ivpt
    # Table 1 / 9 / 6 / 11 / 12 layout, ours beside the paper's
    python tools/protocol.py report --benchmark vtab --method ivpt
    # other backbones (Table 13): their task configs, --backbone in report
    python tools/protocol.py sweep configs/vtab/vitl16/*.py --method ivpt
    python tools/protocol.py report --benchmark vtab --backbone vitl16

``--method`` picks a variant of the per-task iVPT configs with its own
recipe (``mmseg_ivpt.protocol.METHODS``, docs/reproduction.md).
``--cfg-options`` are applied after the method, so they always win. A
config's benchmark and backbone are its place in the table of task configs
(``mmseg_ivpt.protocol.BACKBONE_CONFIGS``; a config inheriting from one of
them counts as that one). Runs go through ``python -m
mmseg_ivpt.engine.train`` (``--gpus N``: under ``torch.distributed.run``,
with tools/dist_train.sh's NNODES, NODE_RANK, MASTER_ADDR, PORT) into
``WORK_ROOT/<benchmark>/<method>[-<backbone>]/<task>/{sweep/lr<base lr>_wd<wd>,final/seed<s>}``
(``-<backbone>`` for ``vitl16``, ``vith14``, ``swinb``);
each keeps the config it ran and, once finished, a ``result.json``. Running
the same command again skips finished runs and resumes interrupted ones
from their last checkpoint. ``--dry-run`` prints the grid and the commands
and writes nothing. The paper's numbers of ``report`` are
``configs/{vtab,fgvc}/metafile.yml``. Each error (a method that does not fit
a config, a config outside the table, a work dir of another config, an
unreadable metafile, a failed run) is one line that names its file.
"""
import argparse
import json
import os.path as osp
import subprocess
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402

import mmseg_ivpt  # noqa: E402,F401
from mmseg_ivpt.analysis.params import build_model_on_meta, count_parameters  # noqa
from mmseg_ivpt.protocol import (BACKBONE_CONFIGS, METHODS,  # noqa: E402
                                 VPT_SEEDS, Progress, ProtocolError,
                                 benchmark_tasks, config_digest,
                                 finished_result, load_task_config, locate,
                                 lr_grid, pick_best, recipe_of, report,
                                 run_training, set_splits, summarise_seeds,
                                 task_configs, task_of, timed, train_command)


def load(path, args):
    if not osp.isfile(path):
        raise SystemExit(f'protocol.py: {path}: no such config')
    return load_task_config(path, args.method, args.cfg_options)


def method_dir(method, backbone):
    return method if backbone == 'vitb16' else f'{method}-{backbone}'


def task_dir(args, cfg):
    where = locate(cfg)
    return osp.join(args.work_root, where.benchmark,
                    method_dir(args.method, where.backbone),
                    task_of(cfg, where.benchmark))


def run_or_skip(cfg, wdir, args, progress, what):
    """Train unless a finished run of this config is there; returns top-1
    (None in a dry run)."""
    if args.dry_run:
        print('  ' + ' '.join(train_command(osp.join(wdir, 'config.py'),
                                            wdir, args.gpus)))
        return None
    done = finished_result(wdir, config_digest(cfg))
    if done is not None:
        progress.update(what, f'top-1 {done:.2f}', None)
        return done
    top1, secs = timed(run_training, cfg, wdir, args.gpus)
    progress.update(what, f'top-1 {top1:.2f}', secs)
    return top1


def describe(cfg, method):
    r = recipe_of(method)
    opt = cfg.optim_wrapper.optimizer
    return (f'{method}: {opt.type}, batch {cfg.train_dataloader.batch_size}, '
            f'{r["warmup_epochs"]} warm-up epochs of '
            f'{cfg.train_cfg.max_epochs}, lr '
            f'{"base x batch / 256" if r["scale_lr"] else "as given"}')


def sweep(args):
    jobs = []
    for path in args.configs:
        cfg = load(path, args)
        grid = lr_grid(cfg, args.method, args.lrs, args.wds, args.gpus)
        jobs.append((path, cfg, grid))
    progress = Progress(sum(len(g) for _, _, g in jobs))
    for path, cfg, grid in jobs:
        task, base = task_of(cfg), osp.join(task_dir(args, cfg), 'sweep')
        if args.dry_run:
            print(f'# {task}: {len(grid)} runs; {describe(cfg, args.method)}')
            print('# base lr, wd -> lr: ' + ', '.join(
                f'{b:g},{wd:g}->{lr:g}' for b, wd, lr in grid))
        scores = {}
        for base_lr, wd, lr in grid:
            run = set_splits(load(path, args), 'sweep')
            run.optim_wrapper.optimizer.lr = lr
            run.optim_wrapper.optimizer.weight_decay = wd
            name = f'lr{base_lr:g}_wd{wd:g}'
            top1 = run_or_skip(run, osp.join(base, name), args, progress,
                               f'{task} {name} (lr {lr:g})')
            scores[name] = dict(base_lr=base_lr, lr=lr, wd=wd,
                                val_top1=top1, run=name)
        if args.dry_run:
            continue
        best = pick_best(scores)
        with open(osp.join(base, 'best.json'), 'w') as f:
            json.dump(dict(best=best, all=scores), f, indent=1)
        print(f'{task}: best {best["run"]} (lr {best["lr"]:g}; val top-1 '
              f'{best["val_top1"]:.2f})')


def final(args):
    jobs = []
    for path in args.configs:
        cfg = load(path, args)
        tdir = task_dir(args, cfg)
        if args.lr is not None:
            lr, wd, name = args.lr, args.wd, 'given'
        else:
            best_file = osp.join(tdir, 'sweep', 'best.json')
            if not osp.isfile(best_file):
                if not args.dry_run:
                    raise SystemExit(f'protocol.py: {best_file} not found: '
                                     'run `sweep` first or pass --lr and '
                                     '--wd')
                lr, wd, name = None, None, 'best of the sweep'
            else:
                with open(best_file) as f:
                    best = json.load(f)['best']
                lr, wd, name = best['lr'], best['wd'], best['run']
        jobs.append((path, cfg, tdir, lr, wd, name))
    progress = Progress(len(jobs) * len(args.seeds))
    for path, cfg, tdir, lr, wd, name in jobs:
        task = task_of(cfg)
        if args.dry_run:
            print(f'# {task}: {name} (lr {lr}, wd {wd}), seeds {args.seeds};'
                  f' {describe(cfg, args.method)}')
        accs = {}
        for seed in args.seeds:
            run = set_splits(load(path, args), 'final')
            if lr is not None:
                run.optim_wrapper.optimizer.lr = lr
                run.optim_wrapper.optimizer.weight_decay = wd
            run.randomness = dict(seed=seed)
            wdir = osp.join(tdir, 'final', f'seed{seed}')
            accs[seed] = run_or_skip(run, wdir, args, progress,
                                     f'{task} seed {seed} ({name})')
        if args.dry_run:
            continue
        res = summarise_seeds(accs)
        res.update(lr=lr, wd=wd, run=name)
        with open(osp.join(tdir, 'final', 'results.json'), 'w') as f:
            json.dump(res, f, indent=1)
        print(f'{task}: test top-1 {res["mean"]:.2f} ± {res["std"]:.2f} '
              f'over seeds {res["seeds"]}')


def make_report(args):
    bench, backbone = args.benchmark, args.backbone
    tasks = list(benchmark_tasks(bench))
    if bench not in BACKBONE_CONFIGS[backbone]:
        raise SystemExit(f'protocol.py: --backbone {backbone} has no {bench} '
                         f'configs; {bench} has: ' + ', '.join(
                             b for b, p in BACKBONE_CONFIGS.items()
                             if bench in p))
    results, params = {}, {}
    for path in task_configs(backbone, bench):
        cfg = load(path, args)
        task = task_of(cfg, bench)
        params[task] = count_parameters(build_model_on_meta(cfg))['trainable']
        res = osp.join(args.work_root, bench,
                       method_dir(args.method, backbone), task, 'final',
                       'results.json')
        if osp.isfile(res):
            with open(res) as f:
                results[task] = json.load(f)
    print(f'# {bench.upper()} — {args.method} ({backbone}), top-1 %: '
          f'{len(results)}/{len(tasks)} tasks have results in '
          f'{args.work_root}')
    print(report(results, bench, args.method, params, tasks, backbone))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--method', default='ivpt', choices=list(METHODS))
    common.add_argument('--work-root', default='work_dirs/protocol')
    common.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='applied after the method: they always win')
    runs = argparse.ArgumentParser(add_help=False)
    runs.add_argument('configs', nargs='+')
    runs.add_argument('--gpus', type=int, default=1)
    runs.add_argument('--dry-run', action='store_true',
                      help='print the grid and the commands; write nothing')
    s = sub.add_parser('sweep', parents=[common, runs])
    s.add_argument('--lrs', type=float, nargs='+',
                   help="base learning rates (default: the method's grid)")
    s.add_argument('--wds', type=float, nargs='+',
                   help="weight decays (default: the method's grid)")
    f = sub.add_parser('final', parents=[common, runs])
    f.add_argument('--seeds', type=int, nargs='+', default=list(VPT_SEEDS))
    f.add_argument('--lr', type=float,
                   help='skip the sweep: this lr (as the optimizer gets it)')
    f.add_argument('--wd', type=float, default=0.)
    r = sub.add_parser('report', parents=[common])
    r.add_argument('--benchmark', choices=['vtab', 'fgvc'], required=True)
    r.add_argument('--backbone', choices=list(BACKBONE_CONFIGS),
                   default='vitb16', help='whose task configs and paper '
                   'numbers (Table 13 / 5 for vitl16, vith14, swinb)')
    args = p.parse_args(argv)
    try:
        dict(sweep=sweep, final=final, report=make_report)[args.cmd](args)
    except ProtocolError as e:  # each kind says what is wrong, with its file
        raise SystemExit(f'protocol.py: {e}')
    except subprocess.CalledProcessError as e:  # its output is above
        raise SystemExit(f'protocol.py: a training run failed (exit '
                         f'{e.returncode}): {" ".join(e.cmd)}')


if __name__ == '__main__':
    main()
