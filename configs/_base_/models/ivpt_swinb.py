# iVPT on a frozen Swin-B (patch 4, window 7, 224; ImageNet-21k,
# supervised: iVPT Table 5 / Table 13, Table 18): the classifier of
# ivpt_vitb16.py with the backbone swapped. iVPT on Swin is CDC + DA
# without AR (Swin has no cls token; docs/swin.md); the head reads Swin's
# average pooling of the final norm (1024 channels). The configs use the
# ViT-B/16 task's N (the paper gives no Swin values).
_base_ = ['./ivpt_vitb16.py']

# The one place that names the pretrained Swin-B (docs/checkpoints.md).
pretrained = 'pretrain/swin-base-p4-w7_in21k.pth'

model = dict(
    backbone=dict(
        _delete_=True, type='PromptedSwin', arch='b', img_size=224,
        patch_size=4, window_size=7, out_type='avg_featmap',
        num_prompts=10, prompt_structure='cdc', dynamic_aggregation=True,
        prompt_dropout=0.1,  # as the ViT-B recipe (docs/reproduction.md)
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    head=dict(in_channels=1024))
