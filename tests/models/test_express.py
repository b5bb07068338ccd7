"""EXPRESS (Das et al., CVPR 2023; iVPT Fig. 3 (C)) against its equations
(docs/design.md, "EXPRESS"), written here on timm's own blocks, through the
SDPA and the explicit attention paths; its parameter count."""
import pytest
import torch
from ivpt_helpers import IMG, TINY, prompted, timm_tokens, timm_vit, trainable
from test_prompt_structures import reference

from mmseg_ivpt.models import PromptedViT

N, B = 3, 2


def at_slot(r, t):
    """r (N, C) placed at positions 1..N of a (T, C) zero tensor."""
    z = r.new_zeros(t, r.shape[1])
    z[1:1 + r.shape[0]] = r
    return z


def express_block(blk, x, r_ln, r_qkv, r_o):
    """One timm block with EXPRESS's residuals at the prompt positions:
    H = LN1(X) + R_ln, [Q K V] = H W_qkv + b + R_qkv,
    A = softmax(Q K^T / sqrt(d)) V W_o + b_o + R_o, X' = X + A,
    X'' = X' + MLP(LN2(X'))."""
    a = blk.attn
    b, t, d = x.shape
    h = blk.norm1(x) + at_slot(r_ln, t)
    qkv = a.qkv(h) + at_slot(r_qkv, t)
    q, k, v = qkv.reshape(b, t, 3, a.num_heads, d // a.num_heads).permute(
        2, 0, 3, 1, 4)
    w = (q @ k.transpose(-2, -1) * a.scale).softmax(-1)
    o = a.proj((w @ v).transpose(1, 2).reshape(b, t, d)) + at_slot(r_o, t)
    x = x + o
    return x + blk.mlp(blk.norm2(x))


def express_reference(t, img, P, r_ln, r_qkv, r_o):
    """P^0 enters once; each block's output prompts go on to the next."""
    x = timm_tokens(t, img)
    x = torch.cat([x[:, :1], P[0].expand(x.shape[0], -1, -1), x[:, 1:]], 1)
    for l, blk in enumerate(t.blocks):  # noqa: E741 (the papers' l)
        x = express_block(blk, x, r_ln[l], r_qkv[l], r_o[l])
    return t.norm(x)


def _express(t, **kw):
    m = prompted(t, num_prompts=N, prompt_structure='express', **kw)
    with torch.no_grad():
        for name in ('prompts', 'express_ln', 'express_qkv', 'express_proj'):
            getattr(m, name).normal_(0, 0.5)
    return m


@pytest.mark.parametrize('explicit', [False, True])
def test_express_matches_equation(explicit):
    t = timm_vit()
    m = _express(t)
    m.explicit_attention = explicit
    img = torch.randn(B, 3, IMG, IMG)
    with torch.no_grad():
        got = m.forward_tokens(img)[0][-1]
        want = express_reference(t, img, m.prompts, m.express_ln,
                                 m.express_qkv, m.express_proj)
    assert got.shape == (B, 1 + N + (IMG // 8) ** 2, TINY['embed_dims'])
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_express_each_residual_matters_and_trains():
    t = timm_vit()
    m = _express(t)
    img = torch.randn(B, 3, IMG, IMG)
    base = m(img)[0]
    base.square().mean().backward()
    for name in ('express_ln', 'express_qkv', 'express_proj'):
        p = getattr(m, name)
        # (the last block's prompt queries reach no patch token: not min)
        assert p.grad is not None and p.grad.abs().sum() > 0, name
        with torch.no_grad():
            kept = p.clone()
            p.zero_()
            assert (m(img)[0] - base).abs().max() > 1e-3, name
            p.copy_(kept)
    # frozen encoder gets no gradient
    assert all(p.grad is None for n, p in m.named_parameters()
               if n.startswith('blocks.'))


def test_express_starts_as_vpt_shallow():
    """Zero residuals (the init): EXPRESS is VPT-shallow, Eq. 2."""
    t = timm_vit()
    m = prompted(t, num_prompts=N, prompt_structure='express')
    assert all(getattr(m, n).abs().sum() == 0
               for n in ('express_ln', 'express_qkv', 'express_proj'))
    img = torch.randn(B, 3, IMG, IMG)
    with torch.no_grad():
        got = m.forward_tokens(img)[0][-1]
        want = reference(t, img, 'shallow', m.prompts)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_express_with_ar_and_checkpointing():
    """AR composes with EXPRESS; activation checkpointing gives the same
    result and gradients."""
    t = timm_vit()
    m = _express(t, ar_tokens=2)
    with torch.no_grad():
        m.ar_prompts.normal_(0, 0.5)
    img = torch.randn(B, 3, IMG, IMG)
    m.train()
    out = m(img)[0]
    out.sum().backward()
    g = m.express_qkv.grad.clone()
    m.zero_grad()
    m.with_cp = True
    out_cp = m(img)[0]
    out_cp.sum().backward()
    torch.testing.assert_close(out_cp, out, rtol=0, atol=1e-6)
    torch.testing.assert_close(m.express_qkv.grad, g, rtol=1e-5, atol=1e-6)


def test_express_parameter_count():
    """N D (the shallow prompts) + L N (D + 3D + D) (the residuals)."""
    with torch.device('meta'):
        m = PromptedViT(arch='b', num_prompts=10, prompt_structure='express')
    got = trainable(m)
    assert got == {'prompts': 10 * 768, 'express_ln': 12 * 10 * 768,
                   'express_qkv': 12 * 10 * 3 * 768,
                   'express_proj': 12 * 10 * 768}
    assert sum(got.values()) == 468_480
    with torch.device('meta'):
        vitl = PromptedViT(arch='l', num_prompts=10,
                           prompt_structure='express')
    assert sum(trainable(vitl).values()) == 10 * 1024 + 24 * 10 * 5 * 1024


def test_express_bad_arguments():
    with pytest.raises(ValueError, match='num_prompts > 0'):
        PromptedViT(arch=TINY, img_size=IMG, patch_size=8, num_prompts=0,
                    prompt_structure='express')
    with pytest.raises(ValueError, match='dynamic_aggregation'):
        PromptedViT(arch=TINY, img_size=IMG, patch_size=8, num_prompts=2,
                    prompt_structure='express', dynamic_aggregation=True)
