# iVPT on VTAB-1k smallnorb_ele: 9 classes, N=200, k=1 (paper Table 16).
_base_ = ['./_base_/vtab1k_vitb16.py']
model = dict(backbone=dict(num_prompts=200, ar_tokens=1),
             head=dict(num_classes=9))
data_preprocessor = dict(num_classes=9)
train_dataloader = dict(dataset=dict(task='smallnorb_ele'))
val_dataloader = dict(dataset=dict(task='smallnorb_ele'))
test_dataloader = dict(dataset=dict(task='smallnorb_ele'))
