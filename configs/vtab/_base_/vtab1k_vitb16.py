# VTAB-1k on a frozen ViT-B/16 (ImageNet-21k, supervised), mmpretrain: the
# paper's recipe (Sec. 4.1, SPEC section 7): 224x224, random crop + flip for
# training, centre crop for testing; SGD (momentum 0.9), 10 epochs of linear
# warm-up, then cosine, 100 epochs; batch 128. The default splits are the
# final protocol (train800val200, evaluated on test); the sweep trains on
# train800 and evaluates on val200. Each task config sets the task, its
# number of classes and iVPT's N and k (paper Table 16).
_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmseg_ivpt'], allow_failed_imports=False)

# The one place that names the pretrained ViT-B/16 (docs/checkpoints.md).
pretrained = 'pretrain/vit-base-p16_in21k.pth'
data_root = 'data/vtab-1k'

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='PromptedViT', arch='b', img_size=224, patch_size=16,
        out_type='cls_token', final_norm=True,
        num_prompts=10, prompt_structure='cdc', dynamic_aggregation=True,
        ar_tokens=10, ar_mode='topk',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    head=dict(type='LinearClsHead', num_classes=100, in_channels=768,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

data_preprocessor = dict(
    num_classes=100, mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='RandomCrop', crop_size=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=128, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='VTAB1k', data_root=data_root, task='cifar',
                 split='train800val200', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='VTAB1k', data_root=data_root, task='cifar',
                 split='test', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

# lr and weight decay are what the sweep chooses (tools/vtab_protocol.py);
# these defaults are one point of VPT's grid (lr 0.25 * 128 / 256).
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.125, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=90, by_epoch=True, begin=10,
         end=100, eta_min=0.),
]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=100)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=100, max_keep_ckpts=1),
    logger=dict(type='LoggerHook', interval=10))
custom_hooks = [dict(type='PromptOnlyCheckpointHook')]
randomness = dict(seed=0)
