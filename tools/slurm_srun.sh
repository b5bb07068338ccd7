#!/usr/bin/env bash
# Shared by slurm_train.sh and slurm_test.sh: srun SCRIPT (a tools/ file) on
# PARTITION as JOB_NAME, one task per GPU, with the remaining arguments and
# --launcher slurm. GPUS (tasks in all, default 4), GPUS_PER_NODE (default
# 4), CPUS_PER_TASK (default 5), SRUN_ARGS (extra srun options), PYTHON
# (default python3 if it has torch and mmengine, else the repository's
# .venv: tools/_venv.py). mmengine reads rank and world size from Slurm;
# MASTER_PORT picks the rendezvous port (default 29500).
set -euo pipefail
SCRIPT=$1
PARTITION=$2
JOB_NAME=$3
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-$(python3 "$ROOT/tools/_venv.py" 2>/dev/null || echo python)}
# shellcheck disable=SC2086  # SRUN_ARGS is a list of options
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
exec srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"${GPUS_PER_NODE:-4}" \
    --ntasks="${GPUS:-4}" \
    --ntasks-per-node="${GPUS_PER_NODE:-4}" \
    --cpus-per-task="${CPUS_PER_TASK:-5}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS:-} \
    "$PYTHON" -u "$ROOT/tools/$SCRIPT" "${@:4}" --launcher slurm
