#!/usr/bin/env bash
# Create or refresh the virtual environment of mmseg_ivpt. Idempotent: each
# step checks whether its part is already there and skips it if so.
#   1. the venv                      (python3 -m venv)
#   2. torch + torchvision           (skipped if any pair already imports)
#   3. mmcv 2.1.0 with compiled ops  (skipped if mmcv._ext imports; else
#                                     built from source, ~10 min on 2 cores;
#                                     pip's cache keeps the wheel)
#   4. timm, mmengine, mmseg, mmpretrain, mmdet, pytest,
#      tensorflow-datasets (without tensorflow), ray[serve] and mmseg_ivpt
#      (editable)
#                                    (skipped while requirements/ is unchanged)
#   5. setuptools within the range of requirements/runtime.txt and
#      pkg_resources importable     (checked on every run; repaired if not)
# Environment: VENV (default .venv), PYTHON (default python3), MAX_JOBS
# (compile jobs), IVPT_PIP_ARGS (default --isolated: plain PyPI, ignoring
# local pip configuration; set it empty to use your own pip config/mirror).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
PIP_ARGS=${IVPT_PIP_ARGS---isolated}
PY="$VENV/bin/python"
pip_install() { "$PY" -m pip install $PIP_ARGS --disable-pip-version-check -q "$@"; }
step() { printf '[setup_env] %s\n' "$*"; }
t0=$(date +%s)

if [ ! -x "$PY" ]; then
  step "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

if "$PY" -c 'import torch, torchvision' 2>/dev/null; then
  step "torch $("$PY" -c 'import torch; print(torch.__version__)') present: kept"
else
  step "installing torch and torchvision (requirements/torch.txt)"
  pip_install -r requirements/torch.txt
fi

if "$PY" -c 'import mmcv, mmcv._ext; assert mmcv.__version__ == "2.1.0"' 2>/dev/null; then
  step "mmcv 2.1.0 with compiled ops present: build skipped"
else
  step "building mmcv 2.1.0 from source against the installed torch (slow)"
  pip_install "setuptools<81" wheel ninja
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    pip_install --no-build-isolation mmcv==2.1.0
  "$PY" -c 'import mmcv._ext' || { echo "mmcv built without ops" >&2; exit 1; }
fi

stamp="$VENV/.mmseg_ivpt-requirements"
want=$(cat requirements/*.txt setup.py | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && "$PY" -c 'import mmseg_ivpt, mmseg, mmpretrain, mmdet, timm, pytest, tensorflow_datasets, ray.serve' 2>/dev/null; then
  step "python requirements unchanged: skipped"
else
  step "installing requirements/{runtime,mminstall,tests,data,serve}.txt and mmseg_ivpt"
  pip_install -r requirements/runtime.txt -r requirements/mminstall.txt \
    -r requirements/tests.txt -r requirements/data.txt \
    -r requirements/serve.txt
  pip_install --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
fi
# 5. drift: another install may have moved setuptools out of the range that
#    torch and mmengine need (>= 81 removes pkg_resources, which mmengine's
#    `mmseg::` / `mmpretrain::` config bases and mim import). Checked on every
#    run, whatever the stamp says; repaired in place.
st_spec=$(grep -E '^setuptools' requirements/runtime.txt)
st_check='import sys, warnings
warnings.simplefilter("ignore")
import setuptools, pkg_resources  # noqa: F401
from pip._vendor.packaging.specifiers import SpecifierSet
sys.exit(setuptools.__version__ not in SpecifierSet(sys.argv[1][len("setuptools"):]))'
if "$PY" -c "$st_check" "$st_spec" 2>/dev/null; then
  step "$("$PY" -c 'import setuptools; print("setuptools", setuptools.__version__)' 2>/dev/null) within $st_spec, pkg_resources imports: ok"
else
  step "repairing a drifted environment: setuptools $("$PY" -c 'import setuptools; print(setuptools.__version__)' 2>/dev/null || echo missing) (or pkg_resources) is outside $st_spec"
  pip_install "$st_spec"
  "$PY" -c "$st_check" "$st_spec" || { echo "[setup_env] could not repair setuptools" >&2; exit 1; }
fi
step "ready in $(( $(date +%s) - t0 ))s: $VENV"
