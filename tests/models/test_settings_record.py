"""What a backbone computes travels with its tensors (issue 29.1): every
state dict records the backbone's type and settings, and a load into a
backbone of other settings is a MethodMismatchError naming each one with
both values, even where the tensors have the same shapes (a CDC checkpoint
without DA under a VPT-deep or vanilla-CDC model). Old checkpoints without
the record load with a warning; a pretrained ViT file has none and loads.
Checked through a file written with torch.save and read back by the
toolbox's loader, as every load path reads it."""
import logging

import pytest
import torch
from ivpt_helpers import IMG, PATCH, TINY, timm_vit
from torch import nn

from mmseg_ivpt.models import (
    GatedViT,
    MethodMismatchError,
    PromptedSwin,
    PromptedViT,
)
from mmseg_ivpt.models.prompt_only import prompt_only_state_dict
from mmseg_ivpt.utils.safe_load import load_checkpoint_file

VIT = dict(arch=TINY, img_size=IMG, patch_size=PATCH)


def _through_file(tmp_path, sd, name='ckpt.pth'):
    path = tmp_path / name
    torch.save(sd, path)
    return str(path), load_checkpoint_file(str(path))


def _model(backbone):
    """The backbone under ``backbone.``, as in a segmentor or classifier."""
    m = nn.Module()
    m.backbone = backbone
    m.head = nn.Linear(TINY['embed_dims'], 3)
    return m


@pytest.mark.parametrize('structure', ['deep', 'vanilla_cdc', 'provp'])
def test_cdc_checkpoint_under_another_structure(tmp_path, structure):
    trained = _model(PromptedViT(**VIT, num_prompts=3,
                                 prompt_structure='cdc'))
    other = _model(PromptedViT(**VIT, num_prompts=3,
                               prompt_structure=structure))
    # the silent case: every tensor has the other model's shape
    assert {k: v.shape for k, v in trained.state_dict().items()} == \
        {k: v.shape for k, v in other.state_dict().items()}
    path, sd = _through_file(tmp_path, trained.state_dict())
    with pytest.raises(MethodMismatchError) as e:
        other.load_state_dict(sd)
    msg = str(e.value)
    assert msg.startswith(f'{path} was trained with other backbone '
                          f'settings than model.backbone (PromptedViT)')
    assert f"prompt_structure: checkpoint 'cdc', this model " \
           f"'{structure}'" in msg
    assert '--cfg-options model.backbone.prompt_structure=cdc' in msg
    assert 'num_prompts' not in msg  # equal settings are not listed


def test_each_differing_setting_with_both_values(tmp_path):
    """DA, AR, N, the encoder's options: every difference, one line each."""
    trained = PromptedViT(**VIT, num_prompts=3, dynamic_aggregation=True,
                          ar_tokens=2, out_indices=(1, 3))
    _, sd = _through_file(tmp_path, trained.state_dict())
    other = PromptedViT(**VIT, num_prompts=3, prompt_structure='cdc',
                        dynamic_aggregation=False, ar_tokens=0,
                        out_indices=(1, 3), act_layer='quick_gelu',
                        final_norm=False)
    with pytest.raises(MethodMismatchError) as e:
        other.load_state_dict(sd)
    lines = str(e.value).splitlines()
    for want in ('  dynamic_aggregation: checkpoint True, this model False',
                 '  ar_tokens: checkpoint 2, this model 0',
                 "  act_layer: checkpoint 'gelu', this model 'quick_gelu'",
                 '  final_norm: checkpoint True, this model False'):
        assert want in lines, (want, lines)
    with pytest.raises(MethodMismatchError,
                       match=r'out_indices: checkpoint \[1, 3\], this model '
                             r'\[3\]'):
        PromptedViT(**VIT, num_prompts=3, dynamic_aggregation=True,
                    ar_tokens=2).load_state_dict(sd)


def test_gapt_settings(tmp_path):
    trained = GatedViT(**VIT, num_prompts=2)
    _, sd = _through_file(tmp_path, trained.state_dict())
    with pytest.raises(MethodMismatchError,
                       match=r'temperature_range: checkpoint \[0.01, 10.0\], '
                             r'this model \[0.1, 5.0\]'):
        GatedViT(**VIT, num_prompts=2,
                 temperature_range=(0.1, 5.)).load_state_dict(sd)
    # gate_init only starts the gates: not a setting of a trained model
    GatedViT(**VIT, num_prompts=2, gate_init=3.).load_state_dict(sd)


def test_swin_structures(tmp_path):
    kw = dict(arch=dict(embed_dims=16, depths=(2, 2), num_heads=(2, 4)),
              img_size=32, patch_size=2, window_size=4, num_prompts=2)
    _, sd = _through_file(tmp_path, PromptedSwin(
        **kw, prompt_structure='cdc').state_dict())
    with pytest.raises(MethodMismatchError,
                       match="prompt_structure: checkpoint 'cdc', this model "
                             "'deep'"):
        PromptedSwin(**kw, prompt_structure='deep').load_state_dict(sd)


def test_prompt_only_checkpoint_carries_the_record(tmp_path):
    trained = _model(PromptedViT(**VIT, num_prompts=3))
    sd = prompt_only_state_dict(trained.state_dict(),
                                {'backbone': trained.backbone}, str(tmp_path))
    assert not any(k.startswith('backbone.blocks.') for k in sd)
    _, sd = _through_file(tmp_path, sd)
    with pytest.raises(MethodMismatchError,
                       match="prompt_structure: checkpoint 'cdc', this model "
                             "'deep'"):
        _model(PromptedViT(**VIT, num_prompts=3, prompt_structure='deep')
               ).load_state_dict(sd, strict=False)


def test_same_settings_load(tmp_path):
    trained = _model(PromptedViT(**VIT, num_prompts=3, ar_tokens=2))
    with torch.no_grad():
        trained.backbone.ar_prompts.normal_()
    _, sd = _through_file(tmp_path, trained.state_dict())
    same = _model(PromptedViT(**VIT, num_prompts=3, ar_tokens=2,
                              drop_path_rate=0.1, prompt_dropout=0.2))
    same.load_state_dict(sd)  # training-only settings are not compared
    assert torch.equal(same.backbone.ar_prompts, trained.backbone.ar_prompts)


@pytest.fixture
def warnings_of_the_toolbox():
    """The records of the toolbox's logger (it does not propagate once
    mmseg_ivpt forwards it to mmengine)."""
    got = []
    handler = logging.Handler()
    handler.emit = got.append
    log = logging.getLogger('mmseg_ivpt')
    log.addHandler(handler)
    yield got
    log.removeHandler(handler)


def test_old_checkpoint_without_record_loads_with_a_warning(
        tmp_path, warnings_of_the_toolbox):
    trained = PromptedViT(**VIT, num_prompts=3)
    old = dict(trained.state_dict())  # no _metadata: no record
    path, sd = _through_file(tmp_path, old)
    other = PromptedViT(**VIT, num_prompts=3, prompt_structure='deep')
    other.load_state_dict(sd)
    assert torch.equal(other.prompts, trained.prompts)
    msgs = [r.getMessage() for r in warnings_of_the_toolbox
            if r.levelno == logging.WARNING]
    assert any('records no backbone settings' in m and
               'PromptedViT without checking' in m for m in msgs), msgs


def test_pretrained_vit_file_has_no_record_and_loads(
        tmp_path, warnings_of_the_toolbox):
    path = tmp_path / 'vit.pth'
    torch.save(timm_vit().state_dict(), path)
    m = PromptedViT(**VIT, num_prompts=3, prompt_structure='deep',
                    init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    m.init_weights()
    assert m.pretrained_path == str(path)
    assert not any('records no backbone settings' in r.getMessage()
                   for r in warnings_of_the_toolbox)
