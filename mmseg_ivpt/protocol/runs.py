"""Running the protocol's trainings: a run per work dir, identified by the
digest of its config (a finished one is skipped, an interrupted one resumed
from its last checkpoint, one of another config refused), started through
the module entry point :mod:`mmseg_ivpt.engine.train` (``--gpus N``: under
``torch.distributed.run``, the total batch split over the N processes), its
top-1 read from what it logged and written to ``result.json`` with what the
run was (:class:`Run`'s ``record``). :func:`train_run` is the one function
that trains a run here; a Slurm array task runs its second half
(:func:`.folder.train_in`) on the folder :func:`prepare_run` made. What a
run folder holds and says: :mod:`.folder`; running many runs at once:
:mod:`.launch`.
"""
import copy
import glob
import hashlib
import os
import os.path as osp
import statistics
import subprocess
import sys
from typing import Dict, List, NamedTuple, Optional, Tuple

from .errors import BatchError
from .folder import (
    CONFIG,
    RESULT,
    STARTED,
    check_folder,
    read_result,
    train_in,
    write_json,
)
from .tasks import ROOT

__all__ = ['Run', 'config_digest', 'grid_digest', 'split_batch',
           'prepare_run', 'train_run', 'finished_runs', 'TRAIN_MODULE',
           'train_command', 'train_env', 'Progress', 'hms',
           'summarise_seeds']


def config_digest(cfg) -> str:
    """What a run is: the digest of its config, the checkpoint hook's
    settings left out (how often a run saves and how many files it keeps
    change nothing it computes; docs/cluster.md)."""
    hooks = cfg.get('default_hooks')
    if hooks is not None and 'checkpoint' in hooks:
        cfg = copy.deepcopy(cfg)
        cfg.default_hooks.pop('checkpoint')
    return hashlib.sha256(cfg.pretty_text.encode()).hexdigest()[:16]


def grid_digest(cfg) -> str:
    """The digest of a config apart from its lr and weight decay: the runs
    of one sweep grid have the same one."""
    cfg = copy.deepcopy(cfg)
    cfg.optim_wrapper.optimizer.lr = None
    cfg.optim_wrapper.optimizer.weight_decay = None
    return config_digest(cfg)


class Run(NamedTuple):
    """One training of the protocol: ``cfg`` (its total batch) in
    ``work_dir``; ``record``: what it is, for its ``result.json``."""
    task: str
    name: str  #: its folder's name: ``lr0.5_wd0``, ``seed42``
    work_dir: str
    cfg: object
    record: dict
    label: str  #: how progress lines name it

    @property
    def digest(self) -> str:
        return config_digest(self.cfg)


def split_batch(cfg, gpus: int):
    """A copy of ``cfg`` for one of ``gpus`` processes: the config's
    ``train_dataloader.batch_size`` is the total batch (VPT's
    ``DATA.BATCH_SIZE``), and each process loads ``total / gpus`` of it
    (VPT's ``loader.py``: ``int(cfg.DATA.BATCH_SIZE / cfg.NUM_GPUS)``). A
    total that ``gpus`` does not divide is a :class:`BatchError`."""
    total = cfg.train_dataloader.batch_size
    if total % gpus:
        raise BatchError(
            f'{cfg.filename}: the total batch {total} '
            '(train_dataloader.batch_size) does not split over --gpus '
            f'{gpus}; pass a --gpus that divides it, or another batch with '
            '--cfg-options train_dataloader.batch_size=B')
    cfg = copy.deepcopy(cfg)
    cfg.train_dataloader.batch_size = total // gpus
    return cfg


def prepare_run(cfg, work_dir: str, gpus: int = 1,
                record: Optional[dict] = None) -> str:
    """Make ``work_dir`` the run of ``cfg`` (:mod:`.folder`): its
    ``config.py`` (one of ``gpus`` processes' batch, :func:`split_batch`)
    and ``protocol.json`` (the digest of ``cfg``, which holds the total
    batch, so a run is the same whatever the number of GPUs; ``record``:
    what the run is, for its ``result.json``). A run of another config
    there is a :class:`RunConflictError` (never resumed with this one).
    Returns the config's path."""
    digest = config_digest(cfg)
    check_folder(work_dir, digest)
    run_cfg = split_batch(cfg, gpus)
    os.makedirs(work_dir, exist_ok=True)
    write_json(osp.join(work_dir, STARTED),
               dict(config_digest=digest, record=record or {}, gpus=gpus))
    path = osp.join(work_dir, CONFIG)
    run_cfg.dump(path)
    return path


def train_run(run: Run, gpus: int = 1, env=None, echo: bool = True) -> float:
    """Train ``run`` here: :func:`prepare_run` (its folder), then
    :func:`train_command` resuming an interrupted run of the same config
    from its last checkpoint through :func:`.folder.train_in` (its output in
    ``train.log``, copied to stdout if ``echo``; ``result.json``: top-1, the
    digest, ``run.record``, seconds). Returns its top-1. A failed training
    is a :class:`subprocess.CalledProcessError`."""
    path = prepare_run(run.cfg, run.work_dir, gpus, run.record)
    cmd = train_command(path, run.work_dir, gpus) + ['--resume']
    rc, _ = train_in(run.work_dir, cmd, env=env or train_env(), echo=echo)
    if rc:
        raise subprocess.CalledProcessError(rc, cmd)
    return read_result(run.work_dir).top1


def finished_runs(folder: str, digest: str) -> Tuple[Dict[str, dict],
                                                     List[str]]:
    """The finished runs in the sub-folders of ``folder`` (a sweep's) whose
    ``result.json`` records the grid digest ``digest`` (:func:`grid_digest`):
    ``{name: record with val_top1}``; and the names of the finished runs of
    another config (or written before runs recorded one), which do not
    count."""
    runs, others = {}, []
    for path in sorted(glob.glob(osp.join(folder, '*', RESULT))):
        work_dir = osp.dirname(path)
        name = osp.basename(work_dir)
        res = read_result(work_dir)
        if res is None:
            continue  # damaged: not finished
        if res.record.get('grid_digest') != digest:
            others.append(name)
            continue
        runs[name] = dict(base_lr=res.record['base_lr'],
                          lr=res.record['lr'], wd=res.record['wd'],
                          val_top1=res.top1, run=name)
    return runs, others


#: the training entry point (``tools/train.py``'s body)
TRAIN_MODULE = 'mmseg_ivpt.engine.train'


def train_command(config: str, work_dir: str, gpus: int = 1) -> List[str]:
    """``python -m mmseg_ivpt.engine.train CONFIG --work-dir W``; with
    ``gpus`` > 1 one process per GPU under ``torch.distributed.run``
    (``--launcher pytorch``), with tools/dist_train.sh's NNODES, NODE_RANK,
    MASTER_ADDR and PORT."""
    args = [config, '--work-dir', work_dir]
    if gpus <= 1:
        return [sys.executable, '-m', TRAIN_MODULE] + args
    env = os.environ
    return [sys.executable, '-m', 'torch.distributed.run',
            f'--nnodes={env.get("NNODES", "1")}',
            f'--node_rank={env.get("NODE_RANK", "0")}',
            f'--master_addr={env.get("MASTER_ADDR", "127.0.0.1")}',
            f'--nproc_per_node={gpus}',
            f'--master_port={env.get("PORT", "29500")}',
            '-m', TRAIN_MODULE] + args + ['--launcher', 'pytorch']


def train_env() -> Dict[str, str]:
    """The environment of a run: this one, with the repository first on
    ``PYTHONPATH`` (as tools/train.py puts it on ``sys.path``), so that a
    clone's package is the one trained with."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [ROOT] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                  if p])
    return env


class Progress:
    """One line per run: ``[k/n] what: result (time; ETA for the rest)``,
    the ETA from the mean time of the runs trained in this invocation."""

    def __init__(self, total: int, stream=None):
        self.total, self.done, self.trained, self.spent = total, 0, 0, 0.
        self.stream = stream or sys.stdout

    def update(self, what: str, result: str, seconds: Optional[float],
               skipped: str = 'skipped: finished before'):
        self.done += 1
        if seconds is None:
            tail = skipped
        else:
            self.trained += 1
            self.spent += seconds
            left = (self.total - self.done) * self.spent / self.trained
            tail = f'{hms(seconds)}; ETA {hms(left)} for the rest'
        print(f'[{self.done}/{self.total}] {what}: {result} ({tail})',
              file=self.stream, flush=True)


def hms(seconds: float) -> str:
    """``1h05m`` / ``4m07s``."""
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f'{h}h{m:02d}m' if h else f'{m}m{s:02d}s'


def summarise_seeds(accs: Dict[int, float]) -> dict:
    """``seeds`` (sorted), ``accs`` (seed -> top-1), their ``mean`` and
    ``std`` (sample standard deviation; 0 for one seed)."""
    vals = list(accs.values())
    return dict(seeds=sorted(accs), accs=accs,
                mean=statistics.mean(vals),
                std=statistics.stdev(vals) if len(vals) > 1 else 0.)
