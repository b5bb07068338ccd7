# iVPT on VTAB-1k sun397 with DINOv2 ViT-B/14: the classes, N and k (the
# ViT-B/16 values, paper Table 16) of _base_/datasets/vtab1k/sun397.py.
_base_ = [
    '../../_base_/models/ivpt_dinov2-vitb14.py',
    '../../_base_/datasets/vtab1k/sun397.py',
    '../../_base_/schedules/vpt_sgd_100e.py',
    '../../_base_/default_runtime.py',
]
model = dict(backbone={{_base_.ivpt_tokens}},
             head=dict(num_classes={{_base_.data_preprocessor.num_classes}}))
