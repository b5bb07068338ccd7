"""Each prompt structure against its equation, written here from the paper
and run on timm's own blocks (iVPT Eq. 2-6, 14-15, Fig. 3; docs/design.md)."""
import pytest
import torch
from ivpt_helpers import IMG, cls_attention, prompted, timm_tokens, timm_vit

N, K, B = 3, 5, 3


def reference(t, img, structure, P, gamma=None, p_re=None, ar_mode='topk'):
    """Eq. 2-6 (+ Eq. 14-15 when ``p_re`` is given); final-normed tokens."""
    x = timm_tokens(t, img)
    L, n = len(t.blocks), P.shape[1]
    b = x.shape[0]
    prev_hat = None
    for l, blk in enumerate(t.blocks):  # noqa: E741 (the papers' l)
        if l == 0:
            hat = P[0]
        elif structure == 'shallow':
            hat = None  # what block l-1 put out stays in the slot
        elif structure == 'deep':
            hat = P[l]
        elif structure == 'cdc' and gamma is None:
            hat = P[l] + P[l - 1]  # Eq. 4
        elif structure == 'cdc':
            hat = P[l] + torch.stack([  # Eq. 5-6, written as a sum
                sum(gamma[l - 1, i, j] * P[l - 1, j] for j in range(n))
                for i in range(n)])
        elif structure == 'vanilla_cdc':
            hat = P[l] + prev_hat
        elif structure == 'provp':
            hat = P[l] + x[:, 1:1 + n]  # previous block's output prompts
        prev_hat = hat
        if hat is not None:
            rest = x[:, 1:] if l == 0 else x[:, 1 + n:]
            x = torch.cat([x[:, :1], hat.expand(b, n, -1), rest], 1)
        x_in = x
        x = blk(x).clone()
        if p_re is not None and l < L - 1:
            if ar_mode == 'all':
                x[:, 1 + n:] += p_re[l]
                continue
            w = cls_attention(blk, x_in)[:, 1 + n:]  # over the M patches
            for i in range(b):  # per image, rank order
                order = torch.argsort(w[i], descending=True)[:p_re.shape[1]]
                for j, idx in enumerate(order.tolist()):
                    x[i, 1 + n + idx] += p_re[l, j]
    return t.norm(x)


def _randomise(m):
    with torch.no_grad():
        m.prompts.normal_(0, 0.5)
        if m.da_weights is not None:
            m.da_weights.normal_(0, 0.5)
        if m.ar_prompts is not None:
            m.ar_prompts.normal_(0, 0.5)


CASES = [
    ('shallow', False, 0, 'topk'),
    ('deep', False, 0, 'topk'),
    ('vanilla_cdc', False, 0, 'topk'),
    ('cdc', False, 0, 'topk'),
    ('cdc', True, 0, 'topk'),
    ('provp', False, 0, 'topk'),
    ('cdc', True, K, 'topk'),
    ('deep', False, K, 'topk'),
    ('cdc', True, K, 'all'),
]


@pytest.mark.parametrize('structure,da,k,ar_mode', CASES)
@pytest.mark.parametrize('explicit', [False, True])
def test_structure_matches_equation(structure, da, k, ar_mode, explicit):
    t = timm_vit()
    m = prompted(t, num_prompts=N, prompt_structure=structure,
                 dynamic_aggregation=da, ar_tokens=k, ar_mode=ar_mode)
    _randomise(m)
    m.explicit_attention = explicit
    img = torch.randn(B, 3, IMG, IMG)
    with torch.no_grad():
        got = m.forward_tokens(img)[0][-1]
        want = reference(t, img, structure, m.prompts, m.da_weights,
                         m.ar_prompts, ar_mode)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_identity_da_equals_cdc():
    t = timm_vit()
    da = prompted(t, num_prompts=N, dynamic_aggregation=True)
    cdc = prompted(t, num_prompts=N)
    with torch.no_grad():
        cdc.prompts.copy_(da.prompts)
    assert torch.equal(da.da_weights, torch.eye(N).expand(3, N, N))
    img = torch.randn(B, 3, IMG, IMG)
    with torch.no_grad():
        torch.testing.assert_close(da(img)[0], cdc(img)[0], rtol=0, atol=0)


def test_ar_fast_path_equals_explicit_and_is_per_image():
    t = timm_vit()
    m = prompted(t, num_prompts=N, dynamic_aggregation=True, ar_tokens=K)
    _randomise(m)
    img = torch.randn(B, 3, IMG, IMG)
    with torch.no_grad():
        fast = m(img)[0]
        m.explicit_attention = True
        slow = m(img)[0]
        torch.testing.assert_close(fast, slow, rtol=0, atol=1e-5)
        # each image alone gives its own rows of the batch: per-image top-k
        single = torch.cat([m(img[i:i + 1])[0] for i in range(B)])
        torch.testing.assert_close(single, slow, rtol=0, atol=1e-5)
        # and AR does change the result
        m.ar_prompts.zero_()
        assert (m(img)[0] - slow).abs().max() > 1e-2


def test_ar_starts_as_noop():
    t = timm_vit()
    with_ar = prompted(t, num_prompts=N, ar_tokens=K)
    without = prompted(t, num_prompts=N)
    with torch.no_grad():
        without.prompts.copy_(with_ar.prompts)
        img = torch.randn(2, 3, IMG, IMG)
        assert torch.equal(with_ar(img)[0], without(img)[0])


def test_cdc_slot_is_data_independent():
    """Nothing of the image reaches the next prompt slot in cdc (Sec. 4.3),
    while ProVP carries the previous output prompts."""
    t = timm_vit()
    for structure, independent in (('cdc', True), ('vanilla_cdc', True),
                                   ('provp', False)):
        m = prompted(t, num_prompts=N, prompt_structure=structure)
        seen = []
        orig = m.enter_block

        def spy(layer, x, ctx, orig=orig):
            y = orig(layer, x, ctx)
            seen.append(y[:, 1:1 + N].detach().clone())
            return y

        m.enter_block = spy
        with torch.no_grad():
            m(torch.randn(2, 3, IMG, IMG))
        slot = seen[2]
        assert torch.equal(slot[0], slot[1]) == independent, structure
