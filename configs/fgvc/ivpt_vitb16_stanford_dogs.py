# iVPT on FGVC stanford_dogs: 120 classes, N=10, k=10 (paper Table 15).
_base_ = ['./_base_/fgvc_vitb16.py']
model = dict(backbone=dict(num_prompts=10, ar_tokens=10),
             head=dict(num_classes=120))
data_preprocessor = dict(num_classes=120)
root = 'data/fgvc/Stanford-dogs'
train_dataloader = dict(dataset=dict(name='stanford_dogs', data_root=root))
val_dataloader = dict(dataset=dict(name='stanford_dogs', data_root=root))
test_dataloader = dict(dataset=dict(name='stanford_dogs', data_root=root))
