# iVPT on VTAB-1k clevr_dist: 6 classes, N=50, k=100 (paper Table 16).
_base_ = ['./_base_/vtab1k_vitb16.py']
model = dict(backbone=dict(num_prompts=50, ar_tokens=100),
             head=dict(num_classes=6))
data_preprocessor = dict(num_classes=6)
train_dataloader = dict(dataset=dict(task='clevr_dist'))
val_dataloader = dict(dataset=dict(task='clevr_dist'))
test_dataloader = dict(dataset=dict(task='clevr_dist'))
