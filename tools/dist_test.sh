#!/usr/bin/env bash
# bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py arguments]
# NNODES, NODE_RANK, MASTER_ADDR, PORT, PYTHON: see tools/torchrun.sh.
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
exec bash "$(dirname "$0")/torchrun.sh" test.py "$GPUS" "$CONFIG" \
    "$CHECKPOINT" --launcher pytorch "${@:4}"
