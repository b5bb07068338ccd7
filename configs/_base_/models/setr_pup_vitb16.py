# SETR-PUP on a frozen, prompted ViT-B/16 at 512x512, as the GaPT paper ran
# it (Sec. 5.1): mmseg's SETR-PUP model (decode head on the last block,
# SyncBN heads) at ViT-B/16's width, with two auxiliary heads at the 5th and
# 9th blocks instead of SETR's three (ViT-L: 10th, 15th, 20th); "since we use
# ViT-B/16 in all experiments, two auxiliary heads are used at the 5th and
# 9th blocks". mmseg defines the SETR-PUP model only inside its ADE20K recipe
# (setr_vit-l_pup_8xb2-160k_ade20k-512x512: the model, ADE20K 512x512, SGD
# lr 0.001 with heads x10, PolyLR, 160k iterations, batch 8 x 2), so this
# file inherits the recipe and changes the model only. The method comes from
# each config of configs/gapt_ade20k/.
_base_ = ['mmseg::setr/setr_vit-l_pup_8xb2-160k_ade20k-512x512.py']
custom_imports = dict(imports=['mmseg_ivpt'], allow_failed_imports=False)

# The one place that names the pretrained ViT-B/16 of these configs: MAE's
# (mae_pretrain_vit_base.pth as MAE released it, the file of VPT's model
# zoo, which GaPT used: Sec. 5.1; docs/checkpoints.md); the MoCo-v3 configs
# replace it with linear-vit-b-300ep.pth.tar. MAE's final norm is not used:
# the SETR heads read the raw block outputs (final_norm=False).
pretrained = 'pretrain/mae_pretrain_vit_base.pth'

norm_cfg = dict(type='SyncBN', requires_grad=True)
# mmseg's SETR-PUP ADE20K auxiliary head (2 convs) at ViT-B/16's width
aux_head = dict(
    type='SETRUPHead',
    in_channels=768,
    channels=256,
    num_classes=150,
    dropout_ratio=0,
    norm_cfg=norm_cfg,
    act_cfg=dict(type='ReLU'),
    num_convs=2,
    kernel_size=3,
    align_corners=False,
    loss_decode=dict(
        type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4))
model = dict(
    backbone=dict(
        _delete_=True,
        type='PromptedViT',
        arch='b',
        img_size=(512, 512),
        patch_size=16,
        # 0-based blocks 4 and 8 (the 5th and 9th) for the auxiliary heads,
        # the last (11) for the decode head
        out_indices=(4, 8, 11),
        final_norm=False,  # as mmseg's SETR: the heads read raw blocks
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=768, in_index=2),
    auxiliary_head=[dict(aux_head, in_index=0),  # block 4
                    dict(aux_head, in_index=1)])  # block 8
