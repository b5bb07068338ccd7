# iVPT (N=10, CDC + DA, AR off) on a frozen DINOv2 ViT-L/14 with 4
# registers, ADE20K 518x518, with the head mmseg 1.x uses on plain ViTs:
# UPerHead behind the Feature2Pyramid neck, as mmseg's BEiT-L UperNet config
# (beit-large_upernet_8xb1-amp-160k_ade20k-640x640.py: blocks 7/11/15/23,
# rescales 4/2/1/0.5, 1024 channels, an FCN auxiliary head on the third
# level). Everything else is the SETR-PUP config's recipe
# (setr_ivpt_dinov2-vitl14-reg4_ade20k.py), so the two differ by the head
# only.
_base_ = ['./setr_ivpt_dinov2-vitl14-reg4_ade20k.py']
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(out_indices=(7, 11, 15, 23)),
    neck=dict(type='Feature2Pyramid', embed_dim=1024,
              rescales=[4, 2, 1, 0.5], norm_cfg=norm_cfg),
    decode_head=dict(
        _delete_=True,
        type='UPerHead',
        in_channels=[1024, 1024, 1024, 1024],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=1024,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        _delete_=True,
        type='FCNHead',
        in_channels=1024,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)))
