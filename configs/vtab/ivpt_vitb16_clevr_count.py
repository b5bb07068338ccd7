# iVPT on VTAB-1k clevr_count: 8 classes, N=100, k=50 (paper Table 16).
_base_ = ['./_base_/vtab1k_vitb16.py']
model = dict(backbone=dict(num_prompts=100, ar_tokens=50),
             head=dict(num_classes=8))
data_preprocessor = dict(num_classes=8)
train_dataloader = dict(dataset=dict(task='clevr_count'))
val_dataloader = dict(dataset=dict(task='clevr_count'))
test_dataloader = dict(dataset=dict(task='clevr_count'))
