"""What the neck of a segmentation config costs beside its encoder and its
head: parameters and FLOPs of each part for one image at the crop size.

    python tools/analysis/pyramid_cost.py \
        configs/mask2former_ivpt_dinov2-vitl14-reg4_ade20k.py

The model is built with random weights on the CPU (costs do not depend on
them) and each part traced by mmengine's FLOP counter with the project's
attention rule (``mmseg_ivpt.analysis.complexity.count_flops``; one
multiply-add = one FLOP): the backbone on a (1, 3, H, W) image, the neck
on the backbone's maps, the decode head (Mask2Former's takes the data
samples too) on the neck's maps. The last row is the parameter-free
alternative Rein uses (bilinear resampling of the four maps by 4, 2, 1,
0.5 inside its backbone): no parameters; its FLOPs are the interpolation's,
which the counter does not count.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
from tools._venv import ensure  # noqa: E402

ensure()  # the repository's .venv unless this python has the packages


class HeadForward:
    """A decode head as a module of the maps alone (what the tracer
    needs); Mask2Former's forward takes the data samples too."""

    @staticmethod
    def of(head, shape):
        import inspect

        import torch
        from mmseg.structures import SegDataSample
        samples = 'batch_data_samples' in inspect.signature(
            head.forward).parameters

        class Forward(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.head = head

            def forward(self, *feats):
                if not samples:
                    return self.head(list(feats))
                meta = dict(img_shape=shape, pad_shape=shape)
                return self.head(list(feats), [SegDataSample(metainfo=meta)])

        return Forward()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    args = p.parse_args(argv)
    import torch
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from mmseg_ivpt.analysis.complexity import count_flops
    from mmseg_ivpt.engine.config import read_config
    cfg = read_config(args.config)
    cfg.model.backbone.init_cfg = None
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).eval()
    h, w = cfg.model.data_preprocessor.size
    x = torch.randn(1, 3, h, w)
    rows = []
    with torch.no_grad():
        feats = model.backbone(x)
        rows.append(('backbone', model.backbone, (x, )))
        if model.with_neck:
            rows.append(('neck', model.neck, (feats, )))
            feats = model.neck(feats)
        rows.append(('decode_head', HeadForward.of(model.decode_head, (h, w)),
                     tuple(feats)))
        print(f'| part ({h}x{w}, one image) | parameters | trainable | '
              f'GFLOPs |')
        print('|---|---:|---:|---:|')
        for name, module, inputs in rows:
            flops, _ = count_flops(module, inputs)
            n = sum(q.numel() for q in module.parameters())
            t = sum(q.numel() for q in module.parameters()
                    if q.requires_grad)
            print(f'| {name} | {n:,} | {t:,} | {flops / 1e9:.1f} |')
    print('| bilinear x4/x2/x1/x0.5 (Rein) | 0 | 0 | – |')


if __name__ == '__main__':
    main()
