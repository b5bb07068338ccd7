# iVPT on VTAB-1k dmlab with ViT-H/14 (paper Table 13): the classes, N and k
# (paper Table 16) of _base_/datasets/vtab1k/dmlab.py.
_base_ = [
    '../../_base_/models/ivpt_vith14.py',
    '../../_base_/datasets/vtab1k/dmlab.py',
    '../../_base_/schedules/vpt_sgd_100e.py',
    '../../_base_/default_runtime.py',
]
model = dict(backbone={{_base_.ivpt_tokens}},
             head=dict(num_classes={{_base_.data_preprocessor.num_classes}}))
