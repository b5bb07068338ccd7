"""The VTAB-1k / FGVC protocol: sweep, final runs over seeds, report.

    # lr x wd on train800, chosen on val200 (FGVC: train / val)
    python tools/protocol.py sweep configs/vtab/ivpt_vitb16_*.py --method ivpt
    # the chosen pair on train800val200 (FGVC: train), tested, VPT's 5 seeds
    python tools/protocol.py final configs/vtab/ivpt_vitb16_*.py --method ivpt
    # no sweep: each task at the lr its paper selected (GaPT Table 5)
    python tools/protocol.py final configs/vtab/ivpt_vitb16_*.py --method gapt_mae --paper-lr
    # Table 1 / 9 / 6 / 11 / 12 layout, ours beside the paper's
    python tools/protocol.py report --benchmark vtab --method ivpt
    # other backbones (Table 13): their task configs, --backbone in report
    python tools/protocol.py sweep configs/vtab/vitl16/*.py --method ivpt
    python tools/protocol.py report --benchmark vtab --backbone vitl16
    # many runs at once (docs/cluster.md): one per GPU, or a Slurm array
    python tools/protocol.py sweep configs/vtab/ivpt_vitb16_*.py --workers 8
    python tools/protocol.py sweep configs/vtab/ivpt_vitb16_*.py \\
        --launcher slurm --partition gpu --max-concurrent 64
    python tools/protocol.py status configs/vtab/ivpt_vitb16_*.py

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
commands and writes nothing. ``--workers K`` trains K runs at once here
(each on its own GPUs, or its share of the CPU threads); ``--launcher
slurm`` submits the runs neither finished nor queued as one job array
(``tools/slurm_protocol.sh``); ``status`` says per run done / running /
pending / failed; a task's ``best.json`` / ``results.json`` is written once
all its runs have finished, and ``final`` refuses a task whose sweep is not
complete. The paper's numbers of ``report`` are
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
import shlex
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
                                 benchmark_tasks, finished_runs, grid_digest,
                                 load_task_config, locate, lr_grid,
                                 method_grid, pick_best, recipe_of, report,
                                 scaled_lr, set_splits, split_batch,
                                 summarise_seeds, task_configs, task_of,
                                 train_command)
from mmseg_ivpt.protocol.folder import read_json, write_json  # noqa: E402
from mmseg_ivpt.protocol.launch import (Run, check_runs,  # noqa: E402
                                        print_summary, run_local,
                                        status_report, submit_slurm,
                                        unfinished_runs)
from mmseg_ivpt.protocol.recipes import paper_lr, task_settings  # noqa: E402


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


def launch(args, runs):
    """Every run not finished yet, by ``--launcher``: here, ``--workers``
    at once (:func:`run_local`), or submitted as one Slurm job array
    (:func:`submit_slurm`). Every run folder is checked first (a run of
    another config there stops everything before anything starts).
    Returns the launch's :class:`Outcome` (None in a local dry run)."""
    if args.launcher == 'slurm':
        return submit_slurm(runs, args.work_root, f'{args.method}-{args.cmd}',
                            args.partition, args.gpus_per_run,
                            args.max_concurrent, args.slurm_args or [],
                            dry_run=args.dry_run, wait=args.wait)
    if args.dry_run:
        check_runs(runs)
        for r in runs:
            print('  ' + ' '.join(train_command(
                osp.join(r.work_dir, 'config.py'), r.work_dir, args.gpus)))
        return None
    out = run_local(runs, args.gpus, args.workers, Progress(len(runs)))
    if args.workers > 1 or out.failed:
        print_summary(out)
    return out


def complete(task, runs, out):
    """Whether every run of a task has finished; else says what is left
    (and where to follow it) and no summary of the task is written."""
    left = [r.name for r in runs if r.work_dir not in out.top1]
    if left:
        print(f'{task}: {len(left)} of {len(runs)} runs not finished '
              f'({", ".join(left)}); `tools/protocol.py status` follows '
              'them, the same command again once they are done writes '
              "the task's summary")
    return not left


def stop_if_failed(out):
    if out is not None and out.failed:
        raise SystemExit(
            f'protocol.py: {len(out.failed)} run(s) failed: ' + '; '.join(
                f'{label} (log {log})' for label, log in out.failed))


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
    per_task = task_settings(cfg, method)  # GaPT: its Table 5's row
    return (f'{method}: {opt.type}, batch {batch}{split}, '
            f'{r["warmup_epochs"]} warm-up epochs of '
            f'{cfg.train_cfg.max_epochs}, lr '
            f'{"base x batch / 256" if r["scale_lr"] else "as given"}'
            + (f'; {per_task}' if per_task else ''))


def load_runs(args):
    """(path, config) of every config given, each checked before any run
    (its method, its place in the table, its batch against --gpus)."""
    jobs = []
    for path in args.configs:
        cfg = load(path, args)
        split_batch(cfg, args.gpus)
        jobs.append((path, cfg))
    return jobs


def sweep_runs(args, path, task, base, grid):
    """The runs of a task's sweep: one per (base lr, wd, lr) of ``grid``,
    in ``base/lr<base lr>_wd<wd>``."""
    runs = []
    for base_lr, wd, lr in grid:
        run = set_splits(load(path, args), 'sweep')
        run.optim_wrapper.optimizer.lr = lr
        run.optim_wrapper.optimizer.weight_decay = wd
        name = f'lr{base_lr:g}_wd{wd:g}'
        runs.append(Run(task, name, osp.join(base, name), run, run_record(
            args, path, run, base_lr=base_lr, lr=lr, wd=wd,
            grid_digest=grid_digest(run)), f'{task} {name} (lr {lr:g})'))
    return runs


def sweep(args):
    jobs = [(path, cfg, lr_grid(cfg, args.method, args.lrs, args.wds))
            for path, cfg in load_runs(args)]
    plans = []
    for path, cfg, grid in jobs:
        task, base = task_of(cfg), osp.join(task_dir(args, cfg), 'sweep')
        if args.dry_run:
            print(f'# {task}: {len(grid)} runs; '
                  f'{describe(cfg, args.method, args.gpus)}')
            print('# base lr, wd -> lr: ' + ', '.join(
                f'{b:g},{wd:g}->{lr:g}' for b, wd, lr in grid))
        plans.append((path, cfg, task, base,
                      sweep_runs(args, path, task, base, grid)))
    out = launch(args, [r for *_, runs in plans for r in runs])
    if args.dry_run:
        return
    for path, cfg, task, base, runs in plans:
        if not complete(task, runs, out):
            continue
        ran = {r.name: dict(base_lr=r.record['base_lr'], lr=r.record['lr'],
                            wd=r.record['wd'], run=r.name,
                            val_top1=out.top1[r.work_dir]) for r in runs}
        write_best(args, path, cfg, task, base,
                   runs[0].record['grid_digest'], ran)
    stop_if_failed(out)


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
                         not_counted=others, grid_digest=family)
    write_json(osp.join(base, 'best.json'), summary)
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
    if args.lr is not None and args.paper_lr:
        raise SystemExit('protocol.py: final: pass --lr or --paper-lr, '
                         'not both')
    if args.lr is not None:
        return args.lr, args.wd, None, 'given', None
    if args.paper_lr:  # the paper's choice for the task (GaPT Table 5)
        lr, wd = paper_lr(args.method, cfg)
        return lr, wd, None, 'paper', None
    best_file = osp.join(tdir, 'sweep', 'best.json')
    swept = read_json(best_file)
    family = (swept or {}).get('grid_digest')  # None: any grid's runs
    left = (unfinished_runs(osp.join(tdir, 'sweep'), family)
            if family or swept is None else [])  # (not: an older best.json)
    if left:  # an array still queued or running, a run that failed
        raise SystemExit(
            f'protocol.py: {task}: the sweep in {osp.join(tdir, "sweep")} is '
            f'not complete, not finished: {", ".join(left)}; see '
            '`tools/protocol.py status`, then run the sweep command again')
    if family and set(finished_runs(osp.join(tdir, 'sweep'), family)[0]) - \
            set(swept['all']):
        raise SystemExit(
            f'protocol.py: {task}: {best_file} is older than finished runs of '
            'its sweep; run the sweep command again (it trains nothing and '
            'writes best.json of them all)')
    if swept is None:
        if not args.dry_run:
            raise SystemExit(f'protocol.py: {best_file} not found: run '
                             '`sweep` first or pass --lr and --wd')
        return None, None, None, 'best of the sweep', None
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
    plans = []
    for path, cfg, tdir, chosen in jobs:
        task = task_of(cfg)
        lr, wd, base_lr, name, swept = chosen
        if args.dry_run:
            print(f'# {task}: {name} (lr {lr}, wd {wd}), seeds {args.seeds};'
                  f' {describe(cfg, args.method, args.gpus)}')
        plans.append((path, cfg, tdir, task, chosen,
                      final_runs(args, path, task, tdir, chosen)))
    out = launch(args, [r for *_, runs in plans for r in runs])
    if args.dry_run:
        return
    for path, cfg, tdir, task, (lr, wd, base_lr, name, swept), runs in plans:
        if not complete(task, runs, out):
            continue
        res = summarise_seeds({r.record['seed']: out.top1[r.work_dir]
                               for r in runs})
        res.update(run_record(args, path, cfg, lr=lr, wd=wd, base_lr=base_lr,
                              run=name, sweep=swept))
        write_json(osp.join(tdir, 'final', 'results.json'), res)
        print(f'{task}: test top-1 {res["mean"]:.2f} ± {res["std"]:.2f} '
              f'over seeds {res["seeds"]}')
    stop_if_failed(out)


def final_runs(args, path, task, tdir, chosen):
    """The runs of a task's final: one per seed, in ``tdir/final/seed<s>``,
    at the chosen lr and wd (:func:`chosen_lr`)."""
    lr, wd, base_lr, name, _ = chosen
    runs = []
    for seed in args.seeds:
        run = set_splits(load(path, args), 'final')
        if lr is not None:
            run.optim_wrapper.optimizer.lr = lr
            run.optim_wrapper.optimizer.weight_decay = wd
        run.randomness = dict(seed=seed)
        runs.append(Run(task, f'seed{seed}',
                        osp.join(tdir, 'final', f'seed{seed}'), run,
                        run_record(args, path, run, base_lr=base_lr, lr=lr,
                                   wd=wd, seed=seed),
                        f'{task} seed {seed} ({name})'))
    return runs


def status(args):
    """Per run of the sweeps (``--stage final``: of the final runs) of the
    configs given: done / running / pending / failed, and an ETA."""
    runs = []
    for path, cfg in load_runs(args):
        task, tdir = task_of(cfg), task_dir(args, cfg)
        if args.stage == 'sweep':
            runs += sweep_runs(args, path, task, osp.join(tdir, 'sweep'),
                               lr_grid(cfg, args.method, args.lrs, args.wds))
        elif (args.lr is None and not args.paper_lr and not osp.isfile(
                osp.join(tdir, 'sweep', 'best.json'))):
            print(f'# {task}: its final runs wait for the sweep (no '
                  f'{osp.join(tdir, "sweep", "best.json")})')
        else:
            runs += final_runs(args, path, task, tdir,
                               chosen_lr(args, cfg, tdir, task))
    status_report(runs)


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


def launchers():
    """The options of ``--launcher`` (docs/cluster.md)."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group('launcher (docs/cluster.md)')
    g.add_argument('--launcher', choices=['local', 'slurm'], default='local',
                   help='local: on this machine, --workers runs at once; '
                   'slurm: the unfinished runs as one job array')
    g.add_argument('--workers', type=int, default=1, help='local: runs at '
                   'once, each on its own --gpus GPUs (CUDA_VISIBLE_DEVICES) '
                   'or, without GPUs, its share of the CPU threads')
    g.add_argument('--partition', help='slurm: the partition (required)')
    g.add_argument('--gpus-per-run', type=int, help='slurm: GPUs (one '
                   'process each) of each run, default --gpus; 0: one '
                   'process on CPU, no --gres')
    g.add_argument('--max-concurrent', type=int, help='slurm: at most this '
                   'many runs at once (--array=...%%K)')
    g.add_argument('--slurm-args', default='', help='slurm: more sbatch '
                   'options, one string, e.g. '
                   '--slurm-args="--time=2:00:00 --qos=high"')
    g.add_argument('--wait', action='store_true', help='slurm: return when '
                   "no task of the array is left in Slurm's queue, then "
                   "write the tasks' summaries")
    return p


def check_launcher(p, args):
    """Launcher options that do not fit are a usage error before any
    config is read; Slurm's ``--gpus-per-run`` becomes ``--gpus`` (the
    processes a run's batch is split over)."""
    if args.cmd not in ('sweep', 'final'):
        return
    if args.launcher == 'local':
        given = [o for o, v in (('--partition', args.partition),
                                ('--gpus-per-run', args.gpus_per_run),
                                ('--max-concurrent', args.max_concurrent),
                                ('--slurm-args', args.slurm_args),
                                ('--wait', args.wait)) if v]
        if given:
            p.error(f'{", ".join(given)}: for --launcher slurm only')
        if args.workers < 1:
            p.error(f'--workers must be >= 1, got {args.workers}')
        return
    if args.workers != 1:
        p.error('--workers is for --launcher local; with Slurm, '
                '--max-concurrent K limits the runs at once')
    if not args.partition:
        p.error('--launcher slurm needs --partition')
    if args.max_concurrent is not None and args.max_concurrent < 1:
        p.error(f'--max-concurrent must be >= 1, got {args.max_concurrent}')
    if args.gpus_per_run is None:
        args.gpus_per_run = args.gpus
    elif args.gpus_per_run < 0:
        p.error(f'--gpus-per-run must be >= 0, got {args.gpus_per_run}')
    args.gpus = max(1, args.gpus_per_run)
    args.slurm_args = shlex.split(args.slurm_args)


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
                      help='print the grid and the commands (Slurm: the '
                      'sbatch command line and the array\'s runs); write '
                      'nothing')
    grid = argparse.ArgumentParser(add_help=False)
    grid.add_argument('--lrs', type=float, nargs='+',
                      help="base learning rates (default: the method's grid)")
    grid.add_argument('--wds', type=float, nargs='+',
                      help="weight decays (default: the method's grid)")
    seeds = argparse.ArgumentParser(add_help=False)
    seeds.add_argument('--seeds', type=int, nargs='+',
                       default=list(VPT_SEEDS))
    seeds.add_argument('--lr', type=float, help='skip the sweep: this lr (as '
                       'the optimizer gets it)')
    seeds.add_argument('--wd', type=float, default=0.)
    seeds.add_argument('--paper-lr', action='store_true',
                       help="skip the sweep: each task's lr (and wd) as the "
                       "method's paper selected it (gapt_*: GaPT Table 5)")
    sub.add_parser('sweep', parents=[common, runs, grid, launchers()])
    sub.add_parser('final', parents=[common, runs, seeds, launchers()])
    r = sub.add_parser('report', parents=[common])
    r.add_argument('--benchmark', choices=['vtab', 'fgvc'], required=True)
    r.add_argument('--backbone', choices=list(BACKBONE_CONFIGS),
                   default='vitb16', help='whose task configs and paper '
                   'numbers (Table 13 / 5 for vitl16, vith14, swinb)')
    st = sub.add_parser('status', parents=[common, runs, grid, seeds],
                        help='done / running / pending / failed per run, '
                        'and an ETA')
    st.add_argument('--stage', choices=['sweep', 'final'], default='sweep',
                    help='whose runs: the sweeps (--lrs, --wds as sweep) or '
                    'the final runs (--seeds, --lr, --paper-lr as final)')
    args = p.parse_args(argv)
    if getattr(args, 'gpus', 1) < 1:
        p.error(f'--gpus must be >= 1, got {args.gpus}')
    check_launcher(p, args)
    try:
        dict(sweep=sweep, final=final, report=make_report,
             status=status)[args.cmd](args)
    except (ProtocolError, ConfigError) as e:  # each says what, which file
        raise SystemExit(f'protocol.py: {e}')
    except subprocess.CalledProcessError as e:  # its output is above
        raise SystemExit(f'protocol.py: a training run failed (exit '
                         f'{e.returncode}): {" ".join(e.cmd)}')


if __name__ == '__main__':
    main()
