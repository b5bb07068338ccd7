"""The iVPT paper's numbers, read from ``configs/vtab/metafile.yml`` and
``configs/fgvc/metafile.yml`` (mmpretrain's model-index format; each file's
header says how its models are laid out): Tables 1 and 9 (main), 11
(structures), 12 (AR), 13 and 5 (backbones), 14 and 6 (self-supervised,
with GaPT's group means).

A model of a metafile is one (method, backbone, task) with its top-1 on the
dataset ``<benchmark title> <task>``; a row the paper gives only as VTAB-1k
group means is one model with results on ``VTAB-1k Natural``, ``...
Specialized``, ``... Structured`` and ``VTAB-1k`` (their mean).
"""
import functools
import os.path as osp
from typing import Dict, NamedTuple, Optional, Tuple

from .errors import PaperTableError
from .tasks import ROOT

METAFILES = dict(vtab=osp.join('configs', 'vtab', 'metafile.yml'),
                 fgvc=osp.join('configs', 'fgvc', 'metafile.yml'))
#: the benchmark's name in the metafiles' dataset names
TITLES = dict(vtab='VTAB-1k', fgvc='FGVC')
#: VTAB-1k's groups and their sizes, in the task order
VTAB_GROUPS = (('Natural', 7), ('Specialized', 4), ('Structured', 8))
METRIC = 'Top 1 Accuracy'


class PaperRow(NamedTuple):
    """One row of a paper table: per-task top-1 (the benchmark's task
    order), mean trainable parameters (M), VTAB-1k group means (Natural,
    Specialized, Structured, mean) where the paper gives only those."""
    tasks: Optional[Tuple[float, ...]] = None
    params: Optional[float] = None
    groups: Optional[Tuple[float, ...]] = None


def benchmark_tasks(bench: str) -> Tuple[str, ...]:
    from ..datasets import FGVC_DATASETS, VTAB_TASKS
    return tuple(VTAB_TASKS if bench == 'vtab' else FGVC_DATASETS)


def _datasets(bench: str) -> Dict[str, Tuple[str, int]]:
    """dataset name -> ('tasks', index) or ('groups', index)."""
    title = TITLES[bench]
    names = {f'{title} {t}': ('tasks', i)
             for i, t in enumerate(benchmark_tasks(bench))}
    if bench == 'vtab':
        groups = [f'{title} {g}' for g, _ in VTAB_GROUPS] + [title]
        names.update({g: ('groups', i) for i, g in enumerate(groups)})
    return names


@functools.lru_cache(maxsize=None)
def paper_rows(bench: str) -> Dict[Tuple[str, str], PaperRow]:
    """(backbone, method) -> :class:`PaperRow`, from ``bench``'s
    metafile."""
    import yaml
    path = osp.join(ROOT, METAFILES[bench])
    try:
        with open(path) as f:
            index = yaml.safe_load(f)
        models = index['Models']
    except (OSError, yaml.YAMLError, KeyError, TypeError) as e:
        raise PaperTableError(f'{path}: not a model index with `Models` '
                              f'({type(e).__name__}: {e})') from None
    datasets, size = _datasets(bench), dict(
        tasks=len(benchmark_tasks(bench)), groups=len(VTAB_GROUPS) + 1)
    found: Dict[Tuple[str, str], dict] = {}
    for model in models:
        name = model.get('Name', '?') if isinstance(model, dict) else '?'
        try:
            meta = model['Metadata']
            key = (meta['Backbone'], meta['Method'])
            row = found.setdefault(key, dict(tasks={}, groups={},
                                             params=set()))
            if 'Parameters' in meta:
                row['params'].add(meta['Parameters'] / 1e6)
            for res in model['Results']:
                kind, i = datasets[res['Dataset']]
                if i in row[kind]:
                    raise PaperTableError(f'{path}: model {name}: '
                                          f'{res["Dataset"]} twice')
                row[kind][i] = float(res['Metrics'][METRIC])
        except PaperTableError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise PaperTableError(
                f'{path}: model {name}: needs Metadata Method and Backbone '
                f'and Results of a known Dataset with Metrics {METRIC!r} '
                f'({type(e).__name__}: {e})') from None
    rows = {}
    for (backbone, method), row in found.items():
        parts = {}
        for kind in ('tasks', 'groups'):
            got = row[kind]
            if got and len(got) != size[kind]:
                raise PaperTableError(
                    f'{path}: {method} on {backbone}: {len(got)} of the '
                    f'{size[kind]} {kind} have a result')
            parts[kind] = tuple(got[i] for i in range(size[kind])) \
                if got else None
        if len(row['params']) > 1:
            raise PaperTableError(f'{path}: {method} on {backbone}: '
                                  f'Parameters differ: {row["params"]}')
        params = next(iter(row['params']), None)
        rows[backbone, method] = PaperRow(parts['tasks'], params,
                                          parts['groups'])
    return rows


def paper_row(bench: str, backbone: str, method: str) -> PaperRow:
    """The paper's row of ``method`` on ``backbone`` (empty where the paper
    has none)."""
    return paper_rows(bench).get((backbone, method), PaperRow())
