# iVPT (CDC + DA; Swin has no AR) on FGVC stanford_cars with Swin-B: the
# classes and N (the ViT-B/16 value, paper Table 15) of
# _base_/datasets/fgvc/stanford_cars.py.
_base_ = [
    '../../_base_/models/ivpt_swinb.py',
    '../../_base_/datasets/fgvc/stanford_cars.py',
    '../../_base_/schedules/vpt_sgd_100e.py',
    '../../_base_/default_runtime.py',
]
model = dict(backbone=dict(num_prompts={{_base_.ivpt_tokens.num_prompts}}),
             head=dict(num_classes={{_base_.data_preprocessor.num_classes}}))
