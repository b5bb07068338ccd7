# iVPT on FGVC oxford_flowers: 102 classes, N=5, k=10 (paper Table 15).
_base_ = ['./_base_/fgvc_vitb16.py']
model = dict(backbone=dict(num_prompts=5, ar_tokens=10),
             head=dict(num_classes=102))
data_preprocessor = dict(num_classes=102)
root = 'data/fgvc/OxfordFlower'
train_dataloader = dict(dataset=dict(name='oxford_flowers', data_root=root))
val_dataloader = dict(dataset=dict(name='oxford_flowers', data_root=root))
test_dataloader = dict(dataset=dict(name='oxford_flowers', data_root=root))
