# iVPT on FGVC nabirds: 555 classes, N=50, k=10 (paper Table 15).
_base_ = ['./_base_/fgvc_vitb16.py']
model = dict(backbone=dict(num_prompts=50, ar_tokens=10),
             head=dict(num_classes=555))
data_preprocessor = dict(num_classes=555)
root = 'data/fgvc/nabirds'
train_dataloader = dict(dataset=dict(name='nabirds', data_root=root))
val_dataloader = dict(dataset=dict(name='nabirds', data_root=root))
test_dataloader = dict(dataset=dict(name='nabirds', data_root=root))
