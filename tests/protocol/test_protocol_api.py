"""The protocol as a library (mmseg_ivpt.protocol.stages): sweep -> final
-> report called from Python give what tools/protocol.py gives on the same
tiny config; a launch lists its runs in the plan's order whatever order
they end in; every method's per-task settings come from one lookup."""
import io
import json
import os.path as osp
import subprocess
import threading

import pytest
from mmengine.config import Config
from test_protocol import EUROSAT, run_protocol, tiny_task

from mmseg_ivpt.protocol import (
    METHODS,
    Launcher,
    RunsFailedError,
    Spec,
    SpecError,
    SweepIncompleteError,
    TaskFolder,
    final,
    load_task_config,
    make_report,
    sweep,
    task_settings,
)


def read(path):
    with open(path) as f:
        return json.load(f)


@pytest.mark.slow
def test_stages_from_python_give_the_tools_results(tmp_path):
    cfg, _ = tiny_task(tmp_path)
    grid = dict(lrs=[0.5, 5], wds=[0.], seeds=[0])
    spec = Spec([cfg], method='ivpt', work_root=str(tmp_path / 'api'),
                **grid)
    with pytest.raises(SweepIncompleteError, match='best.json not found'):
        final(spec, stream=io.StringIO())  # before the sweep: named error
    log = io.StringIO()
    swept = sweep(spec, stream=log).task('eurosat')
    assert [r.name for r in swept.runs] == ['lr0.5_wd0', 'lr5_wd0']
    assert swept.left == []
    assert f"eurosat: best {swept.best['run']}" in log.getvalue()
    done = final(spec, stream=io.StringIO()).task('eurosat')
    assert done.chosen.base_lr == swept.best['base_lr']
    rep = make_report(spec, 'vtab')

    # the tool on the folder Python trained: nothing to train (it counts
    # Python's runs as its own), the same best, results and report row (the
    # tool trains in test_protocol.py::test_sweep_final_report)
    api = spec.work_root
    out = run_protocol(api, 'sweep', cfg, '--lrs', '0.5', '5', '--wds',
                       '0').stdout
    assert out.count('skipped: finished before') == 2, out
    assert f"eurosat: best {swept.best['run']}" in out
    out = run_protocol(api, 'final', cfg, '--seeds', '0').stdout
    assert out.count('skipped: finished before') == 1, out
    out = run_protocol(api, 'report', '--benchmark', 'vtab').stdout
    folder = TaskFolder.of(api, 'vtab', 'ivpt', 'vitb16', 'eurosat')
    best = read(folder.best_file)
    assert swept.summary == best  # what it wrote, unchanged by the tool
    assert (swept.best, swept.summary['all']) == (best['best'], best['all'])
    results = read(folder.results_file)
    assert done.summary == results
    row = next(line for line in out.splitlines()
               if line.startswith('| eurosat |'))
    assert row in rep.text.splitlines()
    assert rep.results['eurosat']['mean'] == results['mean']

    # a spec that does not fit is a named error, not SystemExit
    with pytest.raises(SpecError, match='pass --lr or --paper-lr'):
        final(Spec([cfg], work_root=str(tmp_path / 'api'), lr=0.1,
                   paper_lr=True), stream=io.StringIO())
    with pytest.raises(SpecError, match='no such config'):
        sweep(Spec([str(tmp_path / 'nope.py')]), stream=io.StringIO())


def test_failed_runs_are_listed_in_the_plans_order(tmp_path, monkeypatch):
    """Issue 29's flake, made certain: with 2 workers the second run fails
    before the first (it waits for it), and the outcome, the summary and
    the error list them in the plan's order all the same."""
    from mmseg_ivpt.protocol import launch
    from mmseg_ivpt.protocol.runs import Progress, Run
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
    b_reported = threading.Event()

    class Stream(io.StringIO):
        """Progress output that says when b's line has been written."""

        def write(self, text):
            n = super().write(text)
            if 't b:' in text:
                b_reported.set()
            return n

    def fake_train_run(run, gpus, env=None, echo=True):
        if run.name == 'a':  # ends after b has been reported, whatever
            assert b_reported.wait(60)  # the load
        elif run.name != 'b':
            return 50.
        raise subprocess.CalledProcessError(1, ['train', run.name])

    monkeypatch.setattr(launch, 'train_run', fake_train_run)
    runs = [Run('t', name, str(tmp_path / name), Config(dict(n=name)), {},
                f't {name}') for name in ('a', 'b', 'c')]
    progress = Stream()
    out = launch.run_local(runs, 1, 2, Progress(3, progress))
    lines = progress.getvalue().splitlines()
    assert lines[0].startswith('[1/3] t b: FAILED')  # b did end first
    assert out.failed == [('t a', osp.join(runs[0].work_dir, 'train.log')),
                          ('t b', osp.join(runs[1].work_dir, 'train.log'))]
    assert out.trained == ['t c']
    summary = io.StringIO()
    launch.print_summary(out, summary)
    assert summary.getvalue().splitlines()[1:] == [
        f'#   failed: t {n}: log {tmp_path / n / "train.log"}'
        for n in ('a', 'b')]
    assert str(RunsFailedError(out.failed)).startswith(
        '2 run(s) failed: t a (log ')


@pytest.mark.parametrize('method', sorted(METHODS))
def test_every_methods_per_task_settings_are_one_lookup(method):
    """What a method sets per task is task_settings(method, cfg), and the
    config the protocol trains has it (where the method itself does not
    turn it off: AR's k of the CDC variants); iVPT's N and k are the task
    config's own (its data set base), which the protocol reads, not
    re-applies."""
    made = load_task_config(EUROSAT, method, None).model.backbone
    row = task_settings(method, Config.fromfile(EUROSAT))
    if METHODS[method]['per_task'] is None:
        assert row is None
        return
    fixed = METHODS[method]['backbone']
    want = {k: fixed.get(k, v) for k, v in row.backbone().items()}
    assert {k: made[k] for k in want} == want
    if METHODS[method]['per_task'] == 'ivpt':
        own = Config.fromfile(EUROSAT).model.backbone
        assert (row.num_prompts, row.ar_tokens) == (own.num_prompts,
                                                    own.ar_tokens) == (50, 5)


def test_launcher_spec_of_slurm_splits_over_its_gpus():
    spec = Spec([EUROSAT], gpus=2, launcher=Launcher('slurm',
                                                     partition='gpu'))
    assert (spec.gpus_per_run, spec.processes) == (2, 2)
    spec.launcher.gpus_per_run = 0  # one process on CPU
    assert (spec.gpus_per_run, spec.processes) == (0, 1)
