"""Run the tools in the repository's virtual environment, from any shell.

Every entry of ``tools/*.py`` and ``tools/analysis/*.py`` starts with::

    sys.path.insert(0, ROOT)
    from tools._venv import ensure  # noqa: E402
    ensure()                         # before any third-party import

When the interpreter running the tool lacks the packages the tool needs
(default: torch and mmengine; a bare ``python3``, say), the tool re-executes
itself, with the same arguments in the same working directory, in the
virtual environment that ``make`` builds: ``<repository>/.venv`` (the
environment variable ``VENV`` names another, relative to the repository, as
for ``make``). So the README's commands work from a fresh shell without
activating anything. An interpreter that has the packages (an activated
venv, a conda environment, a GPU machine's python with torch and timm for
``tools/analysis/benchmark_*.py``) runs the tool itself. Without such a
venv, or in one that lacks a package, the tool stops with a message that
says which packages are missing and how to get them (``make env``).

Standard library only (it runs before anything else is importable).
``python3 tools/_venv.py [MODULE ...]`` prints the interpreter to use (the
one running it if it has the modules, else the venv's): the shell scripts'
``PYTHON`` default (tools/torchrun.sh, tools/slurm_srun.sh).
"""
import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: what every tool that builds models needs
REQUIRED = ('torch', 'mmengine')
#: set in the re-executed process, so that it cannot re-execute again
_REEXEC = 'MMSEG_IVPT_REEXEC'


def venv_dir() -> str:
    return os.path.join(ROOT, os.environ.get('VENV') or '.venv')


def venv_python() -> str:
    return os.path.join(venv_dir(), 'bin', 'python')


def missing(modules) -> list:
    """The top-level modules of ``modules`` this interpreter cannot import
    (found without importing them)."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _in_venv() -> bool:
    return os.path.realpath(sys.prefix) == os.path.realpath(venv_dir())


def ensure(*modules: str) -> None:
    """Return if this interpreter has ``modules`` (default
    :data:`REQUIRED`); else re-execute the running tool in the repository's
    venv, or stop with a message naming what is missing and what to do."""
    reexeced = os.environ.pop(_REEXEC, None)  # not passed on to subprocesses
    lack = missing(modules or REQUIRED)
    if not lack:
        return
    tool = os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)
    py, venv = venv_python(), venv_dir()
    if reexeced or _in_venv():
        raise SystemExit(
            f'{tool}: the virtual environment {venv} has no '
            f'{", ".join(lack)}: refresh it with `make env` in {ROOT}')
    if not os.access(py, os.X_OK):
        raise SystemExit(
            f'{tool}: {sys.executable} has no {", ".join(lack)}, and the '
            f'virtual environment the tools run in, {venv}, does not exist: '
            f'build it with `make env` in {ROOT} (tools/setup_env.sh), or '
            f'run the tool with a python that has the requirements of '
            f'requirements/ installed')
    argv = getattr(sys, 'orig_argv', None) or [sys.executable] + sys.argv
    os.environ[_REEXEC] = '1'
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(py, [py] + argv[1:])


def interpreter(*modules: str) -> str:
    """The python to run the tools with: this one if it has ``modules``
    (default :data:`REQUIRED`), else the venv's if it exists, else this
    one (whose tools then say what is missing)."""
    if not missing(modules or REQUIRED) or not os.access(venv_python(),
                                                          os.X_OK):
        return sys.executable
    return venv_python()


if __name__ == '__main__':
    print(interpreter(*sys.argv[1:]))
