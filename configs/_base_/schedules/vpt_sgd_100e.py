# VPT's optimisation (KMnP/vpt src/solver/), which the iVPT paper follows
# (Sec. 4.1, appendix C; docs/reproduction.md lists every setting beside
# its source): SGD momentum 0.9, lr = base lr x batch / 256, weight decay
# on everything but the head's bias, the lr stepped once per epoch: linear
# warm-up from 0 over 10 epochs, then cosine to 0 at epoch 100.

# lr and weight decay are what the sweep chooses (tools/protocol.py);
# these defaults are one point of VPT's grid (base lr 0.25 x 128 / 256).
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.125, momentum=0.9, weight_decay=1e-4),
    # VPT's make_optimizer: no weight decay on the head's bias
    paramwise_cfg=dict(custom_keys={'head.fc.bias': dict(decay_mult=0.)}))
# VPT's WarmupCosineSchedule, stepped once per epoch: lr(e) = e/10 for
# e < 10, then 0.5 (1 + cos(pi (e - 10) / 90)). mmengine's LinearLR reaches
# its end factor at step end - 1, hence end = warm-up + 1.
warmup_epochs = 10
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-8, by_epoch=True, begin=0,
         end=warmup_epochs + 1),
    dict(type='CosineAnnealingLR', T_max=100 - warmup_epochs, by_epoch=True,
         begin=warmup_epochs, end=100, eta_min=0.),
]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=100)
val_cfg = dict()
test_cfg = dict()
