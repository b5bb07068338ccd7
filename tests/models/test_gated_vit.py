"""GatedViT (GaPT) against its equations written here on timm's blocks:
gated prompt slot and per-block attention temperature (GaPT paper Sec. 3,
its public code; docs/design.md)."""
import pytest
import torch
from ivpt_helpers import IMG, PATCH, TINY, timm_tokens, timm_vit, trainable

from mmseg_ivpt.models import GatedViT, load_encoder_weights

N, B = 3, 2


def gated(t, **kw):
    kw.setdefault('prompt_dropout', 0.)
    m = GatedViT(arch=TINY, img_size=IMG, patch_size=PATCH, num_prompts=N,
                 **kw)
    load_encoder_weights(m, t.state_dict())
    return m.eval()


def block_with_temperature(blk, x, tau):
    """timm block, attention written out: softmax(q k^T scale / tau)."""
    a = blk.attn
    b, t, d = x.shape
    h = a.num_heads
    qkv = a.qkv(blk.norm1(x)).reshape(b, t, 3, h, d // h)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    w = (q @ k.transpose(-2, -1) * a.scale / tau).softmax(-1)
    x = x + a.proj((w @ v).transpose(1, 2).reshape(b, t, d))
    return x + blk.mlp(blk.norm2(x))


def reference(t, img, prompts, gate_logits, taus):
    """Gated prompt tuning: slot after block l = g out + (1-g) in, l < L-1;
    returns the un-normed tokens of the last block."""
    x = timm_tokens(t, img)
    x = torch.cat([x[:, :1], prompts.expand(x.shape[0], -1, -1), x[:, 1:]], 1)
    L = len(t.blocks)
    for l, blk in enumerate(t.blocks):  # noqa: E741 (the papers' l)
        out = block_with_temperature(blk, x, taus[l])
        if l < L - 1:
            g = torch.sigmoid(gate_logits[l])
            out = out.clone()
            out[:, 1:1 + N] = g * out[:, 1:1 + N] + (1 - g) * x[:, 1:1 + N]
        x = out
    return x


@pytest.mark.parametrize('explicit', [False, True])
def test_gates_and_temperatures_match_equations(explicit):
    t = timm_vit()
    m = gated(t, out_type='cls_token')
    with torch.no_grad():
        m.prompts.normal_(0, 0.5)
        m.gate_logits.normal_(0, 2)
        m.temperatures.uniform_(0.3, 3)
    m.explicit_attention = explicit
    img = torch.randn(B, 3, IMG, IMG)
    with torch.no_grad():
        raw = reference(t, img, m.prompts, m.gate_logits, m.temperatures)
        torch.testing.assert_close(m.forward_tokens(img, norm=False)[0][-1],
                                   raw, rtol=0, atol=1e-5)
        # MoCo-v3 pooling: norm, then cls
        torch.testing.assert_close(m(img)[0], t.norm(raw)[:, 0], rtol=0,
                                   atol=1e-5)
        # MAE pooling: mean of all non-cls tokens (prompts too), then norm
        m.out_type = 'avg_all_tokens'
        torch.testing.assert_close(m(img)[0], t.norm(raw[:, 1:].mean(1)),
                                   rtol=0, atol=1e-5)


def test_temperature_is_clamped():
    t = timm_vit()
    m = gated(t, out_type='cls_token')
    with torch.no_grad():
        m.temperatures.fill_(100.)
    img = torch.randn(B, 3, IMG, IMG)
    with torch.no_grad():
        want = reference(t, img, m.prompts, m.gate_logits,
                         torch.full((4, ), 10.))
        torch.testing.assert_close(m.forward_tokens(img, norm=False)[0][-1],
                                   want, rtol=0, atol=1e-5)


def test_closed_gates_keep_the_prompt_slot():
    """Temperatures at 1 and gates closed: the slot leaving every gated block
    is the inserted prompts, and the model equals one without temperatures."""
    t = timm_vit()
    m = gated(t, gate_init=1e4, out_indices=(0, 1, 2, 3))
    plain = gated(t, gate_init=1e4, learn_temperature=False,
                  out_indices=(0, 1, 2, 3))
    with torch.no_grad():
        plain.prompts.copy_(m.prompts)
        img = torch.randn(B, 3, IMG, IMG)
        toks = m.forward_tokens(img)[0]
        for layer in range(3):  # blocks 0..L-2 are gated
            assert torch.equal(toks[layer][:, 1:1 + N],
                               m.prompts.expand(B, -1, -1))
        assert not torch.equal(toks[3][:, 1:1 + N],
                               m.prompts.expand(B, -1, -1))
        for a, b in zip(toks, plain.forward_tokens(img)[0]):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_only_prompts_gates_temperatures_train():
    m = gated(timm_vit(), prompt_dropout=0.1, out_type='cls_token').train()
    assert trainable(m) == {'prompts': N * 64, 'gate_logits': 3,
                            'temperatures': 4}
    before = {k: v.clone() for k, v in m.state_dict().items()}
    head = torch.nn.Linear(64, 3)
    opt = torch.optim.SGD(list(m.parameters()) + list(head.parameters()),
                          lr=0.5, momentum=0.9, weight_decay=0.01)
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(
            head(m(torch.randn(4, 3, IMG, IMG))[0]), torch.tensor([0, 1, 2,
                                                                   0]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]) == (k not in trainable(m)), k


@pytest.mark.parametrize('kw,match', [
    (dict(num_prompts=0), 'num_prompts'),
    (dict(gate_init=float('inf')), 'gate_init'),
    (dict(gate_init=float('nan')), 'gate_init'),
    (dict(temperature_range=(10., 0.01)), 'temperature_range'),
    (dict(out_type='avg'), 'out_type'),
])
def test_bad_arguments(kw, match):
    args = dict(arch=TINY, img_size=IMG, patch_size=PATCH)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        GatedViT(**args)


def _load(tmp_path, obj):
    path = str(tmp_path / 'ssl.pth')
    torch.save(obj, path)
    m = GatedViT(arch=TINY, img_size=IMG, patch_size=PATCH,
                 init_cfg=dict(type='Pretrained', checkpoint=path))
    m.init_weights()
    return m


def test_mae_checkpoint_layout(tmp_path):
    t = timm_vit()
    sd = dict(t.state_dict())
    sd['mask_token'] = torch.zeros(1, 1, 32)  # full MAE pretraining file
    sd['decoder_embed.weight'] = torch.zeros(32, 64)
    m = _load(tmp_path, dict(model=sd))
    for k, v in t.state_dict().items():
        assert torch.equal(m.state_dict()[k], v), k


def test_mocov3_checkpoint_layout(tmp_path):
    t = timm_vit()
    t.reset_classifier(10)
    sd = {f'module.{k}': v for k, v in t.state_dict().items()}
    m = _load(tmp_path, dict(epoch=300, arch='vit_base', state_dict=sd,
                             best_acc1=torch.tensor(76.7),
                             optimizer=dict(state={}, param_groups=[])))
    for k, v in t.state_dict().items():
        if not k.startswith('head.'):
            assert torch.equal(m.state_dict()[k], v), k
