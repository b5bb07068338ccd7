# FGVC on a frozen ViT-B/16 (ImageNet-21k, supervised), mmpretrain: the
# VTAB-1k recipe (random crop + flip / centre crop, SGD, 10 warm-up epochs,
# cosine, 100 epochs, batch 128) on VPT's json splits. The default splits are
# the final protocol (train + val, evaluated on test); the sweep trains on
# train and evaluates on val. Each config sets the data set, its classes and
# iVPT's N and k (paper Table 15).
_base_ = ['../../vtab/_base_/vtab1k_vitb16.py']
data_root = 'data/fgvc'
train_dataloader = dict(dataset=dict(
    _delete_=True, type='FGVC', data_root=data_root + '/CUB_200_2011',
    name='cub', split=['train', 'val'],
    pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(
    _delete_=True, type='FGVC', data_root=data_root + '/CUB_200_2011',
    name='cub', split='test', pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
