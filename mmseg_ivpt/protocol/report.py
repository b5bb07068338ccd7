"""The report: our results per task (mean ± std over seeds) beside the
paper's (:mod:`.paper`), in the layout of the paper's Table 1 / 9 / 6."""
from typing import Dict, List, Optional

from .paper import VTAB_GROUPS, paper_row


def _fmt(x: Optional[float], nd: int = 1) -> str:
    return '-' if x is None else f'{x:.{nd}f}'


def report(results: Dict[str, dict], bench: str, method: str,
           params: Dict[str, int], tasks: List[str],
           backbone: str = 'vitb16') -> str:
    """Markdown table: per task ours (mean ± std over seeds) and the
    paper's, group means, mean parameters."""
    ref = paper_row(bench, backbone, method)
    paper, paper_groups = ref.tasks, ref.groups
    ours = [results.get(t, {}).get('mean') for t in tasks]
    rows = ['| task | ours | std | seeds | paper |',
            '|---|---:|---:|---:|---:|']

    def mean(xs):  # None unless every value is there
        return None if not xs or any(x is None for x in xs) else \
            sum(xs) / len(xs)

    groups = VTAB_GROUPS if bench == 'vtab' else (('FGVC', len(tasks)), )
    start, group_means = 0, []
    for gi, (g, n) in enumerate(groups):
        for i in range(start, start + n):
            r = results.get(tasks[i], {})
            rows.append(f'| {tasks[i]} | {_fmt(ours[i])} | '
                        f'{_fmt(r.get("std"), 2)} | '
                        f'{len(r.get("seeds", []))} | '
                        f'{_fmt(paper[i] if paper else None)} |')
        ours_g = mean(ours[start:start + n])
        paper_g = mean(paper[start:start + n]) if paper else (
            paper_groups[gi] if paper_groups else None)
        group_means.append((ours_g, paper_g))
        rows.append(f'| **{g} mean** | {_fmt(ours_g, 2)} | | | '
                    f'{_fmt(paper_g, 2)} |')
        start += n
    if bench == 'vtab':
        ours_m = mean([o for o, _ in group_means])
        paper_m = mean([p for _, p in group_means])
        rows.append(f'| **group mean** | {_fmt(ours_m, 2)} | | | '
                    f'{_fmt(paper_m, 2)} |')
    counted = [params[t] for t in tasks if t in params]
    mp = sum(counted) / len(counted) / 1e6 if counted else None
    rows.append(f'| **mean params (M)** | {_fmt(mp, 3)} | | | '
                f'{_fmt(ref.params, 2)} |')
    return '\n'.join(rows)
