"""Running the protocol's trainings: a run per work dir, identified by the
digest of its config (a finished one is skipped, an interrupted one resumed
from its last checkpoint, one of another config refused), started through
the module entry point :mod:`mmseg_ivpt.engine.train` (``--gpus N``: under
``torch.distributed.run``, the total batch split over the N processes), its
top-1 read from what it logged and written to ``result.json`` with what the
run was (:func:`run_training`'s ``record``).
"""
import copy
import glob
import hashlib
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

from .errors import BatchError, RunConflictError
from .tasks import ROOT

RESULT = 'result.json'


def config_digest(cfg) -> str:
    return hashlib.sha256(cfg.pretty_text.encode()).hexdigest()[:16]


def grid_digest(cfg) -> str:
    """The digest of a config apart from its lr and weight decay: the runs
    of one sweep grid have the same one."""
    cfg = copy.deepcopy(cfg)
    cfg.optim_wrapper.optimizer.lr = None
    cfg.optim_wrapper.optimizer.weight_decay = None
    return config_digest(cfg)


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


def finished_result(work_dir: str, digest: str) -> Optional[float]:
    """The top-1 of a finished run of this exact config, else None. A run
    of another config in ``work_dir`` is an error (never overwritten)."""
    path = osp.join(work_dir, RESULT)
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            res = json.load(f)
        top1, got = float(res['top1']), res['config_digest']
    except (ValueError, KeyError, TypeError):
        return None  # damaged: run again
    if got != digest:
        raise RunConflictError(
            f'{work_dir} holds a finished run of another config (digest '
            f'{got}, this one {digest}); remove it or pass another '
            '--work-root')
    return top1


def run_training(cfg, work_dir: str, gpus: int = 1,
                 record: Optional[dict] = None) -> float:
    """Train ``cfg`` in ``work_dir`` (:func:`train_command`, resuming an
    interrupted run of the same config from its last checkpoint), write
    ``result.json`` (top-1, the config's digest and ``record``: what the run
    was), return top-1. ``cfg`` holds the total batch; the config the run
    keeps is one process's (:func:`split_batch`), its digest ``cfg``'s, so a
    run is the same whatever the number of GPUs. ``protocol.json`` records
    the digest when a run starts: an unfinished run of another config is an
    error, never resumed with this one."""
    run_cfg = split_batch(cfg, gpus)
    os.makedirs(work_dir, exist_ok=True)
    digest = config_digest(cfg)
    started = osp.join(work_dir, 'protocol.json')
    if osp.isfile(started):
        with open(started) as f:
            got = json.load(f).get('config_digest')
        if got != digest:
            raise RunConflictError(
                f'{work_dir} holds an unfinished run of another config '
                f'(digest {got}, this one {digest}); remove it or pass '
                'another --work-root')
    with open(started, 'w') as f:
        json.dump(dict(config_digest=digest), f)
    path = osp.join(work_dir, 'config.py')
    run_cfg.dump(path)
    subprocess.run(train_command(path, work_dir, gpus) + ['--resume'],
                   check=True, env=train_env())
    top1 = last_accuracy(work_dir)
    with open(osp.join(work_dir, RESULT), 'w') as f:
        json.dump(dict(record or {}, top1=top1, config_digest=digest), f,
                  indent=1)
    return top1


def finished_runs(folder: str, digest: str) -> Tuple[Dict[str, dict],
                                                     List[str]]:
    """The finished runs in the sub-folders of ``folder`` (a sweep's) whose
    ``result.json`` records the grid digest ``digest`` (:func:`grid_digest`):
    ``{name: record with val_top1}``; and the names of the finished runs of
    another config (or written before runs recorded one), which do not
    count."""
    runs, others = {}, []
    for path in sorted(glob.glob(osp.join(folder, '*', RESULT))):
        name = osp.basename(osp.dirname(path))
        try:
            with open(path) as f:
                res = json.load(f)
            top1 = float(res['top1'])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # damaged: not finished
        if res.get('grid_digest') != digest:
            others.append(name)
            continue
        runs[name] = dict(base_lr=res['base_lr'], lr=res['lr'],
                          wd=res['wd'], val_top1=top1, run=name)
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


def last_accuracy(work_dir: str) -> float:
    """The last top-1 accuracy a run logged (its final evaluation)."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    acc = None
    for f in files:
        with open(f) as fh:
            for line in fh:
                rec = json.loads(line)
                if 'accuracy/top1' in rec:
                    acc = rec['accuracy/top1']
    if acc is None:
        raise FileNotFoundError(f'{work_dir}: no accuracy/top1 logged')
    return float(acc)


class Progress:
    """One line per run: ``[k/n] what: result (time; ETA for the rest)``,
    the ETA from the mean time of the runs trained in this invocation."""

    def __init__(self, total: int, stream=None):
        self.total, self.done, self.trained, self.spent = total, 0, 0, 0.
        self.stream = stream or sys.stdout

    def update(self, what: str, result: str, seconds: Optional[float]):
        self.done += 1
        if seconds is None:
            tail = 'skipped: finished before'
        else:
            self.trained += 1
            self.spent += seconds
            left = (self.total - self.done) * self.spent / self.trained
            tail = f'{_hms(seconds)}; ETA {_hms(left)} for the rest'
        print(f'[{self.done}/{self.total}] {what}: {result} ({tail})',
              file=self.stream, flush=True)


def _hms(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f'{h}h{m:02d}m' if h else f'{m}m{s:02d}s'


def timed(fn, *args):
    t = time.time()
    out = fn(*args)
    return out, time.time() - t


def summarise_seeds(accs: Dict[int, float]) -> dict:
    vals = list(accs.values())
    return dict(seeds=sorted(accs), accs=accs,
                mean=statistics.mean(vals),
                std=statistics.stdev(vals) if len(vals) > 1 else 0.)
