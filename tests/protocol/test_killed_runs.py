"""A shipped VTAB-1k config, shrunk with ``--cfg-options`` only, killed
(SIGKILL, no clean-up) after its 3rd epoch, resumes at epoch 3 through
``tools/train.py --resume`` and through the protocol's own path (the same
``sweep`` again); ``status`` without the sweep's options calls the finished
run one of other options and says which to pass, never "remove it"
(issue 29, items 6 and 7).

The kill is deterministic: a hook of the test, run after mmengine's
CheckpointHook, kills its own process after the epoch named in
``IVPT_KILL_AFTER`` (the resumed run, without it, trains to the end)."""
import glob
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import textwrap

import pytest
from ivpt_helpers import TINY
from ivpt_runs import ROOT, make_vtab, pretrained_tiny
from test_protocol_launch import protocol_main

pytestmark = pytest.mark.slow

KILL_HOOK = '''
import os
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillAfterEpoch(Hook):
    """SIGKILL this process after epoch $IVPT_KILL_AFTER (1-based), once
    the CheckpointHook (priority VERY_LOW) has run."""
    priority = 'LOWEST'

    def after_train_epoch(self, runner):
        if os.environ.get('IVPT_KILL_AFTER') == str(runner.epoch + 1):
            os.kill(os.getpid(), signal.SIGKILL)
'''
EPOCHS, KILLED = 5, 3


@pytest.fixture(scope='module')
def shipped(tmp_path_factory):
    """configs/vtab/ivpt_vitb16_eurosat.py with the kill hook added (its
    checkpoint settings are the shipped ones), the options that shrink it
    to a tiny ViT on 8 generated images for 5 epochs, and the environment
    that finds the hook."""
    tmp = tmp_path_factory.mktemp('killed')
    make_vtab(tmp / 'vtab', task='eurosat', n=8)
    tiny = pretrained_tiny(tmp)
    (tmp / 'hooks').mkdir()
    (tmp / 'hooks' / 'kill_hook.py').write_text(KILL_HOOK)
    cfg = tmp / 'eurosat_killable.py'
    cfg.write_text(textwrap.dedent(f"""\
        _base_ = [{osp.join(ROOT, 'configs/vtab/ivpt_vitb16_eurosat.py')!r}]
        custom_imports = dict(imports=['mmseg_ivpt', 'kill_hook'],
                              allow_failed_imports=False)
        custom_hooks = [dict(type='PromptOnlyCheckpointHook'),
                        dict(type='KillAfterEpoch')]
        """))
    opts = [f'pretrained={tiny}', f"data_root={tmp / 'vtab'}",
            *(f'model.backbone.arch.{k}={v}' for k, v in TINY.items()),
            'model.backbone.img_size=32', 'model.backbone.patch_size=8',
            'model.backbone.num_prompts=3', 'model.backbone.ar_tokens=2',
            'model.head.in_channels=64', 'train_dataloader.batch_size=4',
            f'train_cfg.max_epochs={EPOCHS}',
            f'train_cfg.val_interval={EPOCHS}']
    for loader in ('train', 'val', 'test'):
        opts += [f'{loader}_dataloader.dataset.pipeline.1.scale=(32,32)',
                 f'{loader}_dataloader.num_workers=0']
    env = dict(os.environ, PYTHONPATH=str(tmp / 'hooks'), PYTHONUNBUFFERED='1')
    return dict(tmp=tmp, cfg=str(cfg), opts=opts, env=env)


def tool(shipped, script, *args, kill=False, cwd=None):
    """``python tools/<script> ARGS`` from the fixture's folder, the hook's
    folder on PYTHONPATH (as a user adds a hook module of their own)."""
    env = dict(shipped['env'])
    if kill:
        env['IVPT_KILL_AFTER'] = str(KILLED)
    return subprocess.run([sys.executable, osp.join(ROOT, 'tools', script),
                           *map(str, args)], cwd=str(cwd or shipped['tmp']),
                          env=env, capture_output=True, text=True,
                          timeout=900)


def trained_epochs(log: str):
    """The epochs a training logged (``Epoch(train) [e][i/n]``), in order,
    without repeats."""
    return list(dict.fromkeys(
        int(e) for e in re.findall(r'Epoch\(train\) +\[(\d+)\]', log)))


def checkpoints(work):
    return sorted(osp.basename(p) for p in glob.glob(osp.join(work, '*.pth')))


def test_train_resumes_a_killed_run_at_its_last_epoch(shipped):
    work = shipped['tmp'] / 'train'
    args = [shipped['cfg'], '--work-dir', work, '--cfg-options',
            *shipped['opts']]
    res = tool(shipped, 'train.py', *args, kill=True)
    assert res.returncode == -signal.SIGKILL, res.stderr[-3000:]
    assert trained_epochs(res.stdout + res.stderr) == [1, 2, 3]
    # every epoch saved, the last one kept
    assert checkpoints(work) == [f'epoch_{KILLED}.pth']

    res = tool(shipped, 'train.py', *args, '--resume')
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-4000:]
    assert f'resumed epoch: {KILLED}' in log
    assert trained_epochs(log) == list(range(KILLED + 1, EPOCHS + 1))
    # what tools/test.py and the protocol read at the end
    assert checkpoints(work) == [f'epoch_{EPOCHS}.pth']
    with open(work / 'last_checkpoint') as f:
        assert f.read().strip() == str(work / f'epoch_{EPOCHS}.pth')


def test_protocol_resumes_a_killed_run_and_status_names_options(
        shipped, capsys, monkeypatch):
    root = shipped['tmp'] / 'runs'
    sweep = ['sweep', shipped['cfg'], '--lrs', '1', '--wds', '0',
             '--work-root', root]
    res = tool(shipped, 'protocol.py', *sweep, '--cfg-options',
               *shipped['opts'], kill=True)
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-3000:]
    run = root / 'vtab' / 'ivpt' / 'eurosat' / 'sweep' / 'lr1_wd0'
    assert checkpoints(run) == [f'epoch_{KILLED}.pth']
    assert not (run / 'result.json').exists()

    # the same command again (from elsewhere): the run resumes at epoch 3
    res = tool(shipped, 'protocol.py', *sweep, '--cfg-options',
               *shipped['opts'], cwd=run)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    log = (run / 'train.log').read_text()
    assert log.count('# ') == 2, log[:3000]  # two trainings, one log
    second = log[log.rindex('\n# '):]
    assert f'resumed epoch: {KILLED}' in second
    assert trained_epochs(second) == list(range(KILLED + 1, EPOCHS + 1))
    assert (run / 'result.json').exists()

    # status without the sweep's options (tools/protocol.py's main here: it
    # trains nothing): the finished run is not "failed", and not to remove
    monkeypatch.syspath_prepend(str(shipped['tmp'] / 'hooks'))  # its hook
    code, _ = protocol_main('status', shipped['cfg'], '--lrs', '1', '--wds',
                            '0', '--work-root', str(root))
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    line = next(x for x in out.splitlines() if 'sweep/lr1_wd0' in x)
    assert line.startswith('other    eurosat sweep/lr1_wd0  finished under '
                           'another config (top-1 '), line
    assert f'it ran with --cfg-options pretrained={shipped["tmp"]}' in line
    assert '(differing: pretrained, data_root, model.backbone.arch.' in line
    assert line.endswith(' to use it'), line
    assert 'remove' not in out and 'failed' not in line
    assert '# 1 runs: 0 done, 0 running, 0 pending, 0 failed, 1 finished ' \
        'under another config' in out, out
