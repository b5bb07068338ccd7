"""Many independent runs at once: the unit of parallelism of the protocol
is the run (one (lr, wd) of a sweep, one seed of a final), not the GPUs of
one run.

* :func:`run_local`: ``--launcher local --workers K``: K runs at once on
  this machine, fed from a queue; each gets its own GPUs
  (``CUDA_VISIBLE_DEVICES``) or, without GPUs, its share of the CPU
  threads (``OMP_NUM_THREADS``). A failed run does not stop the others.
* :func:`submit_slurm`: ``--launcher slurm``: the runs that are not
  finished (nor queued or running) go out as one Slurm job array
  (``sbatch --array=0-N%K``); task i trains line i of the array's run list
  through ``tools/slurm_protocol.sh`` (mmseg's ``srun``, ``GPUS``,
  ``CPUS_PER_TASK``, ``SRUN_ARGS``) and ``tools/train.py --resume``.
* :func:`status_report`: done / running / pending / failed per run, the
  failed ones with the tail of their log, and an ETA from the finished
  runs' times.

Every run is first checked (:func:`check_runs`): a folder holding a run of
another config is an error before anything is trained or submitted. What a
launch reports (:class:`Outcome`, :func:`print_summary`, ``status``) lists
the runs in the order they were given (the plan's), whatever order they
finished in.
"""
import datetime
import glob
import os
import os.path as osp
import queue as queues
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, NamedTuple, Optional, Sequence

from .errors import LaunchError
from .folder import (
    CONFIG,
    LOG,
    SLURM,
    STARTED,
    SUBMITTED,
    check_folder,
    log_tail,
    read_json,
    read_result,
    run_state,
    write_json,
    write_text,
)
from .runs import Run, hms, prepare_run, train_command, train_env, train_run
from .tasks import ROOT

#: the batch script of one array task
SLURM_SCRIPT = osp.join(ROOT, 'tools', 'slurm_protocol.sh')


class Outcome(NamedTuple):
    """What a launch did: top-1 of every finished run (trained now or
    before) by work dir; the labels of the runs trained now, of those
    skipped (finished before, or running elsewhere) and (label, log) of the
    failed ones, each list in the order the runs were given."""
    top1: Dict[str, float]
    trained: List[str]
    skipped: List[str]
    failed: List[tuple]


def check_runs(runs: Sequence[Run]) -> Dict[str, Optional[float]]:
    """work dir -> top-1 of a finished run of its config, else None; a
    folder of another config is a RunConflictError. Writes nothing."""
    return {r.work_dir: check_folder(r.work_dir, r.digest) for r in runs}


def unfinished_runs(folder: str, family: Optional[str] = None) -> List[str]:
    """The names of the run folders in ``folder`` (a sweep's) that were
    prepared (trained, or submitted) and hold no finished result: those of
    the grid digest ``family`` (:func:`.runs.grid_digest`; None: any)."""
    names = []
    for path in sorted(glob.glob(osp.join(folder, '*', STARTED))):
        started = read_json(path) or {}
        if family and (started.get('record') or {}).get(
                'grid_digest') != family:
            continue
        res = read_result(osp.dirname(path))
        if res is None or res.config_digest != started.get('config_digest'):
            names.append(osp.basename(osp.dirname(path)))
    return names


def busy(runs: Sequence[Run]) -> Dict[str, str]:
    """work dir -> 'running ...' / 'pending (Slurm ...)' of the runs that
    a live process or a Slurm job (queued or running) is on now."""
    q = slurm_queue()
    out = {}
    for r in runs:
        state, detail = run_state(r.work_dir, r.digest, q)
        if state == 'running' or (state == 'pending' and 'Slurm' in detail
                                  and 'gone' not in detail):
            out[r.work_dir] = f'{state}: {detail}'
    return out


def gpu_slots(workers: int, gpus: int) -> List[Optional[Dict[str, str]]]:
    """The environment changes of each of ``workers`` parallel runs of
    ``gpus`` processes: its own GPUs out of the visible ones (and its own
    rendezvous ``PORT``), or without GPUs its share of the CPU threads.
    ``workers == 1``: none (the run sees what this process sees)."""
    if workers < 1:
        raise LaunchError(f'--workers must be >= 1, got {workers}')
    if workers == 1:
        return [None]
    visible = os.environ.get('CUDA_VISIBLE_DEVICES')
    if visible is not None:
        devices = [d.strip() for d in visible.split(',') if d.strip()]
    else:
        import torch
        devices = [str(i) for i in range(torch.cuda.device_count())]
    port = int(os.environ.get('PORT', '29500'))
    if not devices:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        return [dict(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
                     PORT=str(port + k)) for k in range(workers)]
    if workers * gpus > len(devices):
        raise LaunchError(
            f'--workers {workers} x --gpus {gpus} needs {workers * gpus} '
            f'GPUs, {len(devices)} visible ({",".join(devices)}); pass '
            'fewer --workers')
    return [dict(CUDA_VISIBLE_DEVICES=','.join(
        devices[k * gpus:(k + 1) * gpus]), PORT=str(port + k))
        for k in range(workers)]


def run_local(runs: Sequence[Run], gpus: int, workers: int,
              progress) -> Outcome:
    """Train every run not finished yet, ``workers`` at once
    (:func:`gpu_slots`), each resumed from its last checkpoint
    (:func:`.runs.train_run`); with one worker its output is printed as
    well as written to its ``train.log``. ``progress``:
    :class:`.runs.Progress` (one line per run as it ends). The outcome's
    lists are in the order of ``runs``."""
    slots = gpu_slots(workers, gpus)
    done = check_runs(runs)
    elsewhere = busy([r for r in runs if done[r.work_dir] is None])
    free = queues.Queue()
    for slot in slots:
        free.put(slot)
    lock = threading.Lock()
    out = Outcome({}, [], [], [])
    failed = {}  # work dir -> (label, log), in the order they ended
    todo = []
    for r in runs:
        if done[r.work_dir] is not None:
            out.top1[r.work_dir] = done[r.work_dir]
            out.skipped.append(r.label)
            progress.update(r.label, f'top-1 {done[r.work_dir]:.2f}', None)
        elif r.work_dir in elsewhere:
            out.skipped.append(r.label)
            progress.update(r.label, elsewhere[r.work_dir], None,
                            skipped='skipped: not this invocation\'s')
        else:
            todo.append(r)

    def train(r):
        slot = free.get()
        env = train_env()
        env.update(slot or {})
        t = datetime.datetime.now()
        try:
            top1 = train_run(r, gpus, env=env, echo=workers == 1)
        except (subprocess.CalledProcessError, OSError, ValueError) as e:
            secs = (datetime.datetime.now() - t).total_seconds()
            log = osp.join(r.work_dir, LOG)
            with lock:
                failed[r.work_dir] = (r.label, log)
                progress.update(r.label, f'FAILED ({_reason(e)}; log {log})',
                                secs)
            return
        finally:
            free.put(slot)
        secs = (datetime.datetime.now() - t).total_seconds()
        with lock:
            out.top1[r.work_dir] = top1
            progress.update(r.label, f'top-1 {top1:.2f}', secs)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(train, todo))
    # the plan's order, not the order the runs ended in
    out.trained.extend(r.label for r in todo if r.work_dir in out.top1)
    out.failed.extend(failed[r.work_dir] for r in todo
                      if r.work_dir in failed)
    return out


def dry_run_local(runs: Sequence[Run], gpus: int,
                  stream=None) -> List[List[str]]:
    """``--dry-run`` of the local launcher: every run checked
    (:func:`check_runs`), the command that would train each printed (and
    returned); nothing written."""
    check_runs(runs)
    cmds = [train_command(osp.join(r.work_dir, CONFIG), r.work_dir, gpus)
            for r in runs]
    for cmd in cmds:
        print('  ' + ' '.join(cmd), file=stream or sys.stdout)
    return cmds


def _reason(e: Exception) -> str:
    if isinstance(e, subprocess.CalledProcessError):
        return f'exit {e.returncode}'
    return f'{type(e).__name__}: {e}'


def print_summary(out: Outcome, stream=None):
    """What finished, what failed (with its log), what was skipped."""
    stream = stream or sys.stdout
    print(f'# {len(out.trained)} trained, {len(out.skipped)} skipped '
          f'(finished before, or running elsewhere), {len(out.failed)} '
          'failed', file=stream)
    for label, log in out.failed:
        print(f'#   failed: {label}: log {log}', file=stream)


# --------------------------------------------------------------- Slurm --
def check_slurm(partition: str):
    """Before anything is written or submitted: ``sbatch`` on the PATH and
    a partition that Slurm knows (its own answer, ``scontrol show
    partition``), else a :class:`LaunchError`."""
    if shutil.which('sbatch') is None:
        raise LaunchError(
            '--launcher slurm: no sbatch on the PATH '
            f'({os.environ.get("PATH", "")}); run on a Slurm login node, or '
            'use --launcher local')
    if shutil.which('scontrol') is None:
        return  # sbatch itself will answer
    res = subprocess.run(['scontrol', 'show', 'partition', partition],
                         capture_output=True, text=True)
    if res.returncode == 0 and f'PartitionName={partition}' in res.stdout:
        return
    known = subprocess.run(['sinfo', '-h', '-o', '%R'], capture_output=True,
                           text=True).stdout.split()
    answer = (res.stderr or res.stdout).strip().splitlines()
    raise LaunchError(
        f'--partition {partition}: Slurm answers '
        f'"{answer[-1] if answer else res.returncode}"; its partitions: '
        f'{", ".join(sorted(set(known))) or "none"}')


def slurm_queue() -> Dict[str, str]:
    """``{job_task: state}`` of this user's Slurm jobs, array tasks one by
    one (``squeue -r``); {} without Slurm."""
    if shutil.which('squeue') is None:
        return {}
    res = subprocess.run(['squeue', '-h', '-r', '--me', '-o', '%i|%T'],
                         capture_output=True, text=True)
    if res.returncode:
        return {}
    return dict(line.split('|', 1) for line in res.stdout.split()
                if '|' in line)


def sbatch_command(n: int, run_list: str, partition: str, job_name: str,
                   gpus_per_run: int, max_concurrent: Optional[int],
                   slurm_args: Sequence[str], log_dir: str) -> List[str]:
    """``sbatch`` of one job array of ``n`` runs: ``--array=0-(n-1)%K``,
    each task ``max(1, gpus_per_run)`` tasks (one per GPU; 0: one on CPU,
    no ``--gres``) of ``CPUS_PER_TASK`` CPUs (default 5, as
    tools/slurm_train.sh) on one node; the user's ``slurm_args`` last."""
    procs = max(1, gpus_per_run)
    cpus = os.environ.get('CPUS_PER_TASK', '5')
    array = f'0-{n - 1}' + (f'%{max_concurrent}' if max_concurrent else '')
    return (['sbatch', '--parsable', f'--partition={partition}',
             f'--job-name={job_name}', f'--array={array}', '--nodes=1',
             f'--ntasks={procs}', f'--cpus-per-task={cpus}'] +
            ([f'--gres=gpu:{gpus_per_run}'] if gpus_per_run else []) +
            [f'--output={osp.join(log_dir, "%A_%a.out")}',
             f'--export=ALL,GPUS={procs},CPUS_PER_TASK={cpus},'
             f'PYTHON={sys.executable},IVPT_ROOT={ROOT}'] +
            list(slurm_args) + [SLURM_SCRIPT, run_list])


def submit_slurm(runs: Sequence[Run], work_root: str, job_name: str,
                 partition: str, gpus_per_run: int,
                 max_concurrent: Optional[int], slurm_args: Sequence[str],
                 dry_run: bool = False, wait: bool = False,
                 poll: float = 5., stream=None) -> Outcome:
    """Submit the runs that are neither finished nor queued / running as
    one job array (:func:`sbatch_command`); each run is prepared first
    (its ``config.py``, ``protocol.json``) and records its array task
    (``slurm.json``). ``dry_run``: print the ``sbatch`` command line and
    the array's run list; write and submit nothing. ``wait``: return when
    no task of the array is left in Slurm's queue (asked every
    ``poll`` seconds). What it does is printed to ``stream`` (default
    stdout)."""
    stream = stream or sys.stdout
    if max_concurrent is not None and max_concurrent < 1:
        raise LaunchError(f'--max-concurrent must be >= 1, got '
                          f'{max_concurrent}')
    if not dry_run or shutil.which('sbatch'):
        check_slurm(partition)
    done = check_runs(runs)
    out = Outcome({w: t for w, t in done.items() if t is not None}, [], [],
                  [])
    elsewhere = busy([r for r in runs if done[r.work_dir] is None])
    todo = []
    for r in runs:
        if done[r.work_dir] is not None or r.work_dir in elsewhere:
            out.skipped.append(r.label)
        else:
            todo.append(r)
    print(f'# {len(runs)} runs: {len(done) - len(elsewhere) - len(todo)} '
          f'finished, {len(elsewhere)} queued or running, {len(todo)} to '
          'submit', file=stream)
    for r in runs:
        if r.work_dir in elsewhere:
            print(f'#   {r.label}: {elsewhere[r.work_dir]}', file=stream)
    if not todo:
        return out
    log_dir = osp.join(work_root, SLURM)
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S-%f')
    run_list = osp.join(log_dir, f'{job_name}-{stamp}.runs')
    procs = max(1, gpus_per_run)
    cmd = sbatch_command(len(todo), run_list, partition, job_name,
                         gpus_per_run, max_concurrent, slurm_args, log_dir)
    if dry_run:
        print(' '.join(shlex.quote(c) for c in cmd), file=stream)
        print(f'# {run_list} (array index: run):', file=stream)
        for i, r in enumerate(todo):
            print(f'{i}\t{osp.abspath(r.work_dir)}\t# {r.label}', file=stream)
        return out
    for r in todo:
        prepare_run(r.cfg, r.work_dir, procs, r.record)
    os.makedirs(log_dir, exist_ok=True)
    write_text(run_list, ''.join(f'{osp.abspath(r.work_dir)}\n'
                                 for r in todo))
    print(' '.join(shlex.quote(c) for c in cmd), file=stream, flush=True)
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise LaunchError(f'sbatch failed (exit {res.returncode}): '
                          f'{res.stderr.strip()}')
    job = res.stdout.strip().split(';')[0]
    for i, r in enumerate(todo):
        write_json(osp.join(r.work_dir, SUBMITTED),
                   dict(job=f'{job}_{i}', array_job=job, index=i,
                        run_list=run_list))
    print(f'# submitted job array {job}: {len(todo)} runs '
          f'({"at most %d at once" % max_concurrent if max_concurrent else "no limit at once"}); '  # noqa: E501
          f'their output: {log_dir}/{job}_<index>.out and each run\'s '
          f'{LOG}', file=stream, flush=True)
    if wait:
        while any(k.split('_')[0] == job for k in slurm_queue()):
            time.sleep(poll)
        for r in todo:
            top1 = check_folder(r.work_dir, r.digest)
            if top1 is None:
                out.failed.append((r.label, osp.join(r.work_dir, LOG)))
            else:
                out.top1[r.work_dir] = top1
                out.trained.append(r.label)
    return out


# -------------------------------------------------------------- status --
class RunStatus(NamedTuple):
    """Where one run stands: ``state`` done / running / pending / failed,
    ``detail`` (top-1 and time, the process or Slurm job, why it failed),
    the tail of its log where it failed, the seconds of a finished one."""
    run: Run
    state: str
    detail: str
    log_tail: List[str]
    seconds: Optional[float]


class StatusReport(NamedTuple):
    """:func:`status_report`'s answer: every run's :class:`RunStatus` (in
    the order given), the counts by state and the ETA line."""
    runs: List[RunStatus]
    counts: Dict[str, int]
    eta: str


def status_report(runs: Sequence[Run], stream=None,
                  tail: int = 5) -> StatusReport:
    """One line per run, ``STATE  task stage/name  detail`` (the failed
    ones followed by the last ``tail`` lines of their log), then the counts
    and an ETA: the runs left x the mean time of the finished ones, over
    the runs running at once. Returns them as a :class:`StatusReport`."""
    stream = stream or sys.stdout
    q = slurm_queue()
    counts = dict(done=0, running=0, pending=0, failed=0, other=0)
    found = []
    for r in runs:
        state, detail = run_state(r.work_dir, r.digest, q,
                                  r.record.get('cfg_options') or {})
        counts[state] += 1
        stage = osp.basename(osp.dirname(r.work_dir))
        print(f'{state:8} {r.task} {stage}/{r.name}  {detail}', file=stream)
        lines = log_tail(r.work_dir, tail) if state == 'failed' else []
        for line in lines:
            print(f'         | {line}', file=stream)
        secs = read_result(r.work_dir).seconds if state == 'done' else None
        found.append(RunStatus(r, state, detail, lines, secs))
    times = [s.seconds for s in found if s.seconds is not None]
    left = counts['running'] + counts['pending'] + counts['failed']
    line = ', '.join(f'{n} {s}' for s, n in counts.items() if s != 'other')
    if counts['other']:
        line += (f', {counts["other"]} finished under another config (not '
                 'counted: see the options they ran with)')
    if not left:
        eta = 'nothing left'
    elif times:
        at_once = max(1, counts['running'])
        mean = statistics.mean(times)
        eta = (f'ETA {hms(-(-left // at_once) * mean)} ({left} left x '
               f'{hms(mean)}, the mean of {len(times)} finished, '
               f'{at_once} at once)')
    else:
        eta = 'ETA unknown (no finished run with its time yet)'
    print(f'# {len(runs)} runs: {line}; {eta}', file=stream)
    return StatusReport(found, counts, eta)
