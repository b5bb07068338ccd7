"""The JSON form of a bank's prediction: what ``tools/multitask_infer.py``
writes into ``predictions.json`` (docs/bank.md), one function for every
program that reports a prediction."""
import io
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np


class TaskInfo(NamedTuple):
    """What a prediction's JSON needs of its task."""

    name: str
    #: ``'classification'`` or ``'segmentation'``.
    kind: str
    #: The class names the task's checkpoint recorded (None: unknown).
    classes: Optional[Sequence[str]]
    #: Segmentation: what a mask file adds to the class index (1 where the
    #: task's data set has ``reduce_zero_label``, else 0); classification:
    #: None.
    mask_offset: Optional[int]
    #: (height, width) of the images the task's ViT is built for (its
    #: ``img_size``: what the test pipeline resizes or crops to, or the
    #: sliding window's crop); None: unknown.
    input_size: Optional[Tuple[int, int]] = None


def label_mask(info: TaskInfo, pred) -> np.ndarray:
    """The mask file's values (H, W) of a segmentation prediction ``pred``
    (an mmseg ``SegDataSample``) of task ``info``: what ``tools/test.py
    --out`` writes for the task's config, the class index of each pixel
    + ``info.mask_offset``."""
    if info.kind != 'segmentation':
        raise ValueError(f'task {info.name!r} is a {info.kind} task; only a '
                         f'segmentation task has a label mask')
    return pred.pred_sem_seg.data[0].cpu().numpy() + info.mask_offset


def mask_png(mask: np.ndarray) -> bytes:
    """A label mask (H, W) as PNG bytes: 8-bit if every value is below
    256, else 16-bit."""
    from PIL import Image
    dtype = np.uint8 if mask.max(initial=0) < 256 else np.uint16
    buf = io.BytesIO()
    Image.fromarray(mask.astype(dtype)).save(buf, format='PNG')
    return buf.getvalue()


def prediction_json(info: TaskInfo, pred, image: Optional[str] = None,
                    mask: Optional[str] = None) -> dict:
    """The JSON entry of one prediction ``pred`` of task ``info``, keys in
    this order: ``image`` (if given), ``task``, ``kind``; then for a
    classification (mmpretrain ``DataSample``) ``pred_label``,
    ``pred_score`` (the score of that label), ``pred_class`` (its name,
    None without class names); for a segmentation (mmseg
    ``SegDataSample``) ``mask`` (if given: where the caller put
    :func:`mask_png` of :func:`label_mask`, e.g. the file's path in
    ``predictions.json``), ``height``, ``width`` and ``classes_present``
    (the names of the predicted classes, or their indices without
    names)."""
    e = {} if image is None else dict(image=image)
    e.update(task=info.name, kind=info.kind)
    classes = info.classes
    if info.kind == 'classification':
        label = int(pred.pred_label.item())
        e.update(pred_label=label, pred_score=float(pred.pred_score[label]),
                 pred_class=classes[label] if classes else None)
        return e
    seg = pred.pred_sem_seg.data.cpu().numpy()
    if mask is not None:
        e['mask'] = mask
    present = sorted(int(c) for c in np.unique(seg))
    e.update(height=int(seg.shape[-2]), width=int(seg.shape[-1]),
             classes_present=[classes[c] if classes else c for c in present])
    return e


def error_json(task: str, error: str, image: Optional[str] = None) -> dict:
    """The JSON entry of an image that got no prediction: ``image`` (if
    given), ``task`` and ``error`` (what is wrong, naming the image)."""
    e = {} if image is None else dict(image=image)
    e.update(task=task, error=error)
    return e


__all__ = ['TaskInfo', 'error_json', 'label_mask', 'mask_png',
           'prediction_json']
