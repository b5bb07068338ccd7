"""The VTAB-1k / FGVC protocol behind tools/protocol.py, as the reference
code runs it (KMnP/vpt ``tune_vtab.py``, ``tune_fgvc.py``, ``src/solver/``;
ryongithub/GatedPromptTuning ``run.sh`` for GaPT):

* ``sweep``: every (lr, wd) of the method's grid, trained on train800 and
  evaluated on val200 (FGVC: train / val); the best pair of every finished
  run of the folder's grid is kept, ties going to the smaller lr
  (``tune_vtab.find_best_lrwd``, which reads every run of its folder).
* ``final``: that pair (its base lr scaled to the final batch) trained on
  train800val200 and tested (FGVC: trained on train, tested), once per seed
  (VPT's five seeds).
* ``report``: the paper's Table 1 / Table 9 / Table 6 layout, ours beside
  the paper's, runs of another recipe marked (:func:`.report.recipe_notes`).

A library: the stages are functions of a :class:`Spec` (:mod:`.stages`:
:func:`sweep`, :func:`final`, :func:`status`, :func:`make_report`) that
return what they did and raise the named errors of :mod:`.errors`;
``tools/protocol.py`` parses a command line into a :class:`Spec` and
prints. Its parts: :mod:`.stages` (the stages), :mod:`.recipes` (seeds,
grids, recipes, methods, the per-task settings of every method in one form,
:func:`task_settings`, and applying a method to a task config),
:mod:`.tasks` (the table of backbones and their task configs; a config's
benchmark and backbone from its path), :mod:`.paper` (the paper's numbers,
from ``configs/{vtab,fgvc}/metafile.yml``), :mod:`.runs` (one training run:
digest, the train command, :func:`~.runs.train_run`), :mod:`.folder` (every
file and folder name of a task's and a run's folder, :class:`TaskFolder`;
the one reader of a run's ``result.json``; what a run folder says: done /
running / pending / failed; the step a Slurm array task runs),
:mod:`.launch` (many runs at once: the local pool, one Slurm job array,
``status``), :mod:`.report` (ours beside the paper's), :mod:`.errors`.
"""
from .errors import (
                     BatchError,
                     LaunchError,
                     MethodError,
                     PaperTableError,
                     ProtocolError,
                     RunConflictError,
                     RunsFailedError,
                     SpecError,
                     SweepIncompleteError,
                     UnlistedConfigError,
)
from .folder import RESULT, RunResult, TaskFolder, read_result
from .paper import (
                     METAFILES,
                     VTAB_GROUPS,
                     PaperRow,
                     benchmark_tasks,
                     paper_row,
                     paper_rows,
)
from .recipes import (
                     FINETUNE_LRS,
                     METHODS,
                     PROMPT_LRS,
                     RECIPES,
                     SSL,
                     VPT_SEEDS,
                     VPT_TOKENS,
                     VPT_WDS,
                     TaskSetting,
                     apply_method,
                     load_task_config,
                     lr_grid,
                     method_grid,
                     pick_best,
                     recipe_of,
                     scaled_lr,
                     set_splits,
                     task_settings,
)
from .report import recipe_notes, report
from .runs import (
                     TRAIN_MODULE,
                     Progress,
                     Run,
                     config_digest,
                     finished_runs,
                     grid_digest,
                     split_batch,
                     summarise_seeds,
                     train_command,
                     train_env,
                     train_run,
)
from .stages import (
                     Launcher,
                     ReportResult,
                     Spec,
                     StageResult,
                     StatusResult,
                     TaskRuns,
                     final,
                     make_report,
                     status,
                     sweep,
)
from .tasks import (
                     BACKBONE_CONFIGS,
                     ConfigLocation,
                     backbone_name,
                     locate,
                     locate_config,
                     task_configs,
                     task_of,
)

__all__ = [
    'BatchError', 'LaunchError', 'MethodError', 'PaperTableError',
    'ProtocolError', 'RunConflictError', 'RunsFailedError', 'SpecError',
    'SweepIncompleteError', 'UnlistedConfigError', 'RESULT', 'RunResult',
    'TaskFolder', 'read_result', 'METAFILES', 'VTAB_GROUPS', 'PaperRow',
    'benchmark_tasks', 'paper_row', 'paper_rows', 'FINETUNE_LRS', 'METHODS',
    'PROMPT_LRS', 'RECIPES', 'SSL', 'VPT_SEEDS', 'VPT_TOKENS', 'VPT_WDS',
    'TaskSetting', 'apply_method', 'load_task_config', 'lr_grid',
    'method_grid', 'pick_best', 'recipe_of', 'scaled_lr', 'set_splits',
    'task_settings', 'recipe_notes', 'report', 'TRAIN_MODULE', 'Progress',
    'Run', 'config_digest', 'finished_runs', 'grid_digest', 'split_batch',
    'summarise_seeds', 'train_command', 'train_env', 'train_run', 'Launcher',
    'ReportResult', 'Spec', 'StageResult', 'StatusResult', 'TaskRuns',
    'final', 'make_report', 'status', 'sweep', 'BACKBONE_CONFIGS',
    'ConfigLocation', 'backbone_name', 'locate', 'locate_config',
    'task_configs', 'task_of'
]
