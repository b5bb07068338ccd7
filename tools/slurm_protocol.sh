#!/usr/bin/env bash
# One task of the job array that `tools/protocol.py sweep|final --launcher
# slurm` submits (sbatch --array; see docs/cluster.md): trains run number
# SLURM_ARRAY_TASK_ID of RUN_LIST (one prepared run folder per line) with
# tools/train.py --resume under srun, one process per GPU as
# tools/slurm_train.sh, and writes its result.json
# (mmseg_ivpt/protocol/folder.py).
#   sbatch --array=0-N%K ... tools/slurm_protocol.sh RUN_LIST
# Environment (exported by protocol.py): GPUS (processes of the run, one per
# GPU), CPUS_PER_TASK, PYTHON, IVPT_ROOT; SRUN_ARGS (extra srun options), MASTER_PORT.
set -euo pipefail
if [ $# -ne 1 ] || [ -z "${SLURM_ARRAY_TASK_ID:-}" ]; then
  echo "usage: sbatch --array=0-N tools/slurm_protocol.sh RUN_LIST" >&2
  exit 2
fi
RUN_LIST=$1
# sbatch runs a copy of this file: IVPT_ROOT (exported by protocol.py) is
# the repository
ROOT=${IVPT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
PYTHON=${PYTHON:-$(python3 "$ROOT/tools/_venv.py" 2>/dev/null || echo python)}
WORK_DIR=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$RUN_LIST")
if [ -z "$WORK_DIR" ]; then
  echo "$RUN_LIST: no line $((SLURM_ARRAY_TASK_ID + 1))" >&2
  exit 2
fi
GPUS=${GPUS:-1}
LAUNCHER=()
if [ "$GPUS" -gt 1 ]; then LAUNCHER=(--launcher slurm); fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
echo "# array task ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}: $WORK_DIR"
# shellcheck disable=SC2086  # SRUN_ARGS is a list of options
exec "$PYTHON" "$ROOT/mmseg_ivpt/protocol/folder.py" "$WORK_DIR" -- \
    srun --ntasks="$GPUS" --cpus-per-task="${CPUS_PER_TASK:-5}" \
    --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    "$PYTHON" -u "$ROOT/tools/train.py" "$WORK_DIR/config.py" \
    --work-dir "$WORK_DIR" --resume "${LAUNCHER[@]}"
