"""Running the protocol's trainings: a run per work dir, identified by the
digest of its config (a finished one is skipped, an interrupted one resumed
from its last checkpoint, one of another config refused), started through
the module entry point :mod:`mmseg_ivpt.engine.train` (``--gpus N``: under
``torch.distributed.run``), its top-1 read from what it logged.
"""
import glob
import hashlib
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

from .errors import RunConflictError
from .tasks import ROOT

RESULT = 'result.json'


def config_digest(cfg) -> str:
    return hashlib.sha256(cfg.pretty_text.encode()).hexdigest()[:16]


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


def run_training(cfg, work_dir: str, gpus: int = 1) -> float:
    """Train ``cfg`` in ``work_dir`` (:func:`train_command`, resuming an
    interrupted run of the same config from its last checkpoint), write
    ``result.json``, return top-1. ``protocol.json`` records the config's
    digest when a run starts: an unfinished run of another config is an
    error, never resumed with this one."""
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
    cfg.dump(path)
    subprocess.run(train_command(path, work_dir, gpus) + ['--resume'],
                   check=True, env=train_env())
    top1 = last_accuracy(work_dir)
    with open(osp.join(work_dir, RESULT), 'w') as f:
        json.dump(dict(top1=top1, config_digest=digest), f)
    return top1


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
