"""Data sets: the generated shapes set (mmseg) and VTAB-1k / FGVC
(mmpretrain). Each part is there when its toolbox is installed."""
from importlib.util import find_spec

__all__ = []
if find_spec('mmseg') is not None:
    from .shapes import ShapesSegDataset, generate_shapes_dataset  # noqa
    __all__ += ['ShapesSegDataset', 'generate_shapes_dataset']
if find_spec('mmpretrain') is not None:
    from .classification import (FGVC, FGVC_DATASETS, VTAB1k,  # noqa
                                 VTAB_TASKS, DataError)
    __all__ += ['FGVC', 'FGVC_DATASETS', 'VTAB1k', 'VTAB_TASKS', 'DataError']
