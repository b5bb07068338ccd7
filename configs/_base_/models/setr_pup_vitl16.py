# SETR-PUP on a frozen, prompted ViT-L/16 at 512x512: mmseg's SETR-PUP
# ViT-L model (decode head and three auxiliary heads, SyncBN) with its
# backbone replaced by this toolbox's PromptedViT. mmseg defines that model
# only inside its ADE20K recipe (setr_vit-l_pup_8xb2-160k_ade20k-512x512:
# the model, ADE20K 512x512, SGD lr 0.001 with heads x10, PolyLR, 160k
# iterations, batch 8 x 2, mmseg's runtime), so this file inherits the
# recipe and changes the model only. The method's arguments come from each
# config; ../setr_pup_vitl_ade20k.py adds the method's optimizer multiplier
# and prompt-only checkpoints.
_base_ = ['mmseg::setr/setr_vit-l_pup_8xb2-160k_ade20k-512x512.py']
custom_imports = dict(imports=['mmseg_ivpt'], allow_failed_imports=False)

# The one place that names the pretrained ViT-L/16: the original
# ImageNet-21k weights (Google's ViT-L_16.npz, timm's
# vit_large_patch16_224.orig_in21k). Make it with
# `python tools/convert_checkpoint.py`: see docs/checkpoints.md. Any timm /
# mmseg / mmpretrain ViT-L file works.
pretrained = 'pretrain/vit-large-p16_in21k.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='PromptedViT',
        arch='l',
        img_size=(512, 512),
        patch_size=16,
        out_indices=(9, 14, 19, 23),
        final_norm=False,  # as mmseg's SETR ViT-L
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
