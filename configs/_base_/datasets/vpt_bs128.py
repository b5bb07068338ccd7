# VPT's data loading for classification, shared by vtab1k.py and fgvc.py:
# batch 128 (KMnP/vpt configs/base-prompt.yaml), ImageNet mean / std on RGB
# images, top-1 accuracy. The data set and its pipelines come from those
# files, the number of classes from each task's file.
data_preprocessor = dict(
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    to_rgb=True)
train_dataloader = dict(
    batch_size=128, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=128, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
