"""`tools/protocol.py sweep --launcher slurm` on a real single-node Slurm
cluster started here (Debian's slurmctld, slurmd, slurm-client and munge,
run as root under a private SLURM_CONF, its state, spool, logs and munge
socket in a tmp dir, stopped at teardown).

Without those programs (or not as root) the test is skipped, saying why;
with ``IVPT_REQUIRE_SLURM=1`` (set by .ci/run, which installs them) it
fails instead, so CI never skips it silently."""
import json
import os
import os.path as osp
import shutil
import signal
import socket
import subprocess
import textwrap
import time

import pytest
from ivpt_runs import free_ports, make_vtab, pretrained_tiny, small_config
from test_protocol import run_protocol
from test_protocol_launch import protocol_main

PROGRAMS = ('munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'scancel',
            'scontrol', 'sinfo', 'srun')
TASKS = ('eurosat', 'svhn')
GRID = ('--lrs', '0.5', '5', '--wds', '0')
pytestmark = pytest.mark.slow  # starts a Slurm cluster and trains on it


def _wait(what, check, timeout=180, every=0.5):
    end = time.time() + timeout
    while time.time() < end:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f'timed out after {timeout}s waiting for {what}')


def _stop(pid_file, sig=signal.SIGTERM):
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip())
        os.kill(pid, sig)
        return pid
    except (OSError, ValueError):
        return None


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    """A one-node cluster (4 CPUs, partition ``debug``): the environment
    to reach it (``SLURM_CONF``)."""
    missing = [p for p in PROGRAMS if shutil.which(p) is None and
               not osp.exists(f'/usr/sbin/{p}')]
    why = (f'Slurm programs missing: {", ".join(missing)} (apt-get install '
           'slurmctld slurmd slurm-client munge)' if missing else
           'the test cluster runs its daemons as root' if os.geteuid()
           else None)
    if why:
        if os.environ.get('IVPT_REQUIRE_SLURM') == '1':
            pytest.fail(f'IVPT_REQUIRE_SLURM=1 and {why}')
        pytest.skip(why)
    d = tmp_path_factory.mktemp('slurm')
    for sub in ('state', 'spool', 'munge'):
        (d / sub).mkdir()
    os.chmod(d / 'munge', 0o700)
    key = d / 'munge' / 'munge.key'
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o400)
    sock = d / 'munge' / 'munge.socket'
    host = socket.gethostname().split('.')[0]
    ctld_port, d_port = free_ports(2)
    conf = d / 'slurm.conf'
    conf.write_text(textwrap.dedent(f"""\
        ClusterName=ivpttest
        SlurmctldHost={host}
        SlurmctldPort={ctld_port}
        SlurmdPort={d_port}
        AuthType=auth/munge
        AuthInfo=socket={sock}
        CredType=cred/munge
        SlurmUser=root
        SlurmdUser=root
        StateSaveLocation={d / 'state'}
        SlurmdSpoolDir={d / 'spool'}
        SlurmctldPidFile={d / 'slurmctld.pid'}
        SlurmdPidFile={d / 'slurmd.pid'}
        SlurmctldLogFile={d / 'slurmctld.log'}
        SlurmdLogFile={d / 'slurmd.log'}
        ProctrackType=proctrack/linuxproc
        TaskPlugin=task/none
        SelectType=select/cons_tres
        SelectTypeParameters=CR_Core
        SchedulerType=sched/builtin
        MpiDefault=none
        ReturnToService=2
        SlurmdParameters=config_overrides
        JobAcctGatherType=jobacct_gather/none
        AccountingStorageType=accounting_storage/none
        NodeName={host} CPUs=4 RealMemory=1000 State=UNKNOWN
        PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
        """))
    env = dict(os.environ, SLURM_CONF=str(conf), CPUS_PER_TASK='1')
    started = []
    try:
        subprocess.run(['munged', '--force', f'--socket={sock}',
                        f'--key-file={key}', f'--pid-file={d}/munged.pid',
                        f'--log-file={d}/munged.log',
                        f'--seed-file={d}/munged.seed'], check=True)
        started.append('munged')
        subprocess.run(['slurmctld', '-i'], env=env, check=True)
        started.append('slurmctld')
        subprocess.run(['slurmd'], env=env, check=True)
        started.append('slurmd')
        _wait('the node to be idle', lambda: subprocess.run(
            ['sinfo', '-h', '-o', '%T'], env=env, capture_output=True,
            text=True).stdout.strip() == 'idle', timeout=60)
        yield env
    finally:  # the jobs first: slurmd leaves running steps behind
        subprocess.run(['scancel', '--me'], env=env, capture_output=True)
        try:
            _wait('the jobs to end', lambda: not squeue(env), timeout=30)
        except AssertionError:
            pass
        subprocess.run(['scontrol', 'shutdown'], env=env,
                       capture_output=True)
        for name in ('slurmd', 'slurmctld'):
            pid_file = d / f'{name}.pid'
            if name in started and osp.isfile(pid_file):
                pid = _stop(pid_file)
                try:
                    _wait(f'{name} to stop', lambda: not osp.exists(
                        f'/proc/{pid}'), timeout=15, every=0.2)
                except AssertionError:
                    _stop(pid_file, signal.SIGKILL)
        if 'munged' in started:
            subprocess.run(['munged', '--stop', f'--socket={sock}'],
                           capture_output=True)


PAUSE_HOOK = '''
import os
import time

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class PauseAfterFirstEpoch(Hook):
    """While FLAG exists, hold a fresh run after its first epoch (its
    checkpoint written: CheckpointHook runs before, VERY_LOW), saying so in
    WORK_DIR/PAUSED. A resumed run never pauses."""
    priority = 'LOWEST'

    def __init__(self, flag):
        self.flag = flag

    def after_train_epoch(self, runner):
        if runner.epoch != 0 or not os.path.exists(self.flag):
            return
        open(os.path.join(runner.work_dir, 'PAUSED'), 'w').close()
        while os.path.exists(self.flag):
            time.sleep(0.2)
'''


@pytest.fixture(scope='module')
def tiny_tasks(tmp_path_factory):
    """Two tiny tasks (eurosat, svhn) whose runs pause after their first
    epoch while ``flag`` exists; the environment that finds the hook."""
    tmp = tmp_path_factory.mktemp('tasks')
    (tmp / 'hooks').mkdir()
    (tmp / 'hooks' / 'pause_hook.py').write_text(PAUSE_HOOK)
    pretrained = pretrained_tiny(tmp)
    flag = tmp / 'PAUSE'
    configs = []
    for task in TASKS:
        make_vtab(tmp / 'vtab', task=task, n=8)
        (tmp / task).mkdir()
        small = small_config(tmp / task, f'configs/vtab/ivpt_vitb16_{task}.py',
                             f"data_root={str(tmp / 'vtab')!r}", pretrained)
        cfg = tmp / task / 'paused.py'
        cfg.write_text(textwrap.dedent(f"""\
            _base_ = [{small!r}]
            custom_imports = dict(imports=['pause_hook'],
                                  allow_failed_imports=False)
            custom_hooks = [dict(type='PauseAfterFirstEpoch',
                                 flag={str(flag)!r})]
            default_hooks = dict(checkpoint=dict(interval=1))
            """))
        configs.append(str(cfg))
    path = os.environ.get('PYTHONPATH')
    yield configs, flag, str(tmp / 'hooks') + (f':{path}' if path else '')
    if flag.exists():  # a failed test: let no run wait
        flag.unlink()


def states(capsys, configs, root):
    """{(task, run): state} from `tools/protocol.py status` (in this
    process: it trains nothing), and its output."""
    assert protocol_main('status', *configs, *GRID, '--work-root',
                         str(root)) == (0, '')
    out = capsys.readouterr().out
    got = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ('done', 'running', 'pending', 'failed'):
            got[(parts[1], parts[2].split('/')[1])] = parts[0]
    return got, out


def squeue(env):
    return subprocess.run(['squeue', '-h', '-r', '-o', '%i|%T'], env=env,
                          capture_output=True, text=True).stdout.split()


def test_sweep_as_one_job_array(cluster, tiny_tasks, tmp_path, capsys,
                                monkeypatch):
    configs, flag, pythonpath = tiny_tasks
    env = dict(cluster, PYTHONPATH=pythonpath)
    for var in ('SLURM_CONF', 'CPUS_PER_TASK'):  # for the in-process calls
        monkeypatch.setenv(var, env[var])
    monkeypatch.syspath_prepend(pythonpath.split(':')[0])  # the hook
    root = tmp_path / 'runs'
    slurm = ('--launcher', 'slurm', '--partition', 'debug',
             '--gpus-per-run', '0', '--max-concurrent', '3')
    runs = [(t, n) for t in TASKS for n in ('lr0.5_wd0', 'lr5_wd0')]
    wdir = {r: osp.join(root, 'vtab', 'ivpt', r[0], 'sweep', r[1])
            for r in runs}

    # a partition Slurm does not know: its answer, before anything is made
    assert protocol_main('sweep', *configs, *GRID, *slurm[:2],
                         '--partition', 'nope', '--work-root', str(root)) == (
        1, 'protocol.py: --partition nope: Slurm answers "Partition nope not '
        'found"; its partitions: debug')
    assert not root.exists()
    got, out = states(capsys, configs, root)
    assert got == {r: 'pending' for r in runs}, out

    flag.touch()  # every fresh run holds after its first epoch
    out = run_protocol(root, 'sweep', *configs, *GRID, *slurm,
                       env=env).stdout
    assert '# 4 runs: 0 finished, 0 queued or running, 4 to submit' in out
    assert ' --array=0-3%3 --nodes=1 --ntasks=1 --cpus-per-task=1 ' in out
    assert '--gres' not in out
    job = out.split('# submitted job array ')[1].split(':')[0]
    assert 'eurosat: 2 of 2 runs not finished' in out
    _wait('3 runs at their first checkpoint', lambda: sum(
        osp.exists(osp.join(wdir[r], 'PAUSED')) for r in runs) == 3)
    got, out = states(capsys, configs, root)
    first, last = runs[:3], runs[3]  # %3: the last waits for a slot
    assert got == {**{r: 'running' for r in first}, last: 'pending'}, out
    assert f'Slurm job {job}_3: pending' in out

    # cancel array task 0 at its first checkpoint: failed, with its log
    cancelled = runs[0]
    assert osp.exists(osp.join(wdir[cancelled], 'epoch_1.pth'))
    subprocess.run(['scancel', f'{job}_0'], env=env, check=True)
    _wait('task 0 to leave the queue',
          lambda: not any(x.startswith(f'{job}_0|') for x in squeue(env)))
    got, out = states(capsys, configs, root)
    assert got[cancelled] == 'failed', out
    assert got[runs[1]] == got[runs[2]] == 'running', out
    assert got[last] in ('pending', 'running'), out  # it takes the slot
    assert '         | ' in out  # the tail of its log

    # the final runs wait for a complete sweep, and say for which runs
    assert protocol_main('final', *configs, '--seeds', '0', '--work-root',
                         str(root)) == (
        1, f'protocol.py: eurosat: the sweep in {osp.dirname(wdir[runs[0]])} '
        'is not complete, not finished: lr0.5_wd0, lr5_wd0; see '
        '`tools/protocol.py status`, then run the sweep command again')

    # again, while the others still run: only the cancelled run goes out;
    # --wait returns when its array has ended
    out = run_protocol(root, 'sweep', *configs, *GRID, *slurm, '--wait',
                       env=env).stdout
    assert '# 4 runs: 0 finished, 3 queued or running, 1 to submit' in out
    assert ' --array=0-0%3 ' in out
    run_list = next(line for line in out.splitlines()
                    if line.startswith('sbatch ')).split()[-1]
    with open(run_list) as f:
        assert f.read() == f'{wdir[cancelled]}\n'
    assert osp.exists(osp.join(wdir[cancelled], 'result.json'))
    assert 'eurosat: 1 of 2 runs not finished (lr5_wd0)' in out
    flag.unlink()  # the others go on to their end
    _wait('the arrays to end', lambda: not squeue(env))
    got, out = states(capsys, configs, root)
    assert got == {r: 'done' for r in runs}, out
    assert 'nothing left' in out

    with open(osp.join(wdir[cancelled], 'train.log')) as f:
        log = f.read()
    assert log.count('\n# srun ') + log.startswith('# srun ') == 2
    assert 'resumed epoch: 1' in log  # from its epoch_1.pth
    for r in runs[1:]:  # trained once each, never resumed
        with open(osp.join(wdir[r], 'train.log')) as f:
            log = f.read()
        assert log.count('# srun ') == 1 and 'resumed epoch' not in log

    # nothing left to submit: the same command writes the best.json
    assert protocol_main('sweep', *configs, *GRID, *slurm, '--work-root',
                         str(root)) == (0, '')
    out = capsys.readouterr().out
    assert '# 4 runs: 4 finished, 0 queued or running, 0 to submit' in out
    assert 'sbatch ' not in out
    for task in TASKS:
        with open(osp.join(root, 'vtab', 'ivpt', task, 'sweep',
                           'best.json')) as f:
            best = json.load(f)
        assert set(best['all']) == {'lr0.5_wd0', 'lr5_wd0'}
        assert f'{task}: best ' in out
        for name in best['all']:
            with open(osp.join(wdir[(task, name)], 'result.json')) as f:
                assert json.load(f)['top1'] == best['all'][name]['val_top1']
