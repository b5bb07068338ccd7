"""The VTAB-1k / FGVC protocol: sweep, final runs over seeds, report.

    # lr x wd on train800, chosen on val200 (FGVC: train / val)
    python tools/protocol.py sweep configs/vtab/ivpt_vitb16_*.py --method ivpt
    # the chosen pair on train800val200 (FGVC: train), tested, VPT's 5 seeds
    python tools/protocol.py final configs/vtab/ivpt_vitb16_*.py --method ivpt
    # no sweep: each task at the lr its paper selected (GaPT Table 5)
    python tools/protocol.py final configs/vtab/ivpt_vitb16_*.py \\
        --method gapt_mae --paper-lr
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

The stages are the library :mod:`mmseg_ivpt.protocol` (``Spec``,
``sweep``, ``final``, ``status``, ``make_report``; docs/cluster.md): this
tool parses the command line into a ``Spec``, runs the stage and prints.
``--method`` picks a variant of the per-task iVPT configs with its own
recipe (``mmseg_ivpt.protocol.METHODS``, docs/reproduction.md);
``--cfg-options`` are applied after the method, so they always win. The
config's batch is the total batch, as VPT's ``DATA.BATCH_SIZE``: the lr is
base x batch / 256, and ``--gpus N`` splits the batch over N processes.
Runs go into ``WORK_ROOT/<benchmark>/<method>[-<backbone>]/<task>/{sweep/
lr<base lr>_wd<wd>,final/seed<s>}`` (``mmseg_ivpt/protocol/folder.py``);
running the same command again skips finished runs and resumes interrupted
ones. ``--dry-run`` prints the grid and the commands and writes nothing.
Each error (a method that does not fit a config, a config outside the
table, a batch --gpus does not divide, an option that cannot be applied, a
work dir of another config, an unreadable metafile, a failed run) is one
line that names its file.
"""
import argparse
import os.path as osp
import shlex
import subprocess
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from tools._venv import ensure  # noqa: E402

ensure()  # the repository's .venv unless this python has the packages

from mmengine.config import DictAction  # noqa: E402

import mmseg_ivpt  # noqa: E402,F401
from mmseg_ivpt.engine.checks import ConfigError  # noqa: E402
from mmseg_ivpt.protocol import (  # noqa: E402
    BACKBONE_CONFIGS,
    METHODS,
    VPT_SEEDS,
    Launcher,
    ProtocolError,
    Spec,
    final,
    make_report,
    status,
    sweep,
)


def spec_of(args) -> Spec:
    """The library's :class:`Spec` of a parsed command line."""
    get = vars(args).get  # a subcommand has only its own options
    return Spec(
        configs=get('configs', ()), method=args.method,
        work_root=args.work_root, cfg_options=args.cfg_options,
        gpus=get('gpus', 1), dry_run=get('dry_run', False),
        lrs=get('lrs'), wds=get('wds'), seeds=get('seeds', VPT_SEEDS),
        lr=get('lr'), wd=get('wd', 0.), paper_lr=get('paper_lr', False),
        launcher=Launcher(
            get('launcher', 'local'), get('workers', 1), get('partition'),
            get('gpus_per_run'), get('max_concurrent'),
            shlex.split(get('slurm_args') or ''), get('wait', False)))


def run(args):
    """The command's stage; the report printed (the other stages print
    as they go)."""
    spec = spec_of(args)
    if args.cmd == 'report':
        rep = make_report(spec, args.benchmark, args.backbone)
        print(rep.header)
        print(rep.text)
    elif args.cmd == 'status':
        status(spec, args.stage)
    else:
        dict(sweep=sweep, final=final)[args.cmd](spec)


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
    config is read."""
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
    if args.gpus_per_run is not None and args.gpus_per_run < 0:
        p.error(f'--gpus-per-run must be >= 0, got {args.gpus_per_run}')


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
        run(args)
    except (ProtocolError, ConfigError) as e:  # each says what, which file
        raise SystemExit(f'protocol.py: {e}')
    except subprocess.CalledProcessError as e:  # its output is above
        raise SystemExit(f'protocol.py: a training run failed (exit '
                         f'{e.returncode}): {" ".join(e.cmd)}')


if __name__ == '__main__':
    main()
