"""The README's commands from a fresh shell, the venv not activated
(``env -i`` with PATH=/usr/bin:/bin, from another working directory): the
tools re-execute themselves in the repository's .venv and the .sh scripts
start it (tools/_venv.py); without a venv, a message says what to do; the
benchmarks need only torch and timm."""
import ast
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest
from ivpt_runs import ROOT, ok
from ivpt_runs import SEG_CFG as CFG

PATH = '/usr/bin:/bin'
VENV = os.environ.get('VENV') or '.venv'  # `make test` exports it
VENV_PYTHON = osp.join(ROOT, VENV, 'bin', 'python')

pytestmark = [
    pytest.mark.slow,  # the tools run, and train, from a bare shell
    pytest.mark.skipif(not any(osp.isfile(osp.join(d, 'python3'))
                               for d in PATH.split(':')),
                       reason='no python3 in /usr/bin or /bin'),
    pytest.mark.skipif(not osp.isfile(VENV_PYTHON),
                       reason=f'no {VENV} in the repository (the tests run '
                       'in another environment)')]


def bare(cmd, cwd, **env_vars):
    """``cmd`` as typed in a fresh shell: nothing but PATH, HOME (and VENV
    where the tests run with another one) in the environment."""
    full = dict(PATH=PATH, HOME=os.environ.get('HOME', '/tmp'), **env_vars)
    if 'VENV' in os.environ:
        full.setdefault('VENV', os.environ['VENV'])
    return subprocess.run(['env', '-i'] + [f'{k}={v}' for k, v in
                                           full.items()] + cmd,
                          cwd=cwd, capture_output=True, text=True,
                          timeout=900)


def test_count_params_from_a_bare_shell(tmp_path):
    """`python tools/count_params.py CONFIG` from another directory, and the
    README's FGVC mean (0.413M), which the tool now prints."""
    res = ok(bare(['python3', osp.join(ROOT, 'tools', 'count_params.py'),
                   CFG], str(tmp_path)))
    assert '| setr_ivpt_tiny_shapes.py |' in res.stdout, res.stdout
    assert 'mean' not in res.stdout  # one config: no mean
    res = ok(bare(['bash', '-c', 'python3 tools/count_params.py '
                   'configs/fgvc/ivpt_*.py'], ROOT))
    rows = [line for line in res.stdout.splitlines()
            if line.startswith('| ivpt_vitb16_')]
    assert len(rows) == 5, res.stdout
    trainable = [int(r.split('|')[2].replace(',', '')) for r in rows]
    mean = sum(trainable) / 5
    assert f'| mean of 5 | {mean:,.1f} |' in res.stdout, res.stdout
    assert f'mean over 5 configs: {mean / 1e6:.3f}M trainable (backbone ' \
        in res.stdout
    assert f'{mean / 1e6:.3f}' == '0.413'  # the README's figure


def test_browse_dataset_from_a_bare_shell(env, tmp_path):
    out = tmp_path / 'browse'
    res = ok(bare(['python3', osp.join(ROOT, 'tools', 'analysis',
                                       'browse_dataset.py'), CFG,
                   '--output-dir', str(out), '--num', '2', '--cfg-options']
                  + env['opts'], str(tmp_path)))
    assert '2 of 16 train samples written' in res.stdout, res.stdout
    assert len(list(out.glob('*.png'))) == 2


def test_dist_train_from_a_bare_shell(env, tmp_path):
    """`bash tools/dist_train.sh CONFIG 1`: no `python` on the PATH, and the
    bare python3 has no torch: the script starts the venv's."""
    work = tmp_path / 'work'
    res = ok(bare(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), CFG,
                   '1', '--work-dir', str(work), '--cfg-options']
                  + env['opts'], str(tmp_path), PORT='29533'))
    assert (work / 'iter_4.pth').is_file(), res.stdout[-3000:]


def test_without_a_venv_the_tools_say_what_to_do(tmp_path):
    missing = tmp_path / 'no-venv'
    res = bare(['python3', osp.join(ROOT, 'tools', 'count_params.py'), CFG],
               str(tmp_path), VENV=str(missing))
    bare_has_torch = bare(['python3', '-c', 'import torch'], str(tmp_path))
    if bare_has_torch.returncode == 0:
        pytest.skip('the system python3 has torch')
    assert res.returncode != 0
    assert 'tools/count_params.py: ' in res.stderr, res.stderr
    assert 'has no torch' in res.stderr and str(missing) in res.stderr
    assert '`make env`' in res.stderr and 'Traceback' not in res.stderr


def test_the_sh_scripts_python_and_the_benchmarks(tmp_path):
    """tools/_venv.py prints the venv's python to a bare shell; a benchmark
    re-executes there too, and runs without any venv on a python that has
    torch and timm (this one, told the venv is elsewhere)."""
    res = ok(bare(['python3', osp.join(ROOT, 'tools', '_venv.py')],
                  str(tmp_path)))
    assert osp.realpath(res.stdout.strip()) == osp.realpath(VENV_PYTHON) \
        or bare(['python3', '-c', 'import torch, mmengine'],
                str(tmp_path)).returncode == 0
    tool = osp.join(ROOT, 'tools', 'analysis', 'benchmark_backbone.py')
    res = ok(bare(['python3', tool, '--help'], str(tmp_path)))
    assert '--device' in res.stdout
    res = ok(subprocess.run(
        [sys.executable, tool, '--help'], cwd=str(tmp_path),
        capture_output=True, text=True,
        env=dict(os.environ, VENV=str(tmp_path / 'no-venv'))))
    assert '--device' in res.stdout


STDLIB = set(sys.stdlib_module_names)


def entries():
    return sorted(p for p in glob.glob(osp.join(ROOT, 'tools', '*.py')) +
                  glob.glob(osp.join(ROOT, 'tools', 'analysis', '*.py'))
                  if not osp.basename(p).startswith('_'))


@pytest.mark.parametrize('path', entries(),
                         ids=lambda p: osp.relpath(p, ROOT))
def test_every_tool_finds_the_venv_before_importing(path):
    """Each entry calls tools._venv.ensure() before its first import of a
    package that is not the standard library's (a bare python3 would stop
    there); the benchmarks ask for torch and timm only (the device
    machine's python has those), but the service's (benchmark_serve.py),
    which runs the bank on Ray Serve, and the converters' checks
    (benchmark_converter_checks.py: numpy and PIL; torch, which
    ``import mmseg_ivpt`` needs)."""
    tree = ast.parse(open(path).read())
    ensure_at = None
    for node in tree.body:
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                and getattr(node.value.func, 'id', None) == 'ensure'):
            ensure_at = node.lineno
            args = [a.value for a in node.value.args]
            if osp.basename(path) == 'benchmark_serve.py':
                assert set(args) == {'torch', 'mmengine', 'ray', 'fastapi'}
            elif osp.basename(path) == 'benchmark_converter_checks.py':
                assert set(args) == {'torch', 'numpy', 'PIL'}
            elif 'benchmark_' in osp.basename(path):
                assert set(args) <= {'torch', 'timm'} and args, args
            break
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module]
        third = [n for n in names if n.split('.')[0] not in STDLIB and
                 n != 'tools._venv']
        assert not third, f'{path}:{node.lineno} imports {third} before ' \
            'ensure()'
    assert ensure_at, f'{path} does not call tools._venv.ensure()'
