# VTAB-1k (data/vtab-1k, docs/data.md) with VPT's pre-processing
# (KMnP/vpt tf_dataset.preprocess_fn): squash-resize to 224x224
# (bilinear, no crop, no flip), train and test alike. The default splits
# are the final protocol (train800val200, evaluated on test);
# tools/protocol.py sweeps lr x wd on train800 / val200. Each task's file
# (vtab1k/<task>.py) sets the task and its number of classes.
_base_ = ['./vpt_bs128.py']
data_root = 'data/vtab-1k'
# tf.image.resize(image, [224, 224]): bilinear, half-pixel centres, no
# antialiasing, aspect ratio not kept == cv2's INTER_LINEAR resize. No
# augmentation: a flip would change dSprites/smallNORB labels.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(224, 224), keep_ratio=False,
         interpolation='bilinear', backend='cv2'),
    dict(type='PackInputs'),
]
test_pipeline = train_pipeline
train_dataloader = dict(dataset=dict(
    type='VTAB1k', data_root=data_root, split='train800val200',
    pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(
    type='VTAB1k', data_root=data_root, split='test',
    pipeline=test_pipeline))
test_dataloader = val_dataloader
