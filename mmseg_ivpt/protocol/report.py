"""The report: our results per task (mean ± std over seeds) beside the
paper's (:mod:`.paper`), in the layout of the paper's Table 1 / 9 / 6. A run
whose recipe is not the paper's (:func:`recipe_notes`: the user's options,
a config other than the task config, an lr given by hand or chosen over part
of the grid) is marked ``[n]`` in the ``differs`` column, and the notes under
the table say how it differs."""
import os.path as osp
from typing import Dict, List, Optional

from .paper import VTAB_GROUPS, paper_row
from .tasks import NO_PAPER_BACKBONES, ROOT

#: option keys that say where the data are, not what the recipe is
LOCATION_KEYS = ('data_root', )


def _fmt(x: Optional[float], nd: int = 1) -> str:
    return '-' if x is None else f'{x:.{nd}f}'


def _rel(path: Optional[str]) -> str:
    if not path:
        return '?'
    rel = osp.relpath(path, ROOT)
    return path if rel.startswith('..') else rel


def recipe_notes(res: dict) -> List[str]:
    """How the final runs of ``res`` (a task's ``final/results.json``)
    differ from the paper's recipe, one note each; none when they ran the
    method's recipe on the task config itself with the lr and wd of the
    method's whole grid. The options in ``LOCATION_KEYS`` (where the data
    are) do not count."""
    if 'cfg_options' not in res:
        return ['results written before they recorded their options and '
                'config: recipe unknown']
    notes = []
    options = {k: v for k, v in res['cfg_options'].items()
               if k.split('.')[-1] not in LOCATION_KEYS}
    if options:
        notes.append('--cfg-options ' + ' '.join(
            f'{k}={v}' for k, v in options.items()))
    if res.get('config') != res.get('task_config'):
        notes.append(f'config {_rel(res.get("config"))}, not the task '
                     f'config {_rel(res.get("task_config"))}')
    swept = res.get('sweep')
    grid = (swept or {}).get('grid') or {}
    if swept is None and res.get('run') == 'paper':
        notes.append("lr and wd of the method's paper for the task (final "
                     '--paper-lr: GaPT Table 5), not chosen by a sweep here')
    elif swept is None:
        notes.append('lr and wd given (final --lr), not chosen by a sweep')
    elif grid.get('covered') is None or grid['covered'] < grid['of']:
        notes.append(f'lr and wd chosen over {grid.get("covered", "?")} of '
                     f'the {grid.get("of", "?")} (lr, wd) of the method\'s '
                     'grid')
    return notes


def report(results: Dict[str, dict], bench: str, method: str,
           params: Dict[str, int], tasks: List[str],
           backbone: str = 'vitb16') -> str:
    """Markdown table: per task ours (mean ± std over seeds) and the
    paper's, group means, mean parameters; a ``differs`` column marks the
    rows whose recipe is not the paper's, with the notes under the table."""
    ref = paper_row(bench, backbone, method)
    paper, paper_groups = ref.tasks, ref.groups
    ours = [results.get(t, {}).get('mean') for t in tasks]
    notes: Dict[str, List[str]] = {}  # note -> tasks, in order of numbering
    marks = []
    for t in tasks:
        found = recipe_notes(results[t]) if t in results else []
        for n in found:
            notes.setdefault(n, []).append(t)
        marks.append({list(notes).index(n) + 1 for n in found})
    rows = ['| task | ours | std | seeds | paper | differs |',
            '|---|---:|---:|---:|---:|---|']

    def mean(xs):  # None unless every value is there
        return None if not xs or any(x is None for x in xs) else \
            sum(xs) / len(xs)

    def marked(ns):  # the `differs` cell, with the bars around it
        return '| ' + ''.join(f'[{n}] ' for n in sorted(ns)) + '|'

    groups = VTAB_GROUPS if bench == 'vtab' else (('FGVC', len(tasks)), )
    start, group_means = 0, []
    for gi, (g, n) in enumerate(groups):
        for i in range(start, start + n):
            r = results.get(tasks[i], {})
            rows.append(f'| {tasks[i]} | {_fmt(ours[i])} | '
                        f'{_fmt(r.get("std"), 2)} | '
                        f'{len(r.get("seeds", []))} | '
                        f'{_fmt(paper[i] if paper else None)} '
                        f'{marked(marks[i])}')
        ours_g = mean(ours[start:start + n])
        paper_g = mean(paper[start:start + n]) if paper else (
            paper_groups[gi] if paper_groups else None)
        group_means.append((ours_g, paper_g))
        rows.append(f'| **{g} mean** | {_fmt(ours_g, 2)} | | | '
                    f'{_fmt(paper_g, 2)} '
                    f'{marked(set().union(*marks[start:start + n]))}')
        start += n
    if bench == 'vtab':
        ours_m = mean([o for o, _ in group_means])
        paper_m = mean([p for _, p in group_means])
        rows.append(f'| **group mean** | {_fmt(ours_m, 2)} | | | '
                    f'{_fmt(paper_m, 2)} {marked(set().union(*marks))}')
    counted = [params[t] for t in tasks if t in params]
    mp = sum(counted) / len(counted) / 1e6 if counted else None
    rows.append(f'| **mean params (M)** | {_fmt(mp, 3)} | | | '
                f'{_fmt(ref.params, 2)} | |')
    if backbone in NO_PAPER_BACKBONES:
        rows += ['', f'No paper reports {method} on '
                 f'{NO_PAPER_BACKBONES[backbone]} ({backbone}): there are no '
                 'paper numbers to set beside ours (the paper column is '
                 'empty; docs/encoders.md).']
    if notes:
        rows += ['', "Marked rows ran another recipe than the paper's; their "
                 "numbers are not the paper's setting:"]
        rows += [f'[{i}] {note} ({", ".join(ts)})'
                 for i, (note, ts) in enumerate(notes.items(), 1)]
    return '\n'.join(rows)
