#!/usr/bin/env bash
# Shared by dist_train.sh and dist_test.sh: torchrun SCRIPT (a tools/ file)
# with NPROC processes per node and the remaining arguments.
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT. PYTHON picks the
# interpreter (default: python3 if it has torch and mmengine, else the
# repository's .venv: tools/_venv.py). Without GPUs the processes use gloo.
SCRIPT=$1
NPROC=$2
TOOLS=$(dirname "$0")
PYTHON=${PYTHON:-$(python3 "$TOOLS/_venv.py" 2>/dev/null || echo python)}
PYTHONPATH="$TOOLS/..":$PYTHONPATH \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$NPROC" \
    --master_port="${PORT:-29500}" \
    "$TOOLS/$SCRIPT" "${@:3}"
