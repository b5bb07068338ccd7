# ADE20K on SETR-PUP with a frozen, prompted CLIP ViT-B/16 image tower
# (OpenAI's weights), 512x512: the SETR-PUP ViT-B/16 model of
# setr_pup_vitb16_ade20k.py (mmseg's SETR-PUP ADE20K recipe, decode head on
# the last block, auxiliary heads at blocks 4 and 8) with the iVPT configs'
# x1000 lr for the method's tensors (setr_pup_vitl_ade20k.py) and CLIP's
# pixel statistics. 16-pixel patches: 512 is a multiple, the pretrained
# 14x14 position grid is resampled to 32x32 at load as timm and OpenCLIP do
# (bicubic, antialiased).
_base_ = ['./setr_pup_vitb16_ade20k.py']

# The one place that names the pretrained encoder: OpenAI's CLIP ViT-B/16
# image tower (ViT-B-16.pt, converted with tools/convert_checkpoint.py
# --jit; or timm's vit_base_patch16_clip_224.openai), docs/checkpoints.md.
pretrained = 'pretrain/clip_vitb16_openai.pth'
# OpenAI CLIP's mean and std (clip/clip.py _transform), in 0-255
data_preprocessor = dict(mean=[122.771, 116.746, 104.094],
                         std=[68.501, 66.632, 70.323])
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        # CLIP as options of the one encoder (docs/encoders.md): ln_pre
        # (norm_pre), no patch-embedding bias, LayerNorm eps 1e-5,
        # QuickGELU (OpenAI's weights; OpenCLIP's LAION models: 'gelu')
        pre_norm=True,
        patch_bias=False,
        norm_eps=1e-5,
        act_layer='quick_gelu',
        pos_interp='bicubic_antialias',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)))

prompt_lr_mult = 1000.  # as the iVPT ADE20K configs (setr_pup_vitl_ade20k)
optim_wrapper = dict(paramwise_cfg=dict(method_lr_mult=prompt_lr_mult))
