"""The errors every launcher gives before it starts or submits anything,
and the Slurm launcher's dry run. The local pool (`--workers 2` against
the sequential sweep): tests/protocol/test_protocol.py
(test_sweep_final_report); the Slurm launcher on a real cluster:
tests/protocol/test_slurm_protocol.py."""
import copy
import json
import os
import os.path as osp
import sys

import pytest
from mmengine.config import Config
from test_protocol import EUROSAT, ROOT


def protocol_main(*argv):
    """tools/protocol.py's main in this process (for what needs no
    training): (exit code, stdout + stderr lines)."""
    sys.path.insert(0, ROOT)
    from tools.protocol import main
    try:
        main(list(argv))
    except SystemExit as e:
        return (e.code if isinstance(e.code, int) else 1), str(e.code)
    return 0, ''


def test_named_errors_before_anything_starts(tmp_path, capsys, monkeypatch):
    """K < 1, no sbatch on the PATH, a run folder of another config; a
    Slurm dry run prints the sbatch command line and the array's runs, and
    writes nothing."""
    root = str(tmp_path / 'runs')
    some = (EUROSAT, '--lrs', '1', '2', '--wds', '0', '--work-root', root)
    assert protocol_main('sweep', *some, '--workers', '0')[0] == 2
    assert '--workers must be >= 1, got 0' in capsys.readouterr().err
    for bad in (('--partition', 'gpu', '--max-concurrent', '0'), ()):
        assert protocol_main('final', *some[:1], '--work-root', root,
                             '--launcher', 'slurm', *bad)[0] == 2
        err = capsys.readouterr().err
        assert ('--max-concurrent must be >= 1, got 0' if bad else
                '--launcher slurm needs --partition') in err
    monkeypatch.setenv('PATH', str(tmp_path))  # no sbatch, no squeue
    code, msg = protocol_main('sweep', *some, '--launcher', 'slurm',
                              '--partition', 'gpu')
    assert (code, msg) == (1, 'protocol.py: --launcher slurm: no sbatch on '
                           f'the PATH ({tmp_path}); run on a Slurm login '
                           'node, or use --launcher local')
    code, _ = protocol_main('sweep', *some, '--launcher', 'slurm',
                            '--partition', 'gpu', '--gpus-per-run', '2',
                            '--max-concurrent', '1', '--dry-run',
                            '--slurm-args=--time=1:00:00 --qos=high')
    out = capsys.readouterr().out
    assert code == 0
    assert '# 2 runs: 0 finished, 0 queued or running, 2 to submit' in out
    line = next(x for x in out.splitlines() if x.startswith('sbatch '))
    assert ' --partition=gpu --job-name=ivpt-sweep --array=0-1%1 ' \
        '--nodes=1 --ntasks=2 --cpus-per-task=5 --gres=gpu:2 ' in line
    assert line.endswith(' --time=1:00:00 --qos=high '
                         f'{ROOT}/tools/slurm_protocol.sh {root}/slurm/'
                         + line.rsplit('/', 1)[1])
    runs = [x.split('\t') for x in out.splitlines() if '\t' in x]
    sweep = osp.join(root, 'vtab', 'ivpt', 'eurosat', 'sweep')
    assert [r[:2] for r in runs] == [['0', f'{sweep}/lr1_wd0'],
                                     ['1', f'{sweep}/lr2_wd0']]
    assert 'batch 128 (64 per GPU x 2)' in out
    assert not osp.exists(root)

    # lr2's folder holds a run of another config: nothing starts (lr1 is
    # not even prepared), with the local pool and with Slurm alike
    foreign = osp.join(sweep, 'lr2_wd0')
    os.makedirs(foreign)
    with open(osp.join(foreign, 'protocol.json'), 'w') as f:
        json.dump(dict(config_digest='0123456789abcdef'), f)
    for launcher in (('--workers', '2'),
                     ('--launcher', 'slurm', '--partition', 'gpu',
                      '--dry-run')):
        code, msg = protocol_main('sweep', *some, *launcher)
        assert code == 1
        assert msg.startswith(f'protocol.py: {foreign} holds an unfinished '
                              'run of another config (digest '
                              '0123456789abcdef, this one '), msg
        assert os.listdir(sweep) == ['lr2_wd0']


def test_each_worker_gets_its_own_gpus(monkeypatch):
    """--workers K x --gpus N: disjoint CUDA_VISIBLE_DEVICES and PORTs out
    of the visible GPUs, too few GPUs a named error; without GPUs each
    worker gets its share of the CPU threads."""
    from mmseg_ivpt.protocol.launch import LaunchError, gpu_slots
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '4,5,6,7')
    monkeypatch.setenv('PORT', '29600')
    assert gpu_slots(2, 2) == [
        dict(CUDA_VISIBLE_DEVICES='4,5', PORT='29600'),
        dict(CUDA_VISIBLE_DEVICES='6,7', PORT='29601')]
    assert [s['CUDA_VISIBLE_DEVICES'] for s in gpu_slots(4, 1)] == \
        ['4', '5', '6', '7']
    assert gpu_slots(1, 4) == [None]  # one worker: what this process sees
    with pytest.raises(LaunchError, match=r'--workers 3 x --gpus 2 needs 6 '
                       r'GPUs, 4 visible \(4,5,6,7\); pass fewer --workers'):
        gpu_slots(3, 2)
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
    monkeypatch.setattr(os, 'cpu_count', lambda: 8)
    assert gpu_slots(3, 1) == [
        dict(OMP_NUM_THREADS='2', MKL_NUM_THREADS='2', PORT=str(29600 + k))
        for k in range(3)]


def test_status_of_paper_lr_finals(tmp_path, capsys):
    """`status --stage final --paper-lr` lists the final runs that
    `final --paper-lr` would train (no sweep to wait for); without
    --paper-lr they wait for the sweep's best.json."""
    dtd = osp.join(ROOT, 'configs', 'vtab', 'ivpt_vitb16_dtd.py')
    some = ('status', dtd, '--method', 'gapt_mae', '--stage', 'final',
            '--work-root', str(tmp_path))
    assert protocol_main(*some, '--paper-lr')[0] == 0
    out = capsys.readouterr().out
    assert 'pending  dtd final/seed42  not started' in out
    assert '5 runs: 0 done, 0 running, 5 pending, 0 failed' in out
    assert protocol_main(*some)[0] == 0
    assert 'its final runs wait for the sweep' in capsys.readouterr().out
    assert not os.listdir(tmp_path)  # status writes nothing


def test_save_cadence_is_not_part_of_what_a_run_is():
    """How often a run saves changes nothing it computes: a run resumed or
    counted under another checkpoint interval is the same run; any other
    option (here the lr) makes it another."""
    from mmseg_ivpt.protocol.runs import config_digest, grid_digest
    cfg = Config(dict(
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1,
                                           max_keep_ckpts=1)),
        optim_wrapper=dict(optimizer=dict(lr=0.1, weight_decay=0.))))
    other = copy.deepcopy(cfg)
    other.default_hooks.checkpoint.interval = 100
    del other.default_hooks.checkpoint.max_keep_ckpts
    assert config_digest(other) == config_digest(cfg)
    assert grid_digest(other) == grid_digest(cfg)
    assert cfg.default_hooks.checkpoint.interval == 1  # not changed
    other.optim_wrapper.optimizer.lr = 0.2
    assert config_digest(other) != config_digest(cfg)
    assert grid_digest(other) == grid_digest(cfg)
