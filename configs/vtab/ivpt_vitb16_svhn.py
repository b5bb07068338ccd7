# iVPT on VTAB-1k svhn with ViT-B/16: the classes, N and k (paper Table 16)
# of _base_/datasets/vtab1k/svhn.py.
_base_ = [
    '../_base_/models/ivpt_vitb16.py',
    '../_base_/datasets/vtab1k/svhn.py',
    '../_base_/schedules/vpt_sgd_100e.py',
    '../_base_/default_runtime.py',
]
model = dict(backbone={{_base_.ivpt_tokens}},
             head=dict(num_classes={{_base_.data_preprocessor.num_classes}}))
