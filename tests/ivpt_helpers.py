"""Small random models for the tests, and the independent references they
are checked against (timm's ViT and formulas written from the paper)."""
import numpy as np
import timm
import torch

from mmseg_ivpt.models import PromptedViT, load_encoder_weights

TINY = dict(embed_dims=64, num_layers=4, num_heads=4, feedforward_channels=128)
IMG, PATCH = 32, 8  # 4x4 = 16 patches


def timm_vit(img_size=IMG, patch_size=PATCH, arch=TINY):
    """A random timm ViT with every tensor (biases, norms too) randomised."""
    t = timm.models.VisionTransformer(
        img_size=img_size, patch_size=patch_size,
        embed_dim=arch['embed_dims'], depth=arch['num_layers'],
        num_heads=arch['num_heads'],
        mlp_ratio=arch['feedforward_channels'] / arch['embed_dims'],
        num_classes=0)
    with torch.no_grad():
        for p in t.parameters():
            p.normal_(0, 0.2)
    return t.eval()


def prompted(t=None, img_size=IMG, patch_size=PATCH, **kw):
    """A PromptedViT carrying the weights of timm model ``t``."""
    t = t if t is not None else timm_vit(img_size, patch_size)
    kw.setdefault('num_prompts', 0)
    m = PromptedViT(arch=TINY, img_size=img_size, patch_size=patch_size, **kw)
    load_encoder_weights(m, t.state_dict())
    return m.eval()


def trainable(model):
    return {n: p.numel() for n, p in model.named_parameters()
            if p.requires_grad}


def timm_tokens(t, img):
    """[cls, patches] + position embedding, by timm."""
    x = t.patch_embed(img)
    cls = t.cls_token.expand(x.shape[0], -1, -1)
    return torch.cat([cls, x], 1) + t.pos_embed


def cls_attention(blk, x):
    """Softmax attention of the cls query over all keys, mean over heads,
    computed explicitly from timm's block: (B, T)."""
    a = blk.attn
    b, t, d = x.shape
    qkv = a.qkv(blk.norm1(x)).reshape(b, t, 3, a.num_heads, d // a.num_heads)
    q, k, _ = qkv.permute(2, 0, 3, 1, 4)
    w = (q @ k.transpose(-2, -1) * a.scale).softmax(-1)  # (B, h, T, T)
    return w[:, :, 0].mean(1)


def to_npz(t, path):
    """Write timm model ``t`` in Google's original ViT npz layout."""
    w = {}
    d = t.embed_dim
    h = t.blocks[0].attn.num_heads
    sd = {k: v.detach().numpy() for k, v in t.state_dict().items()}
    w['embedding/kernel'] = sd['patch_embed.proj.weight'].transpose(2, 3, 1,
                                                                    0)
    w['embedding/bias'] = sd['patch_embed.proj.bias']
    w['cls'] = sd['cls_token']
    w['Transformer/posembed_input/pos_embedding'] = sd['pos_embed']
    w['Transformer/encoder_norm/scale'] = sd['norm.weight']
    w['Transformer/encoder_norm/bias'] = sd['norm.bias']
    for i in range(len(t.blocks)):
        b, p = f'blocks.{i}.', f'Transformer/encoderblock_{i}/'
        for ln, name in (('norm1', 'LayerNorm_0'), ('norm2', 'LayerNorm_2')):
            w[p + name + '/scale'] = sd[b + ln + '.weight']
            w[p + name + '/bias'] = sd[b + ln + '.bias']
        qkv_w = sd[b + 'attn.qkv.weight'].reshape(3, d, d)
        qkv_b = sd[b + 'attn.qkv.bias'].reshape(3, d)
        for j, n in enumerate(('query', 'key', 'value')):
            m = p + 'MultiHeadDotProductAttention_1/' + n
            w[m + '/kernel'] = qkv_w[j].T.reshape(d, h, d // h)
            w[m + '/bias'] = qkv_b[j].reshape(h, d // h)
        o = p + 'MultiHeadDotProductAttention_1/out'
        w[o + '/kernel'] = sd[b + 'attn.proj.weight'].reshape(
            d, h, d // h).transpose(1, 2, 0)
        w[o + '/bias'] = sd[b + 'attn.proj.bias']
        for j, fc in enumerate(('fc1', 'fc2')):
            m = p + f'MlpBlock_3/Dense_{j}'
            w[m + '/kernel'] = sd[b + f'mlp.{fc}.weight'].T
            w[m + '/bias'] = sd[b + f'mlp.{fc}.bias']
    np.savez(path, **w)
