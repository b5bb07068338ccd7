# iVPT on a frozen ViT-L/16 (original ImageNet-21k weights, supervised;
# iVPT Table 5 / Table 13): ivpt_vitb16.py on the larger encoder. The
# configs use the ViT-B/16 task's N and k (Table 16: the paper gives no
# other values for ViT-L/16).
_base_ = ['./ivpt_vitb16.py']

# The one place that names the pretrained ViT-L/16: the original
# ImageNet-21k weights (Google's ViT-L_16.npz, timm's
# vit_large_patch16_224.orig_in21k), see docs/checkpoints.md.
pretrained = 'pretrain/vit-large-p16_in21k.pth'
model = dict(
    backbone=dict(arch='l', patch_size=16,
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    head=dict(in_channels=1024))
