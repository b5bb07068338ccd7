"""PromptedViT as a backbone: parity with timm when prompts are off, output
formats, trainable parameters (iVPT Table 7), freezing, bad arguments."""
import pytest
import torch
from ivpt_helpers import IMG, PATCH, TINY, prompted, timm_vit, trainable
from timm.layers import resample_abs_pos_embed

from mmseg_ivpt.models import PromptedViT


@pytest.mark.parametrize('structure', ['deep', 'cdc', 'provp', 'shallow'])
@pytest.mark.parametrize('patch_size', [14, 16])
def test_prompts_off_equals_timm(structure, patch_size):
    img_size = 4 * patch_size
    t = timm_vit(img_size, patch_size)
    m = prompted(t, img_size, patch_size, num_prompts=0,
                 prompt_structure=structure, out_type='cls_token')
    img = torch.randn(2, 3, img_size, img_size)
    with torch.no_grad():
        want = t.forward_features(img)
        got = m.forward_tokens(img)[0][-1]
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
        torch.testing.assert_close(m(img)[0], want[:, 0], rtol=0, atol=1e-5)
        fm = prompted(t, img_size, patch_size, out_type='featmap')(img)[0]
    assert fm.shape == (2, TINY['embed_dims'], 4, 4)
    torch.testing.assert_close(fm.flatten(2).transpose(1, 2), want[:, 1:],
                               rtol=0, atol=1e-5)


def test_other_input_size_resamples_position_embedding():
    """A 48x48 input on a 32x32 model equals timm at 48 with the position
    embedding resampled by timm."""
    t = timm_vit()
    m = prompted(t, out_type='cls_token')
    big = timm_vit(48, PATCH)
    sd = t.state_dict()
    sd['pos_embed'] = resample_abs_pos_embed(sd['pos_embed'], (6, 6),
                                             num_prefix_tokens=1,
                                             antialias=False)
    big.load_state_dict(sd)
    img = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(m.forward_tokens(img)[0][-1],
                                   big.forward_features(img), rtol=0,
                                   atol=1e-5)


def test_out_indices_and_types():
    m = prompted(num_prompts=2, out_indices=(1, 3))
    img = torch.randn(2, 3, IMG, IMG)
    outs = m(img)
    assert len(outs) == 2 and all(o.shape == (2, 64, 4, 4) for o in outs)
    m.out_type = 'avg_featmap'
    toks = m.forward_tokens(img)[0]
    avg = m(img)
    torch.testing.assert_close(avg[1], toks[1][:, 3:].mean(1))
    assert avg[0].shape == (2, 64)


# --------------------------------------------------------- parameter counts
def _count(**kw):
    with torch.device('meta'):
        m = PromptedViT(**kw)
    return sum(trainable(m).values()), trainable(m)


@pytest.mark.parametrize('kw,expected', [
    # iVPT Table 7, ADE20K on ViT-L/16 (heads counted apart)
    (dict(arch='l', img_size=512, num_prompts=10, prompt_structure='deep'),
     24 * 10 * 1024),
    (dict(arch='l', img_size=512, num_prompts=10, dynamic_aggregation=True),
     24 * 10 * 1024 + 23 * 100),
    (dict(arch='l', img_size=512, num_prompts=100, dynamic_aggregation=True),
     24 * 100 * 1024 + 23 * 100 * 100),
    (dict(arch='l', img_size=512, num_prompts=0, finetune='bias'), 270336),
    (dict(arch='l', img_size=512, num_prompts=0), 0),
    # VTAB formula on ViT-B/16: 12*N*768 + 11*N^2 + 11*k*768
    (dict(arch='b', num_prompts=10, dynamic_aggregation=True, ar_tokens=30),
     12 * 10 * 768 + 11 * 100 + 11 * 30 * 768),
    (dict(arch='b', num_prompts=50, prompt_structure='shallow'), 50 * 768),
    (dict(arch='b', num_prompts=5, prompt_structure='provp'), 12 * 5 * 768),
    (dict(arch='b', num_prompts=5, ar_tokens=1, ar_mode='all'),
     12 * 5 * 768 + 11 * 196 * 768),
    (dict(arch='h', img_size=224, patch_size=14, num_prompts=10),
     32 * 10 * 1280),
])
def test_trainable_parameter_counts(kw, expected):
    total, names = _count(**kw)
    assert total == expected, names


def test_full_finetune_trains_everything():
    m = prompted(num_prompts=2, finetune='full')
    assert all(p.requires_grad for p in m.parameters())


# ---------------------------------------------------------------- training
@pytest.mark.parametrize('finetune', ['prompt', 'bias'])
def test_training_step_changes_only_trainable(finetune):
    m = prompted(num_prompts=3, dynamic_aggregation=True, ar_tokens=4,
                 prompt_dropout=0.1, finetune=finetune, drop_path_rate=0.1)
    m.train()
    # frozen parts stay in eval mode, prompt dropout follows train()
    assert not m.blocks.training and not m.patch_embed.training
    assert m.prompt_drop.training
    before = {k: v.clone() for k, v in m.state_dict().items()}
    opt = torch.optim.SGD(m.parameters(), lr=1.0, momentum=0.9,
                          weight_decay=0.1)
    head = torch.nn.Linear(64, 5)
    for _ in range(2):
        out = m(torch.randn(4, 3, IMG, IMG))[0].mean((2, 3))
        loss = torch.nn.functional.cross_entropy(head(out),
                                                 torch.arange(4))
        opt.zero_grad()
        loss.backward()
        opt.step()
    train = set(trainable(m))
    assert {'prompts', 'da_weights', 'ar_prompts'} <= train
    for k, v in m.state_dict().items():
        changed = not torch.equal(v, before[k])
        assert changed == (k in train), k
    if finetune == 'bias':
        assert 'blocks.0.attn.qkv.bias' in train
        assert 'blocks.0.norm1.bias' in train
        assert 'patch_embed.proj.bias' not in train


def test_activation_checkpointing_same_gradients():
    t = timm_vit()
    grads = []
    for with_cp in (False, True):
        torch.manual_seed(1)
        m = prompted(t, num_prompts=3, ar_tokens=2, with_cp=with_cp).train()
        with torch.no_grad():
            m.ar_prompts.normal_()
        m(torch.randn(2, 3, IMG, IMG))[0].square().sum().backward()
        grads.append((m.prompts.grad.clone(), m.ar_prompts.grad.clone()))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


# ------------------------------------------------------------ bad arguments
@pytest.mark.parametrize('kw,match', [
    (dict(prompt_structure='expres'), 'prompt_structure'),
    (dict(prompt_structure='deep', dynamic_aggregation=True),
     'dynamic_aggregation'),
    (dict(ar_tokens=17), 'ar_tokens=17 .*M=16'),
    (dict(num_prompts=-1), 'num_prompts'),
    (dict(img_size=30), 'img_size'),
    (dict(ar_mode='some'), 'ar_mode'),
    (dict(out_type='pooled'), 'out_type'),
    (dict(finetune='lora'), 'finetune'),
    (dict(arch='xl'), 'arch'),
    (dict(arch=dict(embed_dims=64, num_layers=2)), 'arch'),
    (dict(init_cfg=dict(type='Pretrained')), 'checkpoint'),
    (dict(init_cfg=dict(type='Kaiming')), 'init_cfg'),
    (dict(prompt_dropout=1.5), 'prompt_dropout'),
    (dict(out_indices=(4, )), 'out_indices'),
])
def test_bad_arguments_are_named(kw, match):
    args = dict(arch=TINY, img_size=IMG, patch_size=PATCH)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        PromptedViT(**args)

