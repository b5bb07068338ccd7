"""``--cfg-options`` with a top-level key that neither the config nor
mmengine's runner has (a typo) is refused before any work, naming the key
and the closest known ones; mmengine's own keys and ``+key`` (a key added
on purpose) are taken (issue 29, item 14)."""
import pytest
from ivpt_runs import SEG_CFG, run_tool
from mmengine.config import Config

from mmseg_ivpt.engine.checks import ConfigError
from mmseg_ivpt.engine.config import apply_cfg_options

#: keys mmengine's Runner.from_cfg reads that the demo config does not set
MMENGINE_KEYS = {'resume': True, 'load_from': '/x.pth', 'work_dir': '/w',
                 'launcher': 'none', 'experiment_name': 'e',
                 'auto_scale_lr.base_batch_size': 16,
                 'model_wrapper_cfg.type': 'MMDistributedDataParallel',
                 'randomness.seed': 3, 'env_cfg.cudnn_benchmark': True,
                 'custom_hooks': [], 'default_hooks.logger.interval': 1}


def test_runner_keys_and_new_keys_on_purpose_are_taken():
    cfg = Config.fromfile(SEG_CFG)
    absent = [k for k in MMENGINE_KEYS if k.split('.')[0] not in cfg]
    assert {'work_dir', 'experiment_name', 'auto_scale_lr.base_batch_size',
            'model_wrapper_cfg.type'} <= set(absent)  # the check means it
    apply_cfg_options(cfg, dict(MMENGINE_KEYS, **{'+my_note': 'x'}))
    assert (cfg.resume, cfg.load_from, cfg.my_note) == (True, '/x.pth', 'x')
    assert cfg.randomness.seed == 3 and '+my_note' not in cfg
    with pytest.raises(ConfigError, match=r"'zzqx' is neither a key of .*"
                       r"reads\. To add"):  # nothing close: no guess
        apply_cfg_options(Config.fromfile(SEG_CFG), {'zzqx': 1})


@pytest.mark.slow
def test_misspelt_top_level_key_is_refused(env, tmp_path):
    """As a user meets it: tools/train.py from another directory, with the
    4-iteration options of the tiny seg run and a typo; before, the typo
    was dropped and the run trained."""
    res = run_tool('train.py', SEG_CFG, '--work-dir', tmp_path / 'w',
                   '--cfg-options', *env['opts'], 'trian_cfg.max_iters=2',
                   cwd=tmp_path)
    assert res.returncode != 0, res.stdout[-2000:] + res.stderr[-3000:]
    err = res.stderr
    assert ("--cfg-options trian_cfg.max_iters: 'trian_cfg' is neither a "
            f"key of {SEG_CFG} nor one mmengine's runner reads (did you mean "
            'train_cfg or ') in err, err[-3000:]
    assert "leading '+': --cfg-options +trian_cfg.max_iters=..." in err
    assert not (tmp_path / 'w').exists()  # refused before any work
