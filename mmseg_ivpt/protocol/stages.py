"""The protocol's stages as functions of a :class:`Spec`: :func:`sweep`,
:func:`final`, :func:`status` and :func:`make_report` (what
``tools/protocol.py sweep|final|status|report`` run). Each returns what it
found or wrote (a dataclass) and raises the package's named errors
(:mod:`.errors`), never ``SystemExit``. What they do as they go (the plan
of a dry run, one line per run as it ends, the summaries written) is
printed to ``stream`` (default stdout; ``io.StringIO()`` keeps it).

    from mmseg_ivpt.protocol import Spec, sweep
    res = sweep(Spec(['configs/vtab/ivpt_vitb16_dtd.py'], method='ivpt'))
    res.tasks[0].best['base_lr']

Every name of the folders they write is :mod:`.folder`'s
(:class:`~.folder.TaskFolder`).
"""
import math
import os.path as osp
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from .errors import (
    LaunchError,
    RunsFailedError,
    SpecError,
    SweepIncompleteError,
)
from .folder import TaskFolder, read_json, write_json
from .launch import (
    Outcome,
    StatusReport,
    dry_run_local,
    print_summary,
    run_local,
    status_report,
    submit_slurm,
    unfinished_runs,
)
from .paper import benchmark_tasks
from .recipes import (
    VPT_SEEDS,
    describe_recipe,
    load_task_config,
    lr_grid,
    method_grid,
    paper_lr,
    pick_best,
    recipe_of,
    scaled_lr,
    set_splits,
)
from .report import report
from .runs import (
    Progress,
    Run,
    finished_runs,
    grid_digest,
    split_batch,
    summarise_seeds,
)
from .tasks import BACKBONE_CONFIGS, locate, task_configs, task_of

__all__ = ['Launcher', 'Spec', 'Chosen', 'TaskRuns', 'StageResult',
           'StatusResult', 'ReportResult', 'sweep', 'final', 'status',
           'make_report']


@dataclass
class Launcher:
    """How the runs are started (docs/cluster.md): ``local``, ``workers``
    at once on this machine; or ``slurm``, the unfinished runs as one job
    array on ``partition``, each of ``gpus_per_run`` GPUs (default the
    spec's ``gpus``; 0: one process on CPU), at most ``max_concurrent`` at
    once, ``slurm_args`` added to ``sbatch``; ``wait``: return when the
    array has left Slurm's queue (and write the summaries)."""
    kind: str = 'local'
    workers: int = 1
    partition: Optional[str] = None
    gpus_per_run: Optional[int] = None
    max_concurrent: Optional[int] = None
    slurm_args: Sequence[str] = ()
    wait: bool = False

    def check(self):
        """A :class:`LaunchError` for a launcher that cannot start."""
        if self.kind not in ('local', 'slurm'):
            raise LaunchError(f'launcher kind={self.kind!r}; allowed: '
                              "'local', 'slurm'")
        if self.kind == 'slurm' and not self.partition:
            raise LaunchError('--launcher slurm needs --partition')


@dataclass
class Spec:
    """What a stage runs: the task ``configs`` under ``method``, the user's
    ``cfg_options`` applied last, into ``work_root``; each run's total
    batch split over ``gpus`` processes; started by ``launcher``;
    ``dry_run``: print the plan, write nothing. The sweep's grid: ``lrs``,
    ``wds`` (None: the method's). The final runs: ``seeds``, and the lr
    chosen by the sweep, or ``lr`` and ``wd`` as given, or the method's
    paper's (``paper_lr``)."""
    configs: Sequence[str] = ()
    method: str = 'ivpt'
    work_root: str = 'work_dirs/protocol'
    cfg_options: Optional[dict] = None
    gpus: int = 1
    launcher: Launcher = field(default_factory=Launcher)
    dry_run: bool = False
    lrs: Optional[Sequence[float]] = None
    wds: Optional[Sequence[float]] = None
    seeds: Sequence[int] = VPT_SEEDS
    lr: Optional[float] = None
    wd: float = 0.
    paper_lr: bool = False

    @property
    def gpus_per_run(self) -> int:
        """Slurm: the GPUs of each array task (0: one process on CPU)."""
        given = self.launcher.gpus_per_run
        return self.gpus if given is None else given

    @property
    def processes(self) -> int:
        """The processes each run's batch is split over."""
        if self.launcher.kind == 'slurm':
            return max(1, self.gpus_per_run)
        return self.gpus


@dataclass
class Chosen:
    """The lr and wd of a task's final runs: ``run`` is the sweep's run
    they come from, ``'given'`` (``Spec.lr``) or ``'paper'``; ``sweep``:
    how many runs the sweep chose from, over what of the grid."""
    lr: Optional[float]
    wd: Optional[float]
    base_lr: Optional[float]
    run: str
    sweep: Optional[dict] = None


@dataclass
class TaskRuns:
    """One task of a stage: its folder, its config, its runs (in the plan's
    order); ``cfg``: the config as the method and the options made it;
    ``left``: the names of those not finished (then ``summary`` is
    None); ``summary``: what the stage wrote once all had finished (the
    sweep's ``best.json``, the final's ``results.json``); ``chosen``: the
    final's lr and wd."""
    task: str
    folder: TaskFolder
    config: str
    cfg: object
    runs: List[Run]
    left: List[str] = field(default_factory=list)
    summary: Optional[dict] = None
    chosen: Optional[Chosen] = None

    @property
    def best(self) -> Optional[dict]:
        """The sweep's best run: run, base_lr, lr, wd, val_top1."""
        return (self.summary or {}).get('best')


@dataclass
class StageResult:
    """What :func:`sweep` or :func:`final` did: every task in the order of
    the configs, and the launch's :class:`~.launch.Outcome` (None in a
    dry run)."""
    tasks: List[TaskRuns]
    outcome: Optional[Outcome]

    def task(self, name: str) -> TaskRuns:
        return next(t for t in self.tasks if t.task == name)


@dataclass
class StatusResult:
    """What :func:`status` found: every run's state, and the tasks whose
    final runs wait for their sweep."""
    report: StatusReport
    waiting: List[str]


@dataclass
class ReportResult:
    """:func:`make_report`'s table (``text``) under its ``header``, the
    ``results.json`` of each task that has one, the trainable parameters
    per task."""
    header: str
    text: str
    results: Dict[str, dict]
    params: Dict[str, int]


# ------------------------------------------------------------ the plan --
def _load(spec: Spec, path: str):
    if not osp.isfile(path):
        raise SpecError(f'{path}: no such config')
    return load_task_config(path, spec.method, spec.cfg_options)


def _load_all(spec: Spec) -> List[tuple]:
    """(path, config) of every config given, each checked before any run
    (its method, its place in the table, its batch against the GPUs)."""
    jobs = []
    for path in spec.configs:
        cfg = _load(spec, path)
        split_batch(cfg, spec.processes)
        jobs.append((path, cfg))
    return jobs


def task_folder(spec: Spec, cfg) -> TaskFolder:
    """The folder of the task of ``cfg`` under ``spec``'s work root."""
    where = locate(cfg)
    return TaskFolder.of(spec.work_root, where.benchmark, spec.method,
                         where.backbone, task_of(cfg, where.benchmark))


def run_record(spec: Spec, path: str, cfg, **what) -> dict:
    """What a run is, as its ``result.json`` (and the task's summaries)
    record it: ``what`` (lr, wd, seed...), the method, the config given and
    its task config, the user's options, the total batch and the processes
    it was split over."""
    return dict(what, method=spec.method, config=osp.realpath(path),
                task_config=locate(cfg).task_config,
                cfg_options=dict(spec.cfg_options or {}),
                batch=cfg.train_dataloader.batch_size, gpus=spec.processes)


def sweep_runs(spec: Spec, path: str, task: str, folder: TaskFolder,
               grid) -> List[Run]:
    """The runs of a task's sweep: one per (base lr, wd, lr) of ``grid``."""
    runs = []
    for base_lr, wd, lr in grid:
        run = set_splits(_load(spec, path), 'sweep')
        run.optim_wrapper.optimizer.lr = lr
        run.optim_wrapper.optimizer.weight_decay = wd
        work_dir = folder.sweep_run(base_lr, wd)
        name = osp.basename(work_dir)
        runs.append(Run(task, name, work_dir, run, run_record(
            spec, path, run, base_lr=base_lr, lr=lr, wd=wd,
            grid_digest=grid_digest(run)), f'{task} {name} (lr {lr:g})'))
    return runs


def final_runs(spec: Spec, path: str, task: str, folder: TaskFolder,
               chosen: Chosen) -> List[Run]:
    """The runs of a task's final: one per seed, at the chosen lr and wd."""
    runs = []
    for seed in spec.seeds:
        run = set_splits(_load(spec, path), 'final')
        if chosen.lr is not None:
            run.optim_wrapper.optimizer.lr = chosen.lr
            run.optim_wrapper.optimizer.weight_decay = chosen.wd
        run.randomness = dict(seed=seed)
        work_dir = folder.final_run(seed)
        runs.append(Run(task, osp.basename(work_dir), work_dir, run,
                        run_record(spec, path, run, base_lr=chosen.base_lr,
                                   lr=chosen.lr, wd=chosen.wd, seed=seed),
                        f'{task} seed {seed} ({chosen.run})'))
    return runs


def chosen_lr(spec: Spec, cfg, folder: TaskFolder, task: str,
              stream=None) -> Chosen:
    """The lr and wd of the final runs: ``spec.lr`` as given, the paper's
    (``spec.paper_lr``), else the best base lr of the sweep scaled to this
    config's batch (:func:`~.recipes.scaled_lr`), whatever batch and GPUs
    the sweep ran with. A sweep not complete, or a ``best.json`` older than
    its runs, is a :class:`SweepIncompleteError`."""
    if spec.lr is not None and spec.paper_lr:
        raise SpecError('final: pass --lr or --paper-lr, not both')
    if spec.lr is not None:
        return Chosen(spec.lr, spec.wd, None, 'given')
    if spec.paper_lr:  # the paper's choice for the task (GaPT Table 5)
        lr, wd = paper_lr(spec.method, cfg)
        return Chosen(lr, wd, None, 'paper')
    swept = read_json(folder.best_file)
    family = (swept or {}).get('grid_digest')  # None: any grid's runs
    left = (unfinished_runs(folder.sweep, family)
            if family or swept is None else [])  # (not: an older best.json)
    if left:  # an array still queued or running, a run that failed
        raise SweepIncompleteError(
            f'{task}: the sweep in {folder.sweep} is not complete, not '
            f'finished: {", ".join(left)}; see `tools/protocol.py status`, '
            'then run the sweep command again')
    if family and set(finished_runs(folder.sweep, family)[0]) - \
            set(swept['all']):
        raise SweepIncompleteError(
            f'{task}: {folder.best_file} is older than finished runs of '
            'its sweep; run the sweep command again (it trains nothing and '
            'writes best.json of them all)')
    if swept is None:
        if not spec.dry_run:
            raise SweepIncompleteError(
                f'{folder.best_file} not found: run `sweep` first or pass '
                '--lr and --wd')
        return Chosen(None, None, None, 'best of the sweep')
    best = swept['best']
    base_lr = best['base_lr']
    lr = scaled_lr(base_lr, cfg, spec.method)
    batch = cfg.train_dataloader.batch_size
    how = (f'base {base_lr:g} x batch {batch} / 256'
           if recipe_of(spec.method)['scale_lr'] else 'as given')
    if not math.isclose(lr, best['lr']):
        how += (f'; the sweep trained batch {swept.get("batch", "?")} at lr '
                f'{best["lr"]:g}')
    print(f'# {task}: {best["run"]} of the sweep: lr {lr:g} ({how}), wd '
          f'{best["wd"]:g}', file=stream or sys.stdout)
    return Chosen(lr, best['wd'], base_lr, best['run'],
                  dict(runs=len(swept['all']), grid=swept.get('grid')))


# ----------------------------------------------------------- launching --
def _launch(spec: Spec, stage: str, runs: List[Run],
            stream) -> Optional[Outcome]:
    """Every run not finished yet, by the launcher: here, ``workers`` at
    once, or submitted as one Slurm job array. Every run folder is checked
    first (a run of another config there stops everything before anything
    starts). None in a dry run (the commands printed)."""
    la = spec.launcher
    if la.kind == 'slurm':
        out = submit_slurm(runs, spec.work_root, f'{spec.method}-{stage}',
                           la.partition, spec.gpus_per_run,
                           la.max_concurrent, list(la.slurm_args),
                           dry_run=spec.dry_run, wait=la.wait,
                           stream=stream)
        return None if spec.dry_run else out
    if spec.dry_run:
        dry_run_local(runs, spec.processes, stream)
        return None
    out = run_local(runs, spec.processes, la.workers,
                    Progress(len(runs), stream))
    if la.workers > 1 or out.failed:
        print_summary(out, stream)
    return out


def _finish(tasks: List[TaskRuns], out: Optional[Outcome], stream,
            summarise) -> StageResult:
    """Each task whose runs have all finished gets its summary
    (``summarise(task)``); the others say what is left. Failed runs are a
    :class:`RunsFailedError` (carrying the result) after that."""
    result = StageResult(tasks, out)
    if out is None:
        return result
    for t in tasks:
        t.left = [r.name for r in t.runs if r.work_dir not in out.top1]
        if t.left:
            print(f'{t.task}: {len(t.left)} of {len(t.runs)} runs not '
                  f'finished ({", ".join(t.left)}); `tools/protocol.py '
                  'status` follows them, the same command again once they '
                  "are done writes the task's summary", file=stream)
        else:
            t.summary = summarise(t)
    if out.failed:
        raise RunsFailedError(list(out.failed), result)
    return result


# -------------------------------------------------------------- stages --
def sweep(spec: Spec, stream=None) -> StageResult:
    """Every (lr, wd) of the grid on each config's train / val split;
    once all of a task's runs have finished, its ``sweep/best.json``: the
    best of every finished run of the folder's grid (earlier sweeps of the
    same config included)."""
    stream = stream or sys.stdout
    spec.launcher.check()  # before any config is read
    tasks = []
    for path, cfg in _load_all(spec):
        grid = lr_grid(cfg, spec.method, spec.lrs, spec.wds)
        task, folder = task_of(cfg), task_folder(spec, cfg)
        if spec.dry_run:
            print(f'# {task}: {len(grid)} runs; '
                  f'{describe_recipe(cfg, spec.method, spec.processes)}',
                  file=stream)
            print('# base lr, wd -> lr: ' + ', '.join(
                f'{b:g},{wd:g}->{lr:g}' for b, wd, lr in grid), file=stream)
        tasks.append(TaskRuns(task, folder, path, cfg, sweep_runs(
            spec, path, task, folder, grid)))
    out = _launch(spec, 'sweep', [r for t in tasks for r in t.runs], stream)
    return _finish(tasks, out, stream,
                   lambda t: _write_best(spec, t, out, stream))


def _write_best(spec: Spec, t: TaskRuns, out: Outcome, stream) -> dict:
    """``best.json``: the best of every finished run of this grid in the
    folder (those of earlier sweeps of the same config included, as
    tune_vtab.py's ``find_best_lrwd`` reads every run of its folder), with
    what the grid covered of the method's and the user's options."""
    ran = {r.name: dict(base_lr=r.record['base_lr'], lr=r.record['lr'],
                        wd=r.record['wd'], run=r.name,
                        val_top1=out.top1[r.work_dir]) for r in t.runs}
    family = t.runs[0].record['grid_digest']
    scores, others = finished_runs(t.folder.sweep, family)
    scores.update(ran)  # this sweep's, finished before it recorded a digest
    others = [name for name in others if name not in ran]
    best = pick_best(scores)
    grid = method_grid(spec.method)
    covered = len(set(grid) & {(s['base_lr'], s['wd'])
                               for s in scores.values()})
    summary = run_record(spec, t.config, t.cfg, best=best,
                         all=scores, grid=dict(covered=covered, of=len(grid)),
                         not_counted=others, grid_digest=family)
    write_json(t.folder.best_file, summary)
    print(f'{t.task}: best {best["run"]} (lr {best["lr"]:g}; val top-1 '
          f'{best["val_top1"]:.2f}) of the {len(scores)} finished runs of '
          f'this config in {t.folder.sweep} ({covered} of the {len(grid)} '
          '(lr, wd) of the method\'s grid)', file=stream)
    if others:
        print(f'{t.task}: not counted, finished runs of another config in '
              f'{t.folder.sweep}: {", ".join(others)}', file=stream)
    return read_json(t.folder.best_file)  # as a reader of the file sees it


def final(spec: Spec, stream=None) -> StageResult:
    """Each config at its chosen lr and wd (:func:`chosen_lr`) on its
    train+val / test split, once per seed; once all of a task's runs have
    finished, its ``final/results.json``: the mean and std over the seeds
    and what the runs were."""
    stream = stream or sys.stdout
    spec.launcher.check()  # before any config is read
    jobs = []
    for path, cfg in _load_all(spec):  # every choice before any run
        folder = task_folder(spec, cfg)
        jobs.append((path, cfg, folder,
                     chosen_lr(spec, cfg, folder, task_of(cfg), stream)))
    tasks = []
    for path, cfg, folder, chosen in jobs:
        task = task_of(cfg)
        if spec.dry_run:
            print(f'# {task}: {chosen.run} (lr {chosen.lr}, wd {chosen.wd}),'
                  f' seeds {list(spec.seeds)}; '
                  f'{describe_recipe(cfg, spec.method, spec.processes)}',
                  file=stream)
        tasks.append(TaskRuns(task, folder, path, cfg, final_runs(
            spec, path, task, folder, chosen), chosen=chosen))
    out = _launch(spec, 'final', [r for t in tasks for r in t.runs], stream)
    return _finish(tasks, out, stream,
                   lambda t: _write_results(spec, t, out, stream))


def _write_results(spec: Spec, t: TaskRuns, out: Outcome, stream) -> dict:
    """``results.json``: the final runs' top-1 per seed, mean and std, and
    what they were (the lr and how it was chosen)."""
    res = summarise_seeds({r.record['seed']: out.top1[r.work_dir]
                           for r in t.runs})
    c = t.chosen
    res.update(run_record(spec, t.config, t.cfg, lr=c.lr, wd=c.wd,
                          base_lr=c.base_lr, run=c.run, sweep=c.sweep))
    write_json(t.folder.results_file, res)
    print(f'{t.task}: test top-1 {res["mean"]:.2f} ± {res["std"]:.2f} '
          f'over seeds {res["seeds"]}', file=stream)
    return read_json(t.folder.results_file)  # the seeds as JSON keys


def status(spec: Spec, stage: str = 'sweep', stream=None) -> StatusResult:
    """Per run of the sweeps (``stage='final'``: of the final runs) of the
    configs: done / running / pending / failed, and an ETA. Writes
    nothing."""
    stream = stream or sys.stdout
    runs, waiting = [], []
    for path, cfg in _load_all(spec):
        task, folder = task_of(cfg), task_folder(spec, cfg)
        if stage == 'sweep':
            runs += sweep_runs(spec, path, task, folder,
                               lr_grid(cfg, spec.method, spec.lrs, spec.wds))
        elif (spec.lr is None and not spec.paper_lr
              and not osp.isfile(folder.best_file)):
            waiting.append(task)
            print(f'# {task}: its final runs wait for the sweep (no '
                  f'{folder.best_file})', file=stream)
        else:
            runs += final_runs(spec, path, task, folder,
                               chosen_lr(spec, cfg, folder, task, stream))
    return StatusResult(status_report(runs, stream), waiting)


def make_report(spec: Spec, benchmark: str,
                backbone: str = 'vitb16') -> ReportResult:
    """The final results of ``spec.method`` on every task config of
    ``backbone`` on ``benchmark`` found under ``spec.work_root``, beside
    the paper's (:func:`~.report.report`). Prints nothing."""
    # the parameter count is the analysis package's (layer 4, as this one)
    from ..analysis.params import build_model_on_meta, count_parameters
    if benchmark not in BACKBONE_CONFIGS.get(backbone, {}):
        raise SpecError(
            f'--backbone {backbone} has no {benchmark} configs; {benchmark} '
            'has: ' + ', '.join(b for b, p in BACKBONE_CONFIGS.items()
                                if benchmark in p))
    tasks = list(benchmark_tasks(benchmark))
    results, params = {}, {}
    for path in task_configs(backbone, benchmark):
        cfg = _load(spec, path)
        task = task_of(cfg, benchmark)
        params[task] = count_parameters(build_model_on_meta(cfg))['trainable']
        res = read_json(TaskFolder.of(spec.work_root, benchmark, spec.method,
                                      backbone, task).results_file)
        if res is not None:
            results[task] = res
    header = (f'# {benchmark.upper()} — {spec.method} ({backbone}), '
              f'top-1 %: {len(results)}/{len(tasks)} tasks have results in '
              f'{spec.work_root}')
    return ReportResult(header, report(results, benchmark, spec.method,
                                       params, tasks, backbone),
                        results, params)

