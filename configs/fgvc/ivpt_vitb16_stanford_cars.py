# iVPT on FGVC stanford_cars: 196 classes, N=10, k=10 (paper Table 15).
_base_ = ['./_base_/fgvc_vitb16.py']
model = dict(backbone=dict(num_prompts=10, ar_tokens=10),
             head=dict(num_classes=196))
data_preprocessor = dict(num_classes=196)
root = 'data/fgvc/Stanford-cars'
train_dataloader = dict(dataset=dict(name='stanford_cars', data_root=root))
val_dataloader = dict(dataset=dict(name='stanford_cars', data_root=root))
test_dataloader = dict(dataset=dict(name='stanford_cars', data_root=root))
