# ADE20K on SETR-PUP with a frozen, prompted DINOv2 ViT-L/14 (4 registers):
# the recipe of the iVPT paper's segmentation setting (Table 7:
# setr_pup_vitl_ade20k.py: mmseg's SETR-PUP ViT-L ADE20K recipe, the heads
# at blocks 9/14/19/23 without the final norm, the method's tensors at
# x1000 lr, prompt-only checkpoints) with the encoder swapped.
#
# 14-pixel patches (docs/encoders.md, "512x512 crops"): the crop is 518x518,
# DINOv2's own pretraining grid of 37x37 patches, and every image size of the
# 512 recipe is scaled by 518/512 (train resize (2072, 518), ratio 0.5-2.0;
# test resize (2072, 518), slide crop 518 stride 346 = 341 x 518/512). No
# weight is resampled: the patch embedding and the position embedding are
# the pretrained ones as they are. The alternative (resampling the patch
# embedding to 16 px, FlexiViT / timm's resample_patch_embed, 32x32 at 512)
# is not used; docs/benchmarks.md measures what the 518 crop costs.
_base_ = ['./setr_pup_vitl_ade20k.py']

# The one place that names the pretrained encoder: DINOv2 ViT-L/14 with 4
# registers (Darcet et al., "Vision Transformers Need Registers"; the
# torch-hub file dinov2_vitl14_reg4_pretrain.pth or timm's
# vit_large_patch14_reg4_dinov2.lvd142m, docs/checkpoints.md).
pretrained = 'pretrain/dinov2_vitl14_reg4_pretrain.pth'
crop_size = (518, 518)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        _delete_=True,
        type='PromptedViT',
        arch='l',
        img_size=crop_size,
        # DINOv2 as options of the one encoder (docs/encoders.md): patch 14,
        # LayerScale, 4 registers after cls (the prompt slot follows them),
        # position embeddings of the patches only (timm's form of the hub
        # file), resampled as DINOv2's interpolate_pos_encoding does
        patch_size=14,
        num_reg_tokens=4,
        no_embed_class=True,
        layer_scale_init=1e-5,
        pos_interp='dinov2',
        out_indices=(9, 14, 19, 23),
        final_norm=False,  # as mmseg's SETR: the heads read raw blocks
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(346, 346)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(2072, 518), ratio_range=(0.5, 2.0),
         keep_ratio=True),
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
