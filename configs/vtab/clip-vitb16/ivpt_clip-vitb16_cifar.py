# iVPT on VTAB-1k cifar with CLIP ViT-B/16 (OpenAI): the classes, N and k
# (the ViT-B/16 values, paper Table 16) of _base_/datasets/vtab1k/cifar.py.
_base_ = [
    '../../_base_/models/ivpt_clip-vitb16.py',
    '../../_base_/datasets/vtab1k/cifar.py',
    '../../_base_/schedules/vpt_sgd_100e.py',
    '../../_base_/default_runtime.py',
]
model = dict(backbone={{_base_.ivpt_tokens}},
             head=dict(num_classes={{_base_.data_preprocessor.num_classes}}))
data_preprocessor = {{_base_.clip_pixels}}  # CLIP's mean and std
