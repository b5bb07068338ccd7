"""Data sets: the generated shapes set (mmseg) and VTAB-1k / FGVC
(mmpretrain), the check of segmentation annotations as they load (mmseg),
and what a data set config is for (:mod:`.tasks`, toolbox-free). Each part
is there when its toolbox is installed."""
from importlib.util import find_spec

from .tasks import DataError, DataTask, dataset_task, reduce_zero_label_of  # noqa

__all__ = ['DataError', 'DataTask', 'dataset_task', 'reduce_zero_label_of']
if find_spec('mmseg') is not None:
    from .seg_checks import CheckSegAnnotation  # noqa
    from .shapes import ShapesSegDataset, generate_shapes_dataset  # noqa
    __all__ += ['CheckSegAnnotation', 'ShapesSegDataset',
                'generate_shapes_dataset']
if find_spec('mmpretrain') is not None:
    from .classification import (FGVC, FGVC_DATASETS, VTAB1k,  # noqa
                                 VTAB_TASKS)
    __all__ += ['FGVC', 'FGVC_DATASETS', 'VTAB1k', 'VTAB_TASKS']
