"""A segmentation annotation that does not fit its data set is an error
naming the file, as it is loaded: a mask of another size than its image, a
mask with colour channels, a label outside the data set's classes. Without
this check such a mask reaches the loss (``IndexError: Target 6 is out of
bounds``) or the metric (an ``IndexError`` of mismatched shapes, or labels
outside the classes silently left out of the IoU), naming no file.

``tools/train.py`` and ``tools/test.py`` put :class:`CheckSegAnnotation`
after every ``LoadAnnotations`` of the pipelines they run
(:func:`mmseg_ivpt.engine.checks.check_data_fits` says which, with which
classes; :func:`mmseg_ivpt.engine.config_repair.arm_annotation_checks`
puts them in); a config may also list
it itself.
"""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from .tasks import DataError


@TRANSFORMS.register_module()
class CheckSegAnnotation(BaseTransform):
    """Checks the ``gt_seg_map`` that ``LoadAnnotations`` just loaded;
    passes the results through unchanged (nothing to check without one:
    inference pipelines).

    Args:
        num_classes: the data set's number of classes; labels (after
            ``reduce_zero_label``) must be in ``0..num_classes-1`` or
            ``ignore_index``.
        ignore_index: the label the loss and the metric ignore (mmseg's
            255; ``reduce_zero_label`` maps the files' 0 to it).
        dataset: how messages name the data set (its config key).
    """

    def __init__(self, num_classes: int, ignore_index: int = 255,
                 dataset: Optional[str] = None):
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.dataset = dataset

    def transform(self, results: dict) -> dict:
        seg = results.get('gt_seg_map')
        if seg is None:
            return results
        path = results.get('seg_map_path') or 'an annotation'
        where = f' ({self.dataset})' if self.dataset else ''
        if seg.ndim != 2:
            raise DataError(
                f'{path}{where}: the mask has shape {tuple(seg.shape)}; an '
                f'annotation holds one class index per pixel (a single-'
                f'channel PNG), not colours')
        shape = results.get('ori_shape') or (
            results['img'].shape[:2] if 'img' in results else None)
        if shape is not None and tuple(seg.shape) != tuple(shape[:2]):
            img = results.get('img_path') or 'its image'
            raise DataError(
                f'{path}{where}: the mask is {seg.shape[0]}x{seg.shape[1]} '
                f'(HxW) but {img} is {shape[0]}x{shape[1]}; a mask must '
                f'have its image\'s size')
        values = np.unique(seg)
        bad = values[(values >= self.num_classes) &
                     (values != self.ignore_index)]
        if bad.size:
            k = self.num_classes
            if results.get('reduce_zero_label'):
                raw = ', '.join(str(int(v) + 1) for v in bad[:8])
                how = (f'file value(s) {raw}: with reduce_zero_label the '
                       f'files hold 0 for "not labelled" and class c as '
                       f'c + 1, so 0..{k}')
            else:
                raw = ', '.join(str(int(v)) for v in bad[:8])
                how = (f'label value(s) {raw}: the files hold class c as c, '
                       f'so 0..{k - 1}')
            raise DataError(
                f'{path}{where}: {how} (or {self.ignore_index}, ignored) '
                f'for the data set\'s {k} classes. Fix the mask, or give '
                f'the data set the classes it has (its metainfo, '
                f'reduce_zero_label) and the heads their num_classes')
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')
