# iVPT on VTAB-1k dmlab: 6 classes, N=10, k=10 (paper Table 16).
_base_ = ['./_base_/vtab1k_vitb16.py']
model = dict(backbone=dict(num_prompts=10, ar_tokens=10),
             head=dict(num_classes=6))
data_preprocessor = dict(num_classes=6)
train_dataloader = dict(dataset=dict(task='dmlab'))
val_dataloader = dict(dataset=dict(task='dmlab'))
test_dataloader = dict(dataset=dict(task='dmlab'))
