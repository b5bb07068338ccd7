"""Pretrained weights through init_cfg in the three layouts (timm, mmseg's
vit2mmseg, mmpretrain), checked against those libraries' own ViTs, and
checkpoints that do not fit."""
import pytest
import torch
from ivpt_helpers import IMG, PATCH, TINY, timm_vit
from mmpretrain.models.backbones import VisionTransformer as PretrainViT
from mmseg.models.backbones import VisionTransformer as SegViT
from timm.layers import resample_abs_pos_embed

from mmseg_ivpt.models import CheckpointMismatchError, PromptedViT


def _randomise(model):
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    model.eval()  # (mmseg's ViT.train() returns None)
    return model


def _from_file(tmp_path, sd, name='ckpt.pth', **kw):
    path = str(tmp_path / name)
    torch.save(sd, path)
    kw.setdefault('arch', TINY)
    kw.setdefault('img_size', IMG)
    kw.setdefault('patch_size', PATCH)
    kw.setdefault('num_prompts', 0)
    m = PromptedViT(init_cfg=dict(type='Pretrained', checkpoint=path), **kw)
    m.init_weights()
    return m.eval()


def test_timm_state_dict_with_head(tmp_path):
    t = timm_vit()
    t.reset_classifier(7)
    _randomise(t)
    m = _from_file(tmp_path, t.state_dict(), out_type='cls_token')
    img = torch.randn(2, 3, IMG, IMG)
    with torch.no_grad():
        torch.testing.assert_close(m.forward_tokens(img)[0][-1],
                                   t.forward_features(img), rtol=0, atol=1e-5)


def test_timm_position_embedding_resized_on_load(tmp_path):
    t = timm_vit()
    m = _from_file(tmp_path, t.state_dict(), img_size=48)
    want = resample_abs_pos_embed(t.pos_embed.detach(), (6, 6),
                                  num_prefix_tokens=1, antialias=False)
    torch.testing.assert_close(m.pos_embed.detach(), want, rtol=0,
                               atol=1e-6)


def seg_vit(**kw):
    return _randomise(SegViT(
        img_size=IMG, patch_size=PATCH, embed_dims=64, num_layers=4,
        num_heads=4, mlp_ratio=2, out_indices=(1, 3), final_norm=True,
        norm_cfg=dict(type='LN', eps=1e-6), with_cls_token=True,
        interpolate_mode='bicubic', **kw))


@pytest.mark.parametrize('wrap,patch_bias', [('plain', True),
                                             ('segmentor', True),
                                             ('plain', False)])
def test_mmseg_vit_layout(tmp_path, wrap, patch_bias):
    """vit2mmseg keeps timm's patch bias; mmseg's ViT defaults to none."""
    ref = seg_vit(patch_bias=patch_bias)
    sd = ref.state_dict()
    if wrap == 'segmentor':  # a whole mmseg checkpoint: backbone + heads
        sd = dict(meta=dict(mmseg_version='1.2.2'), state_dict={
            **{f'backbone.{k}': v for k, v in sd.items()},
            'decode_head.conv_seg.weight': torch.zeros(3, 64, 1, 1)})
    if not patch_bias:
        with pytest.raises(CheckpointMismatchError, match='patch_bias=False'):
            _from_file(tmp_path, sd, out_indices=(1, 3))
    m = _from_file(tmp_path, sd, out_indices=(1, 3), patch_bias=patch_bias)
    img = torch.randn(2, 3, IMG, IMG)
    with torch.no_grad():
        got, want = m(img), ref(img)
    assert len(got) == len(want) == 2
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=1e-5)


@pytest.mark.parametrize('prefix', ['', 'backbone.'])
def test_mmpretrain_vit_layout(tmp_path, prefix):
    ref = _randomise(PretrainViT(arch=TINY, img_size=IMG, patch_size=PATCH,
                                 out_indices=(1, 3), out_type='cls_token',
                                 final_norm=True))
    sd = {prefix + k: v for k, v in ref.state_dict().items()}
    if prefix:
        sd['head.layers.head.weight'] = torch.zeros(10, 64)
        sd = dict(state_dict=sd, meta=dict(epoch=3))
    m = _from_file(tmp_path, sd, out_indices=(1, 3), out_type='cls_token')
    img = torch.randn(2, 3, IMG, IMG)
    with torch.no_grad():
        for g, w in zip(m(img), ref(img)):
            torch.testing.assert_close(g, w, rtol=0, atol=1e-5)
        ref.out_type = m.out_type = 'featmap'
        for g, w in zip(m(img), ref(img)):
            torch.testing.assert_close(g, w, rtol=0, atol=1e-5)


def test_prompts_untouched_by_loading(tmp_path):
    t = timm_vit()
    torch.manual_seed(3)
    m = PromptedViT(arch=TINY, img_size=IMG, patch_size=PATCH, num_prompts=2)
    before = m.prompts.detach().clone()
    path = str(tmp_path / 'w.pth')
    torch.save(t.state_dict(), path)
    m.init_cfg = dict(type='Pretrained', checkpoint=path)
    m.init_weights()
    assert torch.equal(m.prompts, before)
    assert torch.equal(m.blocks[0].attn.qkv.weight, t.blocks[0].attn.qkv.weight)


def test_checkpoint_of_another_arch(tmp_path):
    other = timm_vit(arch=dict(embed_dims=32, num_layers=4, num_heads=4,
                               feedforward_channels=64))
    with pytest.raises(CheckpointMismatchError,
                       match=r'embed_dims=64(.|\n)*shape mismatch'
                       r'(.|\n)*blocks.0.attn.qkv.weight: checkpoint '
                       r'\(96, 32\) vs model \(192, 64\)'):
        _from_file(tmp_path, other.state_dict())


def test_checkpoint_with_fewer_layers(tmp_path):
    sd = {k: v for k, v in timm_vit().state_dict().items()
          if not k.startswith('blocks.3.')}
    with pytest.raises(CheckpointMismatchError,
                       match=r'missing in the checkpoint \(12\): '
                       r'blocks.3.attn.proj.bias'):
        _from_file(tmp_path, sd)


def test_unknown_layout_and_missing_file(tmp_path):
    with pytest.raises(CheckpointMismatchError, match='layout'):
        _from_file(tmp_path, {'encoder.w': torch.zeros(3)})
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        m = PromptedViT(arch=TINY, img_size=IMG, patch_size=PATCH,
                        init_cfg=dict(type='Pretrained',
                                      checkpoint=str(tmp_path /
                                                     'nowhere.pth')))
        m.init_weights()


def test_prompt_only_state_dict_loads_onto_pretrained(tmp_path):
    """A state dict with only the method's tensors is loaded on top of the
    pretrained ViT (init_cfg); anything that does not fit is an error."""
    t = timm_vit()
    path = str(tmp_path / 'vit.pth')
    torch.save(t.state_dict(), path)
    src = PromptedViT(arch=TINY, img_size=IMG, patch_size=PATCH,
                      num_prompts=2, dynamic_aggregation=True)
    prompt_only = {k: v for k, v in src.state_dict().items()
                   if k in ('prompts', 'da_weights')}
    dst = PromptedViT(arch=TINY, img_size=IMG, patch_size=PATCH,
                      num_prompts=2, dynamic_aggregation=True,
                      init_cfg=dict(type='Pretrained', checkpoint=path))
    dst.load_state_dict(prompt_only)  # strict: nothing reported missing
    assert torch.equal(dst.prompts, src.prompts)
    assert torch.equal(dst.pos_embed, t.pos_embed)
    no_init = PromptedViT(arch=TINY, img_size=IMG, patch_size=PATCH,
                          num_prompts=2, dynamic_aggregation=True)
    with pytest.raises(CheckpointMismatchError, match='init_cfg'):
        no_init.load_state_dict(prompt_only)
    other = PromptedViT(arch=TINY, img_size=IMG, patch_size=PATCH,
                        num_prompts=3)
    with pytest.raises(CheckpointMismatchError,
                       match=r'prompts: checkpoint \(4, 2, 64\) vs model '
                       r'\(4, 3, 64\)(.|\n)*da_weights: in the checkpoint'):
        other.load_state_dict(src.state_dict(), strict=False)
