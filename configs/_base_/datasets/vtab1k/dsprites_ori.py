# VTAB-1k dsprites_ori (structured): 16 classes, and iVPT's N and k for it
# (paper Table 16), which the ViT-B/16, ViT-L/16, ViT-H/14 and Swin-B configs
# share.
_base_ = ['../vtab1k.py']
data_preprocessor = dict(num_classes=16)
ivpt_tokens = dict(num_prompts=50, ar_tokens=1)  # Table 16: N, k
# the task, for the train, val and test loaders of vtab1k.py alike
train_dataloader = val_dataloader = test_dataloader = dict(
    dataset=dict(task='dsprites_ori'))
