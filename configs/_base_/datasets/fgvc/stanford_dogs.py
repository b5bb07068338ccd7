# FGVC Stanford Dogs (`stanford_dogs`, in data_root/Stanford-dogs): 120
# classes, and iVPT's N and k for it (paper Table 15), which the ViT-B/16 and
# Swin-B configs share.
_base_ = ['../fgvc.py']
data_preprocessor = dict(num_classes=120)
ivpt_tokens = dict(num_prompts=10, ar_tokens=10)  # Table 15: N, k
# the data set and its folder, for the train, val and test loaders of
# fgvc.py alike
train_dataloader = val_dataloader = test_dataloader = dict(dataset=dict(
    name='stanford_dogs', data_root=_base_.data_root + '/Stanford-dogs'))
