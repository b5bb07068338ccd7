# iVPT on FGVC stanford_dogs with CLIP ViT-B/16 (OpenAI): the classes, N and
# k (the ViT-B/16 values, paper Table 15) of
# _base_/datasets/fgvc/stanford_dogs.py.
_base_ = [
    '../../_base_/models/ivpt_clip-vitb16.py',
    '../../_base_/datasets/fgvc/stanford_dogs.py',
    '../../_base_/schedules/vpt_sgd_100e.py',
    '../../_base_/default_runtime.py',
]
model = dict(backbone={{_base_.ivpt_tokens}},
             head=dict(num_classes={{_base_.data_preprocessor.num_classes}}))
data_preprocessor = {{_base_.clip_pixels}}  # CLIP's mean and std
