# iVPT on a frozen CLIP ViT-B/16 image tower (OpenAI's weights): the
# classifier of ivpt_vitb16.py (VPT's linear head on the final-normed cls
# token, i.e. CLIP's ln_post without the projection; CDC + DA + AR top-k,
# prompt dropout 0.1) on this encoder at its own 224x224, with CLIP's pixel
# statistics (clip_pixels). The configs use the ViT-B/16 task's N and k
# (iVPT Tables 15/16); no paper runs this encoder (docs/encoders.md).
_base_ = ['./ivpt_vitb16.py']

# The one place that names the pretrained CLIP ViT-B/16
# (docs/checkpoints.md).
pretrained = 'pretrain/clip_vitb16_openai.pth'
# OpenAI CLIP's mean and std (clip/clip.py _transform), in 0-255; each
# leaf sets them into the data set's data_preprocessor (a second
# data_preprocessor among the bases is not allowed)
clip_pixels = dict(mean=[122.771, 116.746, 104.094],
                   std=[68.501, 66.632, 70.323])
model = dict(
    backbone=dict(arch='b', patch_size=16, pre_norm=True, patch_bias=False,
                  norm_eps=1e-5, act_layer='quick_gelu',
                  pos_interp='bicubic_antialias',
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    head=dict(in_channels=768))
