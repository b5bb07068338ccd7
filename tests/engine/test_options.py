"""``--cfg-options`` reach every tool that builds a model the way they reach
tools/train.py (``apply_cfg_options``): ``pretrained=PATH`` trains on PATH
through the protocol, ``model.backbone.arch.num_layers=2`` is a 2-layer ViT
in count_params.py, protocol.py and runtime_report.py, and an option that
cannot be merged is one line naming it. Each case is run as the user ran
it, as a subprocess."""
import json
import os.path as osp
import textwrap

import pytest
from ivpt_runs import ROOT, make_vtab, pretrained_tiny, run_tool, small_config
from mmengine.config import Config

from mmseg_ivpt.analysis.params import build_model_on_meta, count_parameters
from mmseg_ivpt.protocol import load_task_config

EUROSAT = osp.join(ROOT, 'configs', 'vtab', 'ivpt_vitb16_eurosat.py')
TWO_LAYERS = 'model.backbone.arch.num_layers=2'


def tool(script, *args, cwd=ROOT, rc=0):
    res = run_tool(script, *args, cwd=cwd)
    assert res.returncode == rc, res.stdout[-3000:] + res.stderr[-5000:]
    assert 'Traceback' not in res.stderr, res.stderr[-5000:]
    return res


@pytest.fixture(scope='module')
def two_layers():
    """Counts of the eurosat model with a 2-layer ViT-B, built here from
    the arch written out (not through the option)."""
    from mmseg_ivpt.models.vit import resolve_arch
    cfg = Config.fromfile(EUROSAT)
    cfg.model.backbone.arch = dict(resolve_arch('b'), num_layers=2)
    n = count_parameters(build_model_on_meta(cfg))
    full = count_parameters(build_model_on_meta(Config.fromfile(EUROSAT)))
    assert n['trainable'] < full['trainable']
    return n


@pytest.mark.slow
def test_count_params_takes_an_arch_option(two_layers):
    out = tool('count_params.py', EUROSAT, '--cfg-options',
               TWO_LAYERS).stdout
    assert (f"| ivpt_vitb16_eurosat.py | {two_layers['trainable']:,} | "
            f"{two_layers['backbone.trainable']:,} | "
            f"{two_layers['total']:,} |") in out, out


@pytest.mark.slow
def test_runtime_report_takes_an_arch_option(two_layers, tmp_path):
    js = str(tmp_path / 'r.json')
    tool(osp.join('analysis', 'runtime_report.py'), EUROSAT, '--methods',
         'ivpt', '--no-timing', '--json', js, '--cfg-options', TWO_LAYERS)
    with open(js) as f:
        params = json.load(f)['params']
    assert params == {'ivpt': {'ivpt_vitb16_eurosat.py':
                               two_layers['trainable']}}


@pytest.mark.slow
def test_protocol_takes_an_arch_option(tmp_path):
    root = tmp_path / 'runs'
    out = tool('protocol.py', 'sweep', EUROSAT, '--dry-run', '--lrs', '1',
               '--wds', '0', '--work-root', str(root), '--cfg-options',
               TWO_LAYERS).stdout
    assert 'eurosat: 1 runs; ivpt: SGD, batch 128' in out
    assert not root.exists()
    cfg = load_task_config(EUROSAT, 'vpt_deep', {TWO_LAYERS.split('=')[0]: 2})
    assert cfg.model.backbone.arch == dict(embed_dims=768, num_layers=2,
                                           num_heads=12,
                                           feedforward_channels=3072)


@pytest.mark.slow
@pytest.mark.parametrize('script,args', [
    ('count_params.py', [EUROSAT]),
    ('protocol.py', ['sweep', EUROSAT, '--dry-run']),
    (osp.join('analysis', 'runtime_report.py'), [EUROSAT, '--no-timing']),
])
def test_an_option_that_cannot_merge_is_named(script, args, tmp_path):
    res = tool(script, *args, '--cfg-options', 'train_cfg.max_epochs.x=1',
               cwd=str(tmp_path), rc=1)
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f'{osp.basename(script)}: '), res.stderr[-3000:]
    assert '--cfg-options train_cfg.max_epochs.x' in last, last


@pytest.mark.parametrize('method', ['ivpt', 'vpt_deep', 'ivpt_mae',
                                    'gapt_mocov3'])
def test_pretrained_option_reaches_every_method(method):
    """The method's file (the supervised ViT-B/16, MAE's or MoCo-v3's) is
    the one `pretrained=PATH` replaces, as tools/train.py replaces it; an
    explicit checkpoint in the same options wins."""
    mine = '/data/my_vit.pth'
    cfg = load_task_config(EUROSAT, method, {'pretrained': mine})
    assert cfg.model.backbone.init_cfg.checkpoint == mine
    assert cfg.pretrained == mine
    cfg = load_task_config(EUROSAT, method, {
        'pretrained': mine, 'model.backbone.init_cfg.checkpoint': '/x.pth'})
    assert cfg.model.backbone.init_cfg.checkpoint == '/x.pth'


@pytest.mark.slow
def test_protocol_trains_on_the_pretrained_option(tmp_path):
    """The config names a file that is not there; `--cfg-options
    pretrained=` the tiny ViT: the sweep trains on that one (without the
    option it would stop at the missing file)."""
    make_vtab(tmp_path / 'vtab', task='eurosat', n=8)
    tiny = pretrained_tiny(tmp_path)
    absent = str(tmp_path / 'absent_vit.pth')
    base = small_config(tmp_path, 'configs/vtab/ivpt_vitb16_eurosat.py',
                        f"data_root={str(tmp_path / 'vtab')!r}", absent)
    mine = tmp_path / 'mine.py'
    mine.write_text(textwrap.dedent(f"""
        _base_ = [{base!r}]
        pretrained = {absent!r}  # as the model base names its file
    """))
    root = str(tmp_path / 'runs')
    res = tool('protocol.py', 'sweep', str(mine), '--lrs', '1', '--wds', '0',
               '--work-root', root, '--cfg-options', f'pretrained={tiny}')
    run = osp.join(root, 'vtab', 'ivpt', 'eurosat', 'sweep', 'lr1_wd0')
    cfg = Config.fromfile(osp.join(run, 'config.py'))
    assert cfg.model.backbone.init_cfg.checkpoint == tiny
    assert f'loaded the pretrained ViT {tiny}' in res.stdout + res.stderr
    with open(osp.join(run, 'result.json')) as f:
        assert json.load(f)['cfg_options'] == {'pretrained': tiny}
