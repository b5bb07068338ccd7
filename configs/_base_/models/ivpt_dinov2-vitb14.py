# iVPT on a frozen DINOv2 ViT-B/14 (facebookresearch/dinov2
# dinov2_vitb14_pretrain.pth, timm's vit_base_patch14_dinov2.lvd142m): the
# classifier of ivpt_vitb16.py (VPT's linear head on the final-normed cls
# token, CDC + DA + AR top-k, prompt dropout 0.1) on this encoder, at 224x224
# = 16x16 patches of 14 px; the pretrained 37x37 position grid is resampled
# to 16x16 once at load as DINOv2's interpolate_pos_encoding does. The
# configs use the ViT-B/16 task's N and k (iVPT Tables 15/16); no paper runs
# this encoder (docs/encoders.md). DINOv2 normalises with ImageNet's mean
# and std, the data sets' default.
_base_ = ['./ivpt_vitb16.py']

# The one place that names the pretrained DINOv2 ViT-B/14
# (docs/checkpoints.md).
pretrained = 'pretrain/dinov2_vitb14_pretrain.pth'
model = dict(
    backbone=dict(arch='b', patch_size=14, layer_scale_init=1e-5,
                  pos_interp='dinov2',
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    head=dict(in_channels=768))
