"""What a task's inference asks of its backbone, per toolbox, without
running the toolbox's ``predict``.

A :class:`~.bank.PromptBank` runs the backbones of many tasks in one pass of
the shared ViT (:class:`~mmseg_ivpt.models.multitask.TaskMux`). For that it
must know, before anything runs, which tensors each task's inference feeds
its backbone, and it must finish each task's inference from the features
the shared pass computed. A :class:`TaskAdapter` says both, computed from
the task's model and config:

* :meth:`TaskAdapter.backbone_inputs`: the tensors the toolbox's inference
  gives the backbone, in call order (the whole batch; or, for mmseg's
  sliding window, one crop of every image of the batch per window);
* :meth:`TaskAdapter.finish`: the rest of that inference from the
  backbone's outputs for those tensors (neck, head, stitching, resizing),
  through the model's own public methods (``decode_head.predict``,
  ``postprocess_result``, ``head.predict``).

Both mirror the toolbox's code (mmseg 1.2.2 ``EncoderDecoder.predict`` /
``inference`` / ``whole_inference`` / ``slide_inference`` /
``encode_decode`` / ``extract_feat``; mmpretrain 1.2.0
``ImageClassifier.predict`` / ``extract_feat``), so a model whose class
overrides any of them is refused (:func:`adapter_for`): the bank would not
run what the model runs. An adapter holds the model and nothing per call,
so any number of threads may use one at once.
"""
from typing import List, Sequence, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

#: Features of one backbone call: what its ``forward`` returns.
Feats = Tuple[Tensor, ...]


class AdapterError(ValueError):
    """A task's model cannot be served by the bank's adapters; the message
    names the task and why."""


class TaskAdapter:
    """How the inference of one task uses its backbone (module docstring).

    Args:
        name: the task's name (for messages).
        model: the task's model, in eval mode.
    """

    #: ``'classification'`` or ``'segmentation'``.
    kind = ''
    #: The toolbox class whose inference the adapter mirrors, and the
    #: methods of it that it mirrors (a subclass must not override them).
    mirrors: Tuple[str, ...] = ()

    def __init__(self, name: str, model: nn.Module):
        self.name, self.model = name, model
        base = self.toolbox_class()
        if not isinstance(model, base):
            raise AdapterError(
                f'task {name!r}: the model is {type(model).__name__}; the '
                f'bank runs {self.kind} models built on {base.__name__}')
        changed = [m for m in self.mirrors
                   if getattr(type(model), m) is not getattr(base, m)
                   or m in vars(model)]
        if changed:
            raise AdapterError(
                f'task {name!r}: {type(model).__name__} has its own '
                f'{changed}; the bank runs the inference of '
                f'{base.__module__}.{base.__name__} (docs/bank.md)')

    @staticmethod
    def toolbox_class() -> type:
        raise NotImplementedError

    def backbone_inputs(self, inputs: Tensor, samples: Sequence
                        ) -> List[Tensor]:
        """The tensors the task's inference gives its backbone for the
        preprocessed batch ``inputs`` (B, C, H, W) of one size, in call
        order."""
        raise NotImplementedError

    def finish(self, inputs: Tensor, samples: Sequence,
               feats: Sequence[Feats]) -> list:
        """The task's predictions (its toolbox's data samples, one per
        image) for ``inputs`` and ``samples``, from ``feats``: the backbone's
        outputs for each tensor :meth:`backbone_inputs` gave, in that order.
        ``samples`` receive the predictions (as the toolbox's ``predict``
        does): give samples no other call uses."""
        raise NotImplementedError


class SegmentationAdapter(TaskAdapter):
    """mmseg's ``EncoderDecoder`` with ``test_cfg.mode`` ``'whole'`` (the
    backbone sees the batch) or ``'slide'`` (it sees, window by window,
    the crops ``test_cfg.crop_size`` at ``test_cfg.stride`` of every image;
    the head's logits of the crops are summed into the image and divided
    by how many crops covered each pixel)."""

    kind = 'segmentation'
    mirrors = ('predict', 'inference', 'whole_inference', 'slide_inference',
               'encode_decode', 'extract_feat', 'postprocess_result')

    def __init__(self, name: str, model: nn.Module):
        super().__init__(name, model)
        cfg = model.test_cfg
        self.mode = cfg.get('mode', 'whole') if cfg is not None else 'whole'
        if self.mode not in ('whole', 'slide'):
            raise AdapterError(f'task {name!r}: test_cfg.mode='
                               f'{self.mode!r}; allowed: whole, slide')
        if self.mode == 'slide':
            missing = [k for k in ('crop_size', 'stride') if k not in cfg]
            if missing:
                raise AdapterError(f"task {name!r}: test_cfg.mode='slide' "
                                   f'needs {missing}')
            self.crop = tuple(int(v) for v in cfg['crop_size'])
            self.stride = tuple(int(v) for v in cfg['stride'])

    @staticmethod
    def toolbox_class() -> type:
        from mmseg.models.segmentors import EncoderDecoder
        return EncoderDecoder

    def windows(self, h: int, w: int) -> List[Tuple[int, int, int, int]]:
        """The sliding windows (y1, y2, x1, x2) over an (h, w) input, in
        mmseg's order (rows, then columns); a window at the far edge is
        moved back to end there, one larger than the input is clipped."""
        (hc, wc), (hs, ws) = self.crop, self.stride
        out = []
        for i in range(max(h - hc + hs - 1, 0) // hs + 1):
            for j in range(max(w - wc + ws - 1, 0) // ws + 1):
                y2, x2 = min(i * hs + hc, h), min(j * ws + wc, w)
                out.append((max(y2 - hc, 0), y2, max(x2 - wc, 0), x2))
        return out

    def backbone_inputs(self, inputs, samples):
        if self.mode == 'whole':
            return [inputs]
        return [inputs[:, :, y1:y2, x1:x2]
                for y1, y2, x1, x2 in self.windows(*inputs.shape[-2:])]

    def _decode(self, feats: Feats, metas: List[dict]) -> Tensor:
        """``encode_decode`` after the backbone: the neck, then the decode
        head's logits resized to the input (B, K, h, w)."""
        model = self.model
        x = model.neck(feats) if model.with_neck else feats
        return model.decode_head.predict(x, metas, model.test_cfg)

    def finish(self, inputs, samples, feats):
        metas = [s.metainfo for s in samples]  # fresh dicts
        if self.mode == 'whole':
            (f, ) = feats
            logits = self._decode(f, metas)
        else:
            b, _, h, w = inputs.shape
            logits = inputs.new_zeros((b, self.model.out_channels, h, w))
            count = inputs.new_zeros((b, 1, h, w))
            windows = self.windows(h, w)
            if len(windows) != len(feats):
                raise ValueError(f'task {self.name!r}: {len(feats)} '
                                 f'features for {len(windows)} windows')
            for (y1, y2, x1, x2), f in zip(windows, feats):
                # the crop's size tells decode_head.predict where to resize
                metas[0]['img_shape'] = inputs[:, :, y1:y2, x1:x2].shape[2:]
                crop = self._decode(f, metas)
                logits += F.pad(crop, (x1, w - x2, y1, h - y2))
                count[:, :, y1:y2, x1:x2] += 1
            logits = logits / count
        return self.model.postprocess_result(logits, list(samples))


class ClassificationAdapter(TaskAdapter):
    """mmpretrain's ``ImageClassifier``: the backbone sees the batch; the
    neck (if any) and the head's ``predict`` (scores and labels) finish."""

    kind = 'classification'
    mirrors = ('predict', 'extract_feat')

    @staticmethod
    def toolbox_class() -> type:
        from mmpretrain.models.classifiers import ImageClassifier
        return ImageClassifier

    def backbone_inputs(self, inputs, samples):
        return [inputs]

    def finish(self, inputs, samples, feats):
        (f, ) = feats
        model = self.model
        x = model.neck(f) if model.with_neck else f
        return model.head.predict(x, list(samples))


#: scope -> the adapter of its models.
ADAPTERS = {'mmseg': SegmentationAdapter, 'mmpretrain': ClassificationAdapter}


def adapter_for(scope: str, name: str, model: nn.Module) -> TaskAdapter:
    """The adapter of task ``name``'s ``model`` built in ``scope``
    (``'mmseg'`` or ``'mmpretrain'``); :class:`AdapterError` if the bank
    cannot run that model's inference."""
    if scope not in ADAPTERS:
        raise AdapterError(f'task {name!r}: scope {scope!r}; allowed: '
                           f'{sorted(ADAPTERS)}')
    return ADAPTERS[scope](name, model)
