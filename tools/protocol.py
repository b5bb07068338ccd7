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
``--cfg-options`` are applied after the method, so they always win, and the
way tools/train.py applies them (``arch`` presets, ``pretrained=``,
``data_root=``). A config's benchmark and backbone are its place in the
table of task configs (``mmseg_ivpt.protocol.BACKBONE_CONFIGS``; a config
inheriting from one of them counts as that one). The config's batch is the
total batch, as VPT's ``DATA.BATCH_SIZE``: the lr is base x batch / 256, and
``--gpus N`` splits the batch over N processes. Runs go through ``python -m
mmseg_ivpt.engine.train`` (``--gpus N``: under ``torch.distributed.run``,
with tools/dist_train.sh's NNODES, NODE_RANK, MASTER_ADDR, PORT) into
``WORK_ROOT/<benchmark>/<method>[-<backbone>]/<task>/{sweep/lr<base lr>_wd<wd>,final/seed<s>}``
(``-<backbone>`` for ``vitl16``, ``vith14``, ``swinb``);
each keeps the config it ran and, once finished, a ``result.json`` that
records what it was (lr, wd, batch, GPUs, the options). Running the same
command again skips finished runs and resumes interrupted ones from their
last checkpoint. ``sweep`` keeps the best of every finished run of the
folder's grid (earlier sweeps of the same config included); ``final``
scales that base lr to its own batch. ``--dry-run`` prints the grid and the
commands and writes nothing. The paper's numbers of ``report`` are
``configs/{vtab,fgvc}/metafile.yml``; a row whose recipe is not the paper's
is marked, with a note saying how. Each error (a method that does not fit a
config, a config outside the table, a batch --gpus does not divide, an
option that cannot be applied, a work dir of another config, an unreadable
metafile, a failed run) is one line that names its file.
"""
import argparse
import json
import math
import os.path as osp
import subprocess
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from tools._venv import ensure  # noqa: E402
ensure()  # the repository's .venv unless this python has the packages

from mmengine.config import DictAction  # noqa: E402

import mmseg_ivpt  # noqa: E402,F401
from mmseg_ivpt.analysis.params import build_model_on_meta, count_parameters  # noqa
from mmseg_ivpt.engine.checks import ConfigError  # noqa: E402
from mmseg_ivpt.protocol import (BACKBONE_CONFIGS, METHODS,  # noqa: E402
                                 VPT_SEEDS, Progress, ProtocolError,
                                 benchmark_tasks, config_digest,
                                 finished_result, finished_runs, grid_digest,
                                 load_task_config, locate, lr_grid,
                                 method_grid, pick_best, recipe_of, report,
                                 run_training, scaled_lr, set_splits,
                                 split_batch, summarise_seeds, task_configs,
                                 task_of, timed, train_command)


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


def run_or_skip(cfg, wdir, args, progress, what, record):
    """Train unless a finished run of this config is there; returns top-1
    (None in a dry run). ``record``: what the run is, for its
    ``result.json``."""
    if args.dry_run:
        print('  ' + ' '.join(train_command(osp.join(wdir, 'config.py'),
                                            wdir, args.gpus)))
        return None
    done = finished_result(wdir, config_digest(cfg))
    if done is not None:
        progress.update(what, f'top-1 {done:.2f}', None)
        return done
    top1, secs = timed(run_training, cfg, wdir, args.gpus, record)
    progress.update(what, f'top-1 {top1:.2f}', secs)
    return top1


def run_record(args, path, cfg, **what):
    """What a run is, as its ``result.json`` (and the task's summaries)
    record it: ``what`` (lr, wd, seed...), the method, the config given and
    its task config, the user's ``--cfg-options``, the total batch and the
    GPUs it was split over."""
    return dict(what, method=args.method, config=osp.realpath(path),
                task_config=locate(cfg).task_config,
                cfg_options=dict(args.cfg_options or {}),
                batch=cfg.train_dataloader.batch_size, gpus=args.gpus)


def describe(cfg, method, gpus):
    r = recipe_of(method)
    opt = cfg.optim_wrapper.optimizer
    batch = cfg.train_dataloader.batch_size
    split = f' ({batch // gpus} per GPU x {gpus})' if gpus > 1 else ''
    return (f'{method}: {opt.type}, batch {batch}{split}, '
            f'{r["warmup_epochs"]} warm-up epochs of '
            f'{cfg.train_cfg.max_epochs}, lr '
            f'{"base x batch / 256" if r["scale_lr"] else "as given"}')


def load_runs(args):
    """(path, config) of every config given, each checked before any run
    (its method, its place in the table, its batch against --gpus)."""
    jobs = []
    for path in args.configs:
        cfg = load(path, args)
        split_batch(cfg, args.gpus)
        jobs.append((path, cfg))
    return jobs


def sweep(args):
    jobs = [(path, cfg, lr_grid(cfg, args.method, args.lrs, args.wds))
            for path, cfg in load_runs(args)]
    progress = Progress(sum(len(g) for _, _, g in jobs))
    for path, cfg, grid in jobs:
        task, base = task_of(cfg), osp.join(task_dir(args, cfg), 'sweep')
        if args.dry_run:
            print(f'# {task}: {len(grid)} runs; '
                  f'{describe(cfg, args.method, args.gpus)}')
            print('# base lr, wd -> lr: ' + ', '.join(
                f'{b:g},{wd:g}->{lr:g}' for b, wd, lr in grid))
        ran, family = {}, None
        for base_lr, wd, lr in grid:
            run = set_splits(load(path, args), 'sweep')
            run.optim_wrapper.optimizer.lr = lr
            run.optim_wrapper.optimizer.weight_decay = wd
            family = grid_digest(run)
            name = f'lr{base_lr:g}_wd{wd:g}'
            top1 = run_or_skip(run, osp.join(base, name), args, progress,
                               f'{task} {name} (lr {lr:g})',
                               run_record(args, path, run, base_lr=base_lr,
                                          lr=lr, wd=wd, grid_digest=family))
            ran[name] = dict(base_lr=base_lr, lr=lr, wd=wd, val_top1=top1,
                             run=name)
        if not args.dry_run:
            write_best(args, path, cfg, task, base, family, ran)


def write_best(args, path, cfg, task, base, family, ran):
    """``best.json``: the best of every finished run of this grid in the
    folder (those of earlier sweeps of the same config included, as
    tune_vtab.py's ``find_best_lrwd`` reads every run of its folder), with
    what the grid covered of the method's and the user's options."""
    scores, others = finished_runs(base, family)
    scores.update(ran)  # this sweep's, finished before it recorded a digest
    others = [name for name in others if name not in ran]
    best = pick_best(scores)
    grid = method_grid(args.method)
    covered = len(set(grid) & {(s['base_lr'], s['wd'])
                               for s in scores.values()})
    summary = run_record(args, path, cfg, best=best, all=scores,
                         grid=dict(covered=covered, of=len(grid)),
                         not_counted=others)
    with open(osp.join(base, 'best.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    print(f'{task}: best {best["run"]} (lr {best["lr"]:g}; val top-1 '
          f'{best["val_top1"]:.2f}) of the {len(scores)} finished runs of '
          f'this config in {base} ({covered} of the {len(grid)} (lr, wd) '
          f'of the method\'s grid)')
    if others:
        print(f'{task}: not counted, finished runs of another config in '
              f'{base}: {", ".join(others)}')


def chosen_lr(args, cfg, tdir, task):
    """(lr, wd, base lr, name, sweep summary) of the final runs: ``--lr`` as
    given, else the best base lr of the sweep scaled to this config's batch
    (:func:`scaled_lr`), whatever batch and GPUs the sweep ran with."""
    if args.lr is not None:
        return args.lr, args.wd, None, 'given', None
    best_file = osp.join(tdir, 'sweep', 'best.json')
    if not osp.isfile(best_file):
        if not args.dry_run:
            raise SystemExit(f'protocol.py: {best_file} not found: run '
                             '`sweep` first or pass --lr and --wd')
        return None, None, None, 'best of the sweep', None
    with open(best_file) as f:
        swept = json.load(f)
    best = swept['best']
    base_lr = best['base_lr']
    lr = scaled_lr(base_lr, cfg, args.method)
    batch = cfg.train_dataloader.batch_size
    how = (f'base {base_lr:g} x batch {batch} / 256'
           if recipe_of(args.method)['scale_lr'] else 'as given')
    if not math.isclose(lr, best['lr']):
        how += (f'; the sweep trained batch {swept.get("batch", "?")} at lr '
                f'{best["lr"]:g}')
    print(f'# {task}: {best["run"]} of the sweep: lr {lr:g} ({how}), wd '
          f'{best["wd"]:g}')
    sweep_info = dict(runs=len(swept['all']), grid=swept.get('grid'))
    return lr, best['wd'], base_lr, best['run'], sweep_info


def final(args):
    jobs = []
    for path, cfg in load_runs(args):
        tdir = task_dir(args, cfg)
        jobs.append((path, cfg, tdir,
                     chosen_lr(args, cfg, tdir, task_of(cfg))))
    progress = Progress(len(jobs) * len(args.seeds))
    for path, cfg, tdir, (lr, wd, base_lr, name, swept) in jobs:
        task = task_of(cfg)
        if args.dry_run:
            print(f'# {task}: {name} (lr {lr}, wd {wd}), seeds {args.seeds};'
                  f' {describe(cfg, args.method, args.gpus)}')
        accs = {}
        for seed in args.seeds:
            run = set_splits(load(path, args), 'final')
            if lr is not None:
                run.optim_wrapper.optimizer.lr = lr
                run.optim_wrapper.optimizer.weight_decay = wd
            run.randomness = dict(seed=seed)
            wdir = osp.join(tdir, 'final', f'seed{seed}')
            accs[seed] = run_or_skip(
                run, wdir, args, progress, f'{task} seed {seed} ({name})',
                run_record(args, path, run, base_lr=base_lr, lr=lr, wd=wd,
                           seed=seed))
        if args.dry_run:
            continue
        res = summarise_seeds(accs)
        res.update(run_record(args, path, cfg, lr=lr, wd=wd, base_lr=base_lr,
                              run=name, sweep=swept))
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
    runs.add_argument(
        '--gpus', type=int, default=1, help='processes (GPUs) each run is '
        'split over (default 1). The config\'s batch is the total, as VPT\'s '
        'DATA.BATCH_SIZE: each process loads batch / GPUS, and the lr '
        '(base x batch / 256) does not change with the number of GPUs')
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
    if getattr(args, 'gpus', 1) < 1:
        p.error(f'--gpus must be >= 1, got {args.gpus}')
    try:
        dict(sweep=sweep, final=final, report=make_report)[args.cmd](args)
    except (ProtocolError, ConfigError) as e:  # each says what, which file
        raise SystemExit(f'protocol.py: {e}')
    except subprocess.CalledProcessError as e:  # its output is above
        raise SystemExit(f'protocol.py: a training run failed (exit '
                         f'{e.returncode}): {" ".join(e.cmd)}')


if __name__ == '__main__':
    main()
