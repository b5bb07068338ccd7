"""`make demo`: the no-download end-to-end demo.

Not built yet (it comes with the segmentation pipeline: a generated data set
in the ADE20K layout, a tiny PromptedViT + SETR config, a short CPU training
that prints mIoU, and a side-by-side PNG of image, ground truth and
prediction). Until then this checks the installation and runs one prompted
forward/backward pass of a small random ViT through an mmseg segmentor.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mmseg_ivpt  # noqa: E402
from mmseg.registry import MODELS  # noqa: E402
from mmseg.utils import register_all_modules  # noqa: E402


def main():
    print(__doc__)
    register_all_modules()
    model = MODELS.build(dict(
        type='EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', size=(64, 64)),
        backbone=dict(type='PromptedViT',
                      arch=dict(embed_dims=64, num_layers=4, num_heads=4,
                                feedforward_channels=128),
                      img_size=64, patch_size=8, num_prompts=4,
                      prompt_structure='cdc', dynamic_aggregation=True,
                      out_indices=(3, )),
        decode_head=dict(type='SETRUPHead', in_channels=64, channels=16,
                         in_index=0, num_classes=5, num_convs=2, up_scale=2,
                         kernel_size=3, norm_cfg=dict(type='BN'),
                         loss_decode=dict(type='CrossEntropyLoss'))))
    out = model(torch.randn(2, 3, 64, 64), mode='tensor')
    out.mean().backward()
    trained = [n for n, p in model.named_parameters()
               if p.requires_grad and n.startswith('backbone.')]
    print(f'mmseg_ivpt {mmseg_ivpt.__version__}: registered in '
          f'{mmseg_ivpt.REGISTERED_SCOPES}; segmentor output '
          f'{tuple(out.shape)}; trainable backbone tensors: {trained}')


if __name__ == '__main__':
    main()
