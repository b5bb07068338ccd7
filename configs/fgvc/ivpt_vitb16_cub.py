# iVPT on FGVC cub: 200 classes, N=10, k=1 (paper Table 15).
_base_ = ['./_base_/fgvc_vitb16.py']
model = dict(backbone=dict(num_prompts=10, ar_tokens=1),
             head=dict(num_classes=200))
data_preprocessor = dict(num_classes=200)
root = 'data/fgvc/CUB_200_2011'
train_dataloader = dict(dataset=dict(name='cub', data_root=root))
val_dataloader = dict(dataset=dict(name='cub', data_root=root))
test_dataloader = dict(dataset=dict(name='cub', data_root=root))
