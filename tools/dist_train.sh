#!/usr/bin/env bash
# bash tools/dist_train.sh CONFIG GPUS [tools/train.py arguments]
# NNODES, NODE_RANK, MASTER_ADDR, PORT, PYTHON: see tools/torchrun.sh.
CONFIG=$1
GPUS=$2
exec bash "$(dirname "$0")/torchrun.sh" train.py "$GPUS" "$CONFIG" \
    --launcher pytorch "${@:3}"
