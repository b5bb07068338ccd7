# ADE20K on Mask2Former with a frozen, prompted DINOv2 ViT-L/14 (4
# registers): mmseg's Mask2Former ADE20K recipe
# (mask2former_r50_8xb2-160k_ade20k-512x512.py: head, 100 queries, losses
# and matcher, pixel decoder, AdamW lr 1e-4, PolyLR, 160k iterations, batch
# 16 = 8 GPUs x 2, whole-image test) with the encoder, neck and optimizer
# keys of ./models/mask2former_dinov2-vitl14-reg4.py, prompt-only
# checkpoints, and the image sizes of the 512 recipe scaled by 518/512 for
# 14-pixel patches (docs/encoders.md, "512x512 crops": crop 518, DINOv2's
# 37x37 grid). docs/segmentation.md ("Mask2Former") lists every setting.
_base_ = [
    'mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py',
    './models/mask2former_dinov2-vitl14-reg4.py',
]
custom_imports = dict(imports=['mmdet.models', 'mmseg_ivpt'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='PromptOnlyCheckpointHook')]

crop_size = (518, 518)
# test_cfg: whole images padded to a multiple of the patch (mmseg: 32)
data_preprocessor = dict(size=crop_size, test_cfg=dict(size_divisor=14))
model = dict(
    data_preprocessor=data_preprocessor,
    backbone={{_base_.m2f_encoder}},
    neck={{_base_.m2f_neck}},
    decode_head=dict(in_channels={{_base_.m2f_head_in_channels}}))
optim_wrapper = {{_base_.m2f_optim_wrapper}}

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomChoiceResize',
         scales=[int(518 * x * 0.1) for x in range(5, 21)],
         resize_type='ResizeShortestEdge',
         max_size=2072),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2072, 518), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
