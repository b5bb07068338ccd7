# iVPT on a frozen ViT-H/14 (original ImageNet-21k weights, supervised;
# iVPT Table 5 / Table 13): ivpt_vitb16.py on the larger encoder. The
# configs use the ViT-B/16 task's N and k (Table 16: the paper gives no
# other values for ViT-H/14). At 224x224 the patch grid is 16x16
# (M = 256 >= every task's k).
_base_ = ['./ivpt_vitb16.py']

# The one place that names the pretrained ViT-H/14: the original
# ImageNet-21k weights (Google's ViT-H_14.npz, timm's
# vit_huge_patch14_224.orig_in21k), see docs/checkpoints.md.
pretrained = 'pretrain/vit-huge-p14_in21k.pth'
model = dict(
    backbone=dict(arch='h', patch_size=14,
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    head=dict(in_channels=1280))
