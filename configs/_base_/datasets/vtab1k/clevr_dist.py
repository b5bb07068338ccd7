# VTAB-1k clevr_dist (structured): 6 classes, and iVPT's N and k for it
# (paper Table 16), which the ViT-B/16, ViT-L/16, ViT-H/14 and Swin-B configs
# share.
_base_ = ['../vtab1k.py']
data_preprocessor = dict(num_classes=6)
ivpt_tokens = dict(num_prompts=50, ar_tokens=100)  # Table 16: N, k
# the task, for the train, val and test loaders of vtab1k.py alike
train_dataloader = val_dataloader = test_dataloader = dict(
    dataset=dict(task='clevr_dist'))
