# Cityscapes (19 classes, mmseg's dataset; tools/dataset_converters/
# cityscapes.py of mmseg makes the *_labelTrainIds.png) on Mask2Former with
# a frozen, prompted DINOv2 ViT-L/14 (4 registers): mmseg's Mask2Former
# Cityscapes recipe (mask2former_r50_8xb2-90k_cityscapes-512x1024.py: the
# ADE20K recipe's head with 19 classes, 512x1024 crops, AdamW lr 1e-4,
# PolyLR, 90k iterations, batch 16 = 8 GPUs x 2, whole-image test at
# 1024x2048) with the parts of ./models/mask2former_dinov2-vitl14-reg4.py,
# prompt-only checkpoints and every image size scaled by 518/512 (crop
# 518x1036 = 37x74 patches). docs/segmentation.md ("Mask2Former").
_base_ = [
    'mmseg::mask2former/mask2former_r50_8xb2-90k_cityscapes-512x1024.py',
    './models/mask2former_dinov2-vitl14-reg4.py',
]
custom_imports = dict(imports=['mmdet.models', 'mmseg_ivpt'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='PromptOnlyCheckpointHook')]

crop_size = (518, 1036)
data_preprocessor = dict(size=crop_size, test_cfg=dict(size_divisor=14))
model = dict(
    data_preprocessor=data_preprocessor,
    backbone={{_base_.m2f_encoder}},
    neck={{_base_.m2f_neck}},
    decode_head=dict(in_channels={{_base_.m2f_head_in_channels}}))
optim_wrapper = {{_base_.m2f_optim_wrapper}}

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomChoiceResize',
         scales=[int(1036 * x * 0.1) for x in range(5, 21)],
         resize_type='ResizeShortestEdge',
         max_size=4144),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2072, 1036), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
