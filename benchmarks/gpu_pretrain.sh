#!/usr/bin/env bash
# The tiny configs' pretraining on a lent GPU (nothing depends on it: the CPU path makes the same files). Prints the
# one line per file that `ravar-bench pretrain` prints and the wall time; writes into $OUT (or /tmp/gpu_pretrain),
# never into the package, so the shipped files stay those the manifest names. The recipe runs on the CPU in
# ravar_bench/pretraining/run.py; on a GPU, CUDA_VISIBLE_DEVICES selects nothing here: the loop is CPU-bound at the
# tiny widths (batch 16), so this script measures the same recipe with more CPU threads.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${OUT:-/tmp/gpu_pretrain}"
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt; }
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-8}" RAVAR_CACHE="${RAVAR_CACHE:-/tmp/gpu_pretrain_cache}"
start=$(date +%s)
.venv/bin/ravar-bench pretrain --methods all --force --out "$OUT_DIR" --no-progress
echo "wall: $(( $(date +%s) - start )) s, OMP_NUM_THREADS=$OMP_NUM_THREADS, files in $OUT_DIR"
