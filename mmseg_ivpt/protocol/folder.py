"""Every name of the protocol's folders, what a run's work dir says about
the run (its config, by digest; its state: done / running / pending /
failed; its result) and the step that trains it and writes its
``result.json``.

A task's folder (:class:`TaskFolder`),
``WORK_ROOT/<benchmark>/<method>[-<backbone>]/<task>``:

* ``sweep/lr<base lr>_wd<wd>/``: a run of the sweep (:func:`sweep_run_name`);
* ``sweep/best.json``: the best of the sweep's finished runs;
* ``final/seed<s>/``: a final run (:func:`final_run_name`);
* ``final/results.json``: the final runs' mean and std over the seeds.

The Slurm array's run lists and logs: ``WORK_ROOT/slurm/``.

The files of a run folder:

* ``config.py``: the config it trains (one process's batch);
* ``protocol.json``: written when the run is prepared (before it trains or
  is submitted): the digest of its config, what it is (``record``) and the
  processes it is split over; a run of another digest is never resumed;
* ``running.json``: while it trains: host, pid, Slurm job (removed at the
  end, whatever the end);
* ``slurm.json``: the Slurm array task it was submitted as;
* ``train.log``: the output of its trainings (appended to on resume);
* ``result.json``: once finished: top-1, the digest, the record, seconds.

Standard library only: the Slurm array task (``tools/slurm_protocol.sh``)
runs this file as a script, ``python folder.py WORK_DIR -- COMMAND...``,
without the package's imports.
"""
import glob
import json
import os
import os.path as osp
import socket
import subprocess
import sys
import time
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

try:
    from .errors import RunConflictError
except ImportError:  # run as a script by the Slurm array task
    from errors import RunConflictError  # type: ignore

#: the files of a run folder
CONFIG = 'config.py'
RESULT = 'result.json'
STARTED = 'protocol.json'
RUNNING = 'running.json'
SUBMITTED = 'slurm.json'
LOG = 'train.log'
#: the folders and files of a task folder, and the work root's Slurm folder
SWEEP = 'sweep'
FINAL = 'final'
BEST = 'best.json'
RESULTS = 'results.json'
SLURM = 'slurm'
#: the backbone whose work dirs carry no ``-<backbone>`` suffix
DEFAULT_BACKBONE = 'vitb16'


def sweep_run_name(base_lr: float, wd: float) -> str:
    """The folder of a sweep's run: ``lr<base lr>_wd<wd>``."""
    return f'lr{base_lr:g}_wd{wd:g}'


def final_run_name(seed: int) -> str:
    """The folder of a final run: ``seed<s>``."""
    return f'seed{seed}'


def method_dir(method: str, backbone: str) -> str:
    """``<method>``, or ``<method>-<backbone>`` for another backbone than
    ViT-B/16."""
    return method if backbone == DEFAULT_BACKBONE else f'{method}-{backbone}'


class TaskFolder(NamedTuple):
    """The folder of one task of one method: where its runs and summaries
    are (every name above, in one place)."""
    path: str

    @classmethod
    def of(cls, work_root: str, benchmark: str, method: str, backbone: str,
           task: str) -> 'TaskFolder':
        return cls(osp.join(work_root, benchmark,
                            method_dir(method, backbone), task))

    @property
    def sweep(self) -> str:
        return osp.join(self.path, SWEEP)

    @property
    def final(self) -> str:
        return osp.join(self.path, FINAL)

    @property
    def best_file(self) -> str:
        """``sweep/best.json``."""
        return osp.join(self.sweep, BEST)

    @property
    def results_file(self) -> str:
        """``final/results.json``."""
        return osp.join(self.final, RESULTS)

    def sweep_run(self, base_lr: float, wd: float) -> str:
        return osp.join(self.sweep, sweep_run_name(base_lr, wd))

    def final_run(self, seed: int) -> str:
        return osp.join(self.final, final_run_name(seed))


class RunResult(NamedTuple):
    """A finished run's ``result.json``: its top-1, the digest of its
    config, the seconds of its last training, and the whole record (what
    the run was: lr, wd, seed, ...)."""
    top1: float
    config_digest: Optional[str]
    seconds: Optional[float]
    record: dict


def read_result(work_dir: str) -> Optional[RunResult]:
    """The one reader of a run's ``result.json``: None where there is none,
    or a damaged one (no number as ``top1``: the run is trained again)."""
    res = read_json(osp.join(work_dir, RESULT))
    if res is None:
        return None
    try:
        top1 = float(res['top1'])
    except (ValueError, KeyError, TypeError):
        return None
    secs = res.get('seconds')
    return RunResult(top1, res.get('config_digest'),
                     secs if isinstance(secs, (int, float)) else None, res)


def read_json(path: str) -> Optional[dict]:
    """The JSON object in ``path``; None if it is missing or damaged."""
    try:
        with open(path) as f:
            obj = json.load(f)
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def write_text(path: str, text: str):
    """Atomically: a reader sees the old file or the new one, never half."""
    tmp = f'{path}.{os.getpid()}.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path: str, obj: dict):
    """Atomically (:func:`write_text`)."""
    write_text(path, json.dumps(obj, indent=1))


def _option_value(value) -> str:
    """``value`` as ``--cfg-options`` (mmengine's ``DictAction``) reads it
    back: lists and tuples in brackets, no spaces."""
    if isinstance(value, (list, tuple)):
        inner = ','.join(_option_value(v) for v in value)
        return f'[{inner}]' if isinstance(value, list) else f'({inner})'
    return str(value)


def options_text(options: Optional[dict]) -> str:
    """``--cfg-options K=V ...`` of ``options`` as a shell takes them
    (quoted where needed); '' for none."""
    import shlex
    if not options:
        return ''
    return '--cfg-options ' + ' '.join(
        shlex.quote(f'{k}={_option_value(v)}') for k, v in options.items())


def ran_with(work_dir: str) -> Optional[dict]:
    """The ``--cfg-options`` the run in ``work_dir`` was made with, as its
    ``result.json`` (else ``protocol.json``) records them; None where
    neither records them."""
    for name in (RESULT, STARTED):
        rec = read_json(osp.join(work_dir, name)) or {}
        rec = rec if name == RESULT else rec.get('record') or {}
        if isinstance(rec.get('cfg_options'), dict):
            return rec['cfg_options']
    return None


def other_options(work_dir: str, options: Optional[dict] = None) -> str:
    """What to do about the run in ``work_dir`` made under another config
    than the one asked for (``options``: the ``--cfg-options`` asked with;
    None: unknown): the options it ran with, those that differ, and how to
    reach it. Never advises removing it."""
    got = ran_with(work_dir)
    if got is None:
        return ('its folder does not record the options it ran with (see its '
                f'{CONFIG})')
    said = (f'it ran with {options_text(got)}' if got
            else 'it ran without --cfg-options')
    if options is None:
        return said + ' (pass the same to use it)'
    mine = options or {}
    differ = [k for k in dict.fromkeys([*got, *mine])
              if k not in got or k not in mine or got[k] != mine[k]]
    if not differ:
        return (said + ', as asked now: its config file, the method or the '
                "toolbox's defaults changed since (compare its "
                f'{CONFIG})')
    return (said + ' (differing: ' + ', '.join(differ) + '); pass ' +
            (options_text(got) if got else 'no --cfg-options') +
            ' to use it')


def finished_run(work_dir: str, digest: str) -> Optional[RunResult]:
    """The result of a finished run of this exact config, else None. A run
    of another config in ``work_dir`` is an error (never overwritten)."""
    res = read_result(work_dir)
    if res is None or res.config_digest is None:
        return None  # damaged: run again
    got = res.config_digest
    if got != digest:
        raise RunConflictError(
            f'{work_dir} holds a run finished under another config (digest '
            f'{got}, this one {digest}): {other_options(work_dir)}; or pass '
            'another --work-root to train this one beside it')
    return res


def finished_result(work_dir: str, digest: str) -> Optional[float]:
    """The top-1 of :func:`finished_run`, else None."""
    res = finished_run(work_dir, digest)
    return None if res is None else res.top1


def check_folder(work_dir: str, digest: str) -> Optional[float]:
    """:func:`finished_result`, and an unfinished run of another config
    (its ``protocol.json``) is a :class:`RunConflictError` too. Writes
    nothing: the check of every run before any is trained or submitted."""
    done = finished_result(work_dir, digest)
    if done is not None:
        return done
    started = read_json(osp.join(work_dir, STARTED))
    got = started and started.get('config_digest')
    if got and got != digest:
        raise RunConflictError(
            f'{work_dir} holds an unfinished run of another config (digest '
            f'{got}, this one {digest}): {other_options(work_dir)} to '
            'resume it; or pass another --work-root to train this one '
            'beside it')
    return None


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


def finish(work_dir: str, seconds: float) -> float:
    """Write ``result.json`` of a run that trained to its end: its top-1,
    what ``protocol.json`` says it is, the seconds of its last training."""
    started = read_json(osp.join(work_dir, STARTED)) or {}
    top1 = last_accuracy(work_dir)
    write_json(osp.join(work_dir, RESULT),
               dict(started.get('record') or {}, top1=top1,
                    config_digest=started.get('config_digest'),
                    seconds=round(seconds, 1)))
    return top1


def slurm_task_id(env=None) -> Optional[str]:
    """``JOB_TASK`` of the Slurm array task this process is, else None."""
    env = os.environ if env is None else env
    if env.get('SLURM_ARRAY_JOB_ID') and env.get('SLURM_ARRAY_TASK_ID'):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get('SLURM_JOB_ID')


def train_in(work_dir: str, command: Sequence[str], env=None,
             echo: bool = False) -> Tuple[int, float]:
    """Run ``command`` (a training of the prepared run in ``work_dir``),
    its output appended to ``train.log`` (and copied to stdout if
    ``echo``), ``running.json`` there while it runs; on success write
    ``result.json`` (:func:`finish`). Returns (exit code, seconds)."""
    t = time.time()
    marker = osp.join(work_dir, RUNNING)
    write_json(marker, dict(host=socket.gethostname(), pid=os.getpid(),
                            slurm_job=slurm_task_id(), started=t))
    try:
        with open(osp.join(work_dir, LOG), 'ab') as log:
            log.write(f'# {" ".join(command)}\n'.encode())
            log.flush()
            if not echo:
                rc = subprocess.call(list(command), env=env, stdout=log,
                                     stderr=subprocess.STDOUT)
            else:
                proc = subprocess.Popen(list(command), env=env,
                                        stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
                for line in proc.stdout:
                    log.write(line)
                    sys.stdout.buffer.write(line)
                    sys.stdout.flush()
                rc = proc.wait()
        seconds = time.time() - t
        if rc == 0:
            finish(work_dir, seconds)
        return rc, seconds
    finally:
        try:
            os.remove(marker)
        except OSError:
            pass


def log_tail(work_dir: str, lines: int = 5) -> List[str]:
    """The last lines of the run's ``train.log`` (else of mmengine's own
    log of its newest training)."""
    logs = [osp.join(work_dir, LOG)] + sorted(
        glob.glob(osp.join(work_dir, '*', '*.log')), reverse=True)
    for path in logs:
        if osp.isfile(path):
            with open(path, errors='replace') as f:
                return [line.rstrip('\n') for line in f][-lines:]
    return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_state(work_dir: str, digest: str, queue: Dict[str, str],
              options: Optional[dict] = None) -> Tuple[str, str]:
    """(state, detail) of the run of config ``digest`` in ``work_dir``:
    ``done`` (detail: top-1 and time), ``running`` (a live local process or
    a running Slurm task), ``pending`` (not started, or queued in Slurm),
    ``other`` (finished under another config: the detail says with which
    ``--cfg-options``, against ``options``, those asked with), ``failed``
    (started and neither finished nor running: interrupted, crashed,
    cancelled; or an unfinished run of another config). ``queue``: Slurm's
    ``{job_task: state}`` (:func:`.launch.slurm_queue`), {} without
    Slurm."""
    try:
        done = finished_run(work_dir, digest)
    except RunConflictError:
        res = read_result(work_dir)
        return 'other', (f'finished under another config (top-1 '
                         f'{res.top1:.2f}): '
                         f'{other_options(work_dir, options)}')
    if done is not None:
        return 'done', f'top-1 {done.top1:.2f}' + (
            f' in {done.seconds:.0f}s' if done.seconds is not None else '')
    running = read_json(osp.join(work_dir, RUNNING))
    submitted = read_json(osp.join(work_dir, SUBMITTED)) or {}
    jobs = [j for j in ((running or {}).get('slurm_job'),
                        submitted.get('job')) if j]
    job = next((j for j in jobs if j in queue), jobs[0] if jobs else None)
    in_queue = queue.get(job) if job else None
    if in_queue in ('RUNNING', 'COMPLETING', 'CONFIGURING'):
        return 'running', f'Slurm job {job}'
    if in_queue:  # PENDING, REQUEUED, SUSPENDED...
        return 'pending', f'Slurm job {job}: {in_queue.lower()}'
    if running and not running.get('slurm_job') and \
            running.get('host') == socket.gethostname() and \
            _alive(int(running.get('pid', 0))):
        return 'running', f'pid {running["pid"]}'
    started = read_json(osp.join(work_dir, STARTED))
    if started and started.get('config_digest') not in (None, digest):
        return 'failed', ('an unfinished run of another config: '
                          f'{other_options(work_dir, options)}')
    if running or log_tail(work_dir):
        return 'failed', 'started, not finished, not running' + (
            f' (Slurm job {job})' if job else '')
    return 'pending', 'not started' + (f' (Slurm job {job} gone)'
                                       if job else '')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``folder.py WORK_DIR -- COMMAND...``: :func:`train_in`, its output
    copied to stdout (the Slurm task's own log)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[1] != '--':
        print('usage: folder.py WORK_DIR -- COMMAND...', file=sys.stderr)
        return 2
    work_dir, command = argv[0], argv[2:]
    if not osp.isfile(osp.join(work_dir, STARTED)):
        print(f'folder.py: {work_dir}: not a prepared run (no {STARTED})',
              file=sys.stderr)
        return 2
    rc, _ = train_in(work_dir, command, echo=True)
    return rc


if __name__ == '__main__':
    sys.exit(main())
