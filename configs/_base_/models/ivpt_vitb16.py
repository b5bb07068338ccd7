# iVPT (CDC + DA + AR top-k; prompt dropout 0.1, as VPT's deep-prompt runs)
# on a frozen ViT-B/16 (original ImageNet-21k weights, supervised) with
# VPT's linear head: mmpretrain's ImageClassifier. A config sets the head's
# num_classes and the task's N and k from its data set's base
# (datasets/vtab1k/<task>.py, datasets/fgvc/<name>.py).

# The one place that names the pretrained ViT-B/16: the original
# ImageNet-21k weights (Google's ViT-B_16.npz, timm's
# vit_base_patch16_224.orig_in21k), see docs/checkpoints.md.
pretrained = 'pretrain/vit-base-p16_in21k.pth'

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='PromptedViT', arch='b', img_size=224, patch_size=16,
        out_type='cls_token', final_norm=True,
        num_prompts=10, prompt_structure='cdc', dynamic_aggregation=True,
        ar_tokens=10, ar_mode='topk', prompt_dropout=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    head=dict(type='LinearClsHead', in_channels=768,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
              # VPT's MLP head: kaiming_normal_(fan_out), special_bias=True
              init_cfg=dict(type='Kaiming', layer='Linear', mode='fan_out',
                            nonlinearity='relu', distribution='normal',
                            bias_prob=0.01)))
