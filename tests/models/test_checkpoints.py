"""Pretrained weights through init_cfg in the three layouts (timm, mmseg's
vit2mmseg, mmpretrain), checked against those libraries' own ViTs, and
checkpoints that do not fit; a moved prompt-only checkpoint finds the ViT
of its fingerprint; tools/convert_checkpoint.py's named errors."""
import json
import os.path as osp
import shutil
import sys
import textwrap

import pytest
import torch
from ivpt_helpers import IMG, PATCH, TINY, timm_vit
from ivpt_runs import SEG_CFG as CFG
from ivpt_runs import ok, run, run_tool, save_seg_vit
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
    assert torch.equal(m.blocks[0].attn.qkv.weight,
                       t.blocks[0].attn.qkv.weight)


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


# ------------------------------------- moved prompt-only checkpoints (#12)
def _vit_file(path, seed, arch=TINY):
    """A random ViT of ``arch`` saved at ``path``; its fingerprint."""
    from mmseg_ivpt.utils.integrity import encoder_fingerprint
    torch.manual_seed(seed)
    sd = timm_vit(arch=arch).state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return encoder_fingerprint(sd)


def _record(ckpt_dir, right):
    """What a prompt-only checkpoint in ``ckpt_dir`` records when it was
    trained on the file ``right`` (abs), the checkpoint written as
    ``ckpt_dir/model.pth`` with its ViT at ``../vit.pth``."""
    from mmseg_ivpt.utils.integrity import encoder_fingerprint
    from mmseg_ivpt.utils.safe_load import SOURCE_FILE_KEY
    return {SOURCE_FILE_KEY: str(ckpt_dir / 'model.pth'),
            'pretrained': 'vit.pth', 'pretrained_abs': str(right),
            'pretrained_rel': osp.join('..', 'vit.pth'),
            'encoder_fingerprint': encoder_fingerprint(torch.load(right))}


def _bare():
    return PromptedViT(arch=TINY, img_size=IMG, patch_size=PATCH,
                       num_prompts=2)


def test_moved_record_prefers_the_file_with_the_fingerprint(
        tmp_path, monkeypatch, caplog):
    """The relative path holds another ViT (same shape; or another shape;
    or a damaged file), the absolute path the right one: the right one is
    loaded, the others named in a warning. None right: the named error
    lists what was found; the override loads the first."""
    import logging

    from mmseg_ivpt.models.checkpoint import EncoderMismatchError
    from mmseg_ivpt.models.prompt_only import load_frozen_encoder
    monkeypatch.chdir(tmp_path)  # (the record's path as written: vit.pth)
    # the backbones' logger forwards to mmengine's and does not propagate
    monkeypatch.setattr(logging.getLogger('mmseg_ivpt'), 'propagate', True)
    right = tmp_path / 'orig' / 'vit.pth'
    fp = _vit_file(right, 0)
    copy = tmp_path / 'copy' / 'run'
    meta = _record(copy, right)
    rel = tmp_path / 'copy' / 'vit.pth'
    other_fp = _vit_file(rel, 1)
    assert other_fp != fp
    m = _bare()
    with caplog.at_level('WARNING', logger='mmseg_ivpt'):
        load_frozen_encoder(m, meta)
    assert m.pretrained_path == str(right) and m.pretrained_fingerprint == fp
    assert f'passed over {rel} (another ViT, fingerprint {other_fp})' in \
        caplog.text
    # another shape at the relative path, then a damaged file: passed over
    _vit_file(rel, 1, arch=dict(TINY, embed_dims=32, num_heads=2))
    m = _bare()
    load_frozen_encoder(m, meta)
    assert m.pretrained_fingerprint == fp
    rel.write_bytes(b'')
    m = _bare()
    load_frozen_encoder(m, meta)
    assert m.pretrained_fingerprint == fp
    # the record's absolute file replaced too: no right file
    _vit_file(rel, 1)
    abs_fp = _vit_file(right, 2)
    with pytest.raises(EncoderMismatchError) as e:
        load_frozen_encoder(_bare(), meta)
    msg = str(e.value)
    assert f'{rel} (fingerprint {other_fp})' in msg  # the first found
    assert f'{right}, fingerprint {abs_fp}' in msg  # and the other
    assert f'(fingerprint {fp})' in msg and 'IVPT_ALLOW_OTHER_ENCODER' in msg
    monkeypatch.setenv('IVPT_ALLOW_OTHER_ENCODER', '1')
    m = _bare()
    load_frozen_encoder(m, meta)  # the first file found, with a warning
    assert m.pretrained_path == str(rel) and m.pretrained_fingerprint == \
        other_fp


def test_config_choice_is_not_overridden_by_a_recorded_file(tmp_path):
    """An existing init_cfg file is the config's choice: another ViT there
    is the named error even though the recorded file is right."""
    from mmseg_ivpt.models.checkpoint import EncoderMismatchError
    from mmseg_ivpt.models.prompt_only import load_frozen_encoder
    right = tmp_path / 'vit.pth'
    _vit_file(right, 0)
    chosen = tmp_path / 'chosen.pth'
    _vit_file(chosen, 1)
    m = _bare()
    m.init_cfg = dict(type='Pretrained', checkpoint=str(chosen))
    with pytest.raises(EncoderMismatchError, match=str(chosen)):
        load_frozen_encoder(m, _record(tmp_path / 'run', right))


@pytest.mark.slow
def test_copied_folder_with_another_vit_at_the_relative_path(
        seg_data, seg_run, tmp_path):
    """A user copies the run's folder elsewhere, where the file at the
    checkpoint's relative path is another ViT of the same shape; the
    absolute path still holds the right one. init_model (a subprocess, from
    another directory) loads the right one and says which it passed over."""
    copy = tmp_path / 'copy'
    shutil.copytree(seg_run, copy / 'record_run')
    # another ViT where ../tiny_vit.pth points
    save_seg_vit(copy / 'tiny_vit.pth', seed=123)
    ckpt = copy / 'record_run' / 'iter_4.pth'
    code = textwrap.dedent(f"""
        import json, torch
        from mmseg.apis import init_model
        model = init_model({CFG!r}, {str(ckpt)!r}, device='cpu')
        want = torch.load({seg_data['pretrained']!r})['pos_embed']
        print(json.dumps(dict(
            path=model.backbone.pretrained_path,
            right=bool(torch.equal(model.backbone.pos_embed, want)))))
    """)
    cwd = tmp_path / 'elsewhere'
    cwd.mkdir()
    res = ok(run([sys.executable, '-c', code], str(cwd)))
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out == dict(path=seg_data['pretrained'], right=True)
    assert f"passed over {copy / 'tiny_vit.pth'} (another ViT" in \
        res.stdout + res.stderr


# ------------------------------------------- convert_checkpoint.py (#11)
@pytest.mark.slow
def test_convert_checkpoint_missing_file_is_named(tmp_path):
    res = run_tool('convert_checkpoint.py', 'ViT-L_16.npz',
                   tmp_path / 'out.pth', cwd=tmp_path)
    assert res.returncode == 2
    assert 'SRC ViT-L_16.npz does not exist' in res.stderr, res.stderr
    assert 'init_cfg' not in res.stderr and 'Traceback' not in res.stderr
    assert not (tmp_path / 'out.pth').exists()


@pytest.mark.slow
@pytest.mark.parametrize('heads,pattern', [
    ('5', r'--num-heads 5: .*src\.pth has embed_dims=64, which 5 heads do '
          r'not divide; allowed: 1, 2, 4, 8, 16, 32, 64'),
    ('0', r"argument --num-heads: '0': a number of heads is a positive "
          r'integer'),
    ('four', r"argument --num-heads: 'four'")])
def test_convert_checkpoint_bad_num_heads_is_named(tmp_path, heads,
                                                   pattern):
    import re
    src = tmp_path / 'src.pth'
    torch.save(timm_vit().state_dict(), src)
    dst = tmp_path / 'out' / 'vit.pth'
    res = run_tool('convert_checkpoint.py', src, dst, '--num-heads', heads)
    assert res.returncode == 2 and 'Traceback' not in res.stderr, res.stderr
    assert re.search(pattern, res.stderr), res.stderr
    assert not dst.exists()


@pytest.mark.slow
def test_convert_checkpoint_bad_dst_and_not_a_vit(tmp_path):
    src = tmp_path / 'src.pth'
    torch.save(timm_vit().state_dict(), src)
    res = run_tool('convert_checkpoint.py', src, tmp_path)
    assert res.returncode == 2 and f'DST {tmp_path} is a directory' in \
        res.stderr, res.stderr
    torch.save({'encoder.w': torch.zeros(3)}, src)
    res = run_tool('convert_checkpoint.py', src, tmp_path / 'vit.pth')
    assert res.returncode == 2 and 'Traceback' not in res.stderr
    assert f'{src}: cannot tell the layout' in res.stderr, res.stderr
