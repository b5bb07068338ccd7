# The parts the Mask2Former configs on a frozen, prompted DINOv2 ViT-L/14
# with 4 registers share, as variables (not `model`, so that a data set's
# base can inherit mmseg's Mask2Former recipe beside this file; see
# ../mask2former_dinov2-vitl14-reg4_ade20k.py): the encoder, the neck that
# makes its one 1/14 map four scales, and the head's input channels.
# docs/segmentation.md ("Mask2Former") gives every setting and its source.

# DINOv2 ViT-L/14 with 4 registers (docs/encoders.md, docs/checkpoints.md):
# the encoder of ../setr_pup_dinov2-vitl14-reg4_ade20k.py, read at blocks
# 7/11/15/23 (Rein's DINOv2 Mask2Former and mmseg's BEiT-L UperNet), raw
# block outputs (final_norm=False, as Rein and SETR). img_size: DINOv2's
# 37x37 pretraining grid; other grids (Cityscapes' 37x74 crops, whole test
# images) get the table resampled on the fly, as DINOv2 does.
pretrained = 'pretrain/dinov2_vitl14_reg4_pretrain.pth'
m2f_encoder = dict(
    _delete_=True,
    type='PromptedViT',
    arch='l',
    img_size=518,
    patch_size=14,
    num_reg_tokens=4,
    no_embed_class=True,
    layer_scale_init=1e-5,
    pos_interp='dinov2',
    out_indices=(7, 11, 15, 23),
    final_norm=False,
    init_cfg=dict(type='Pretrained', checkpoint=pretrained))
# Four scales from the 1/14 maps: mmseg's Feature2Pyramid (BEiT / ViTDet's
# simple pyramid: x4 = two stride-2 transposed convs, x2 = one, x1, x0.5 =
# max pool), 1024 channels out; 12.6M trainable parameters (measured in
# docs/segmentation.md against Rein's parameter-free bilinear resampling).
m2f_neck = dict(
    type='Feature2Pyramid',
    embed_dim=1024,
    rescales=[4, 2, 1, 0.5],
    norm_cfg=dict(type='SyncBN', requires_grad=True))
m2f_head_in_channels = [1024, 1024, 1024, 1024]
# mmseg's Mask2Former optimizer (AdamW lr 1e-4, wd 0.05, clip 0.01, no
# decay on queries, level embeddings and norms) without its `backbone`
# lr x0.1 (for fine-tuning the whole backbone; here only the method's
# tensors train in it): they train at the head's lr without weight decay,
# as Rein trains its tokens (method_lr_mult / method_decay_mult of
# PromptOptimWrapperConstructor, mmseg_ivpt/engine/optim.py).
m2f_embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
m2f_optim_wrapper = dict(
    type='OptimWrapper',
    constructor='PromptOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.05, eps=1e-8,
                   betas=(0.9, 0.999)),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(
        _delete_=True,
        custom_keys={'query_embed': m2f_embed_multi,
                     'query_feat': m2f_embed_multi,
                     'level_embed': m2f_embed_multi},
        norm_decay_mult=0.0,
        method_lr_mult=1.0,
        method_decay_mult=0.0))
