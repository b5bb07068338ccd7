# FGVC (data/fgvc, docs/data.md) with VPT's pre-processing
# (KMnP/vpt src/data/transforms.py, torchvision on PIL images): Resize 256
# (shorter side, bilinear) + RandomCrop 224 + horizontal flip for
# training, Resize 256 + CenterCrop 224 for testing. Splits are VPT's json
# files: the default is the final protocol of VPT's tune_fgvc.py, train on
# train.json and evaluate on test.json (lr and wd chosen on val.json by
# tools/protocol.py sweep). Each data set's file (fgvc/<name>.py) sets its
# name, folder under data_root and number of classes.
_base_ = ['./vpt_bs128.py']
data_root = 'data/fgvc'
# backend='pillow': torchvision resizes PIL images with PIL's (antialiased)
# bilinear filter
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow',
         interpolation='bilinear'),
    dict(type='RandomCrop', crop_size=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow',
         interpolation='bilinear'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    dataset=dict(type='FGVC', split='train', pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(type='FGVC', split='test', pipeline=test_pipeline))
test_dataloader = val_dataloader
