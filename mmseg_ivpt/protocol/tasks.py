"""Which configs the protocol runs: the table of backbones and their task
configs per benchmark, and the lookup of a config's benchmark and backbone
from its path in that table (never guessed from what the config holds).

A config that is not in the table but inherits from one of its task
configs (``_base_``, followed file by file, e.g. a copy of a task config
with another ``data_root``) is located as that task config; any other is
an :class:`UnlistedConfigError` that lists the table.
"""
import ast
import functools
import glob
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Tuple

from .errors import UnlistedConfigError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: backbone -> benchmark -> glob of its task configs, from the repository
#: root (``**``: at any depth below the benchmark's folder). The work dirs
#: of a backbone other than ViT-B/16 are ``<method>-<backbone>``.
BACKBONE_CONFIGS: Dict[str, Dict[str, str]] = {
    'vitb16': dict(vtab='configs/vtab/**/ivpt_vitb16_*.py',
                   fgvc='configs/fgvc/**/ivpt_vitb16_*.py'),
    'vitl16': dict(vtab='configs/vtab/**/ivpt_vitl16_*.py'),
    'vith14': dict(vtab='configs/vtab/**/ivpt_vith14_*.py'),
    'swinb': dict(vtab='configs/vtab/**/ivpt_swinb_*.py',
                  fgvc='configs/fgvc/**/ivpt_swinb_*.py'),
    # foundation encoders no paper ran (docs/encoders.md)
    'dinov2-vitb14': dict(vtab='configs/vtab/**/ivpt_dinov2-vitb14_*.py',
                          fgvc='configs/fgvc/**/ivpt_dinov2-vitb14_*.py'),
    'clip-vitb16': dict(vtab='configs/vtab/**/ivpt_clip-vitb16_*.py',
                        fgvc='configs/fgvc/**/ivpt_clip-vitb16_*.py'),
}
#: backbones of the table that no paper reports (the report says so)
NO_PAPER_BACKBONES: Dict[str, str] = {
    'dinov2-vitb14': 'DINOv2 ViT-B/14',
    'clip-vitb16': "CLIP ViT-B/16 (OpenAI's image tower)",
}
#: the dataset field that names the task, per benchmark (``VTAB1k.task``,
#: ``FGVC.name``)
TASK_FIELD = dict(vtab='task', fgvc='name')


class ConfigLocation(NamedTuple):
    benchmark: str  #: 'vtab' or 'fgvc'
    backbone: str  #: a key of BACKBONE_CONFIGS
    task_config: str  #: the table's file: the path itself, or its base


def task_configs(backbone: str, benchmark: str) -> List[str]:
    """The task configs of ``backbone`` on ``benchmark`` (sorted paths;
    empty where the table has none)."""
    pattern = BACKBONE_CONFIGS.get(backbone, {}).get(benchmark)
    if pattern is None:
        return []
    return sorted(glob.glob(osp.join(ROOT, pattern), recursive=True))


@functools.lru_cache(maxsize=None)
def _listed() -> Dict[str, Tuple[str, str]]:
    """realpath -> (benchmark, backbone) of every config of the table."""
    return {osp.realpath(p): (bench, backbone)
            for backbone, benches in BACKBONE_CONFIGS.items()
            for bench in benches for p in task_configs(backbone, bench)}


def describe_table() -> str:
    return '; '.join(
        f'{backbone}: ' + ', '.join(f'{b} {p}' for b, p in benches.items())
        for backbone, benches in BACKBONE_CONFIGS.items())


def _bases(path: str) -> List[str]:
    """The local files of ``path``'s ``_base_`` (``scope::`` bases of other
    packages are never task configs)."""
    try:
        with open(path) as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_'
                for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            names = [value] if isinstance(value, str) else list(value)
            return [osp.join(osp.dirname(path), n) for n in names
                    if isinstance(n, str) and '::' not in n]
    return []


def _find(path: str, seen: set) -> List[ConfigLocation]:
    real = osp.realpath(path)
    if real in seen:
        return []
    seen.add(real)
    if real in _listed():
        return [ConfigLocation(*_listed()[real], real)]
    found = []
    for base in _bases(real):
        found += [loc for loc in _find(base, seen) if loc not in found]
    return found


def locate_config(path: str) -> ConfigLocation:
    """(benchmark, backbone, task config) of the config at ``path``."""
    found = _find(path, set())
    if len(found) == 1:
        return found[0]
    if not found:
        raise UnlistedConfigError(
            f'{path} is no task config of the protocol and inherits '
            'from none, so its benchmark and backbone are unknown; the '
            'table (mmseg_ivpt/protocol/tasks.py BACKBONE_CONFIGS) has '
            f'{describe_table()}')
    raise UnlistedConfigError(
        f'{path} inherits from several task configs: ' + ', '.join(
            f'{osp.relpath(loc.task_config, ROOT)} ({loc.benchmark}, '
            f'{loc.backbone})' for loc in found))


def locate(cfg) -> ConfigLocation:
    """:func:`locate_config` of a parsed config (``Config.filename``)."""
    path: Optional[str] = getattr(cfg, 'filename', None)
    if not path:
        raise UnlistedConfigError(
            'a config built in memory has no path, so its benchmark and '
            'backbone are unknown; load a task config from a file')
    return locate_config(path)


def backbone_name(cfg) -> str:
    """The table's name of a config's backbone (``vitb16``, ``vitl16``,
    ``vith14``, ``swinb``), from its path."""
    return locate(cfg).backbone


def task_of(cfg, benchmark: Optional[str] = None) -> str:
    """The config's task (its dataset's ``task`` or ``name``)."""
    bench = benchmark or locate(cfg).benchmark
    return cfg.train_dataloader.dataset[TASK_FIELD[bench]]
