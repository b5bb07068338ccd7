# FGVC Stanford Cars (`stanford_cars`, in data_root/Stanford-cars): 196
# classes, and iVPT's N and k for it (paper Table 15), which the ViT-B/16 and
# Swin-B configs share.
_base_ = ['../fgvc.py']
data_preprocessor = dict(num_classes=196)
ivpt_tokens = dict(num_prompts=10, ar_tokens=10)  # Table 15: N, k
# the data set and its folder, for the train, val and test loaders of
# fgvc.py alike
train_dataloader = val_dataloader = test_dataloader = dict(dataset=dict(
    name='stanford_cars', data_root=_base_.data_root + '/Stanford-cars'))
