"""``tools/train.py --resume`` with a longer schedule than the
checkpoint's: mmengine restores the checkpoint's lr schedule (its ``end``
too), so the lr stays at the schedule's end value past it; the run says so
at the start, with how to train on the new schedule instead (issue 29,
item 15)."""
import re
import shutil

import pytest
from ivpt_runs import SEG_CFG, ok, run_tool


@pytest.mark.slow
def test_resume_with_more_iterations_says_the_schedule_is_kept(
        seg_run, env, tmp_path):
    work = tmp_path / 'run'
    shutil.copytree(seg_run, work)  # 4 iterations, PolyLR end 4
    res = ok(run_tool('train.py', SEG_CFG, '--work-dir', work, '--resume',
                      '--cfg-options', *env['opts'], 'train_cfg.max_iters=6',
                      'param_scheduler.0.end=6', cwd=tmp_path))
    log = res.stdout + res.stderr
    assert 'resumed epoch: 0, iter: 4' in log
    flat = ' '.join(log.split())  # the warning as one line
    assert ("--resume: the checkpoint's lr schedule replaces this config's "
            '(mmengine restores each parameter scheduler as it was saved, '
            'its begin / end / T_max too): param_scheduler[0] PolyLR: end 4 '
            '(this config: 6), total_iters 3 (this config: 5); it ends at '
            'iteration 4 of 6: from there the lr stays at its last value. '
            "To train on this config's schedule from the checkpoint's "
            'weights instead, start a new run without --resume and with '
            '--cfg-options load_from=CKPT') in flat, log[-4000:]
    # what mmengine does: the old schedule's end value (the config's
    # eta_min, 1e-5) for iterations 5 and 6
    lrs = dict(re.findall(r'Iter\(train\) \[(\d)/6\].*? lr: (\S+)', log))
    assert lrs == {'5': '1.0000e-05', '6': '1.0000e-05'}, log[-3000:]
