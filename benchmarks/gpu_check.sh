#!/usr/bin/env bash
# What a lent GPU can tell in under 5 minutes (issue 15), printed, nothing asserted:
#   1. the device, torch's view of it (bf16 support, TF32);
#   2. one full-config RefAtomNet training step in bf16 (random weights; the engine's precision path:
#      autocast, frozen ViT-g stored in bf16) at batch 8 and at batch 32: peak memory and clips/s;
#   3. agent-attention fusion vs softmax cross-attention scaling on the GPU at the full width (768).
# Usage:  bash benchmarks/gpu_check.sh            (on the GPU machine, from anywhere)
#         bash benchmarks/gpu_check.sh --dry      (CPU path: tiny configs, small sizes: checks the script itself)
# Budget: parameters created on the GPU (seconds), 2 x 4 steps of a 1.2B-parameter model < 1 min, scaling < 90 s.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
if [ "${1:-}" = "--dry" ]; then
  DEVICE=cpu; SET=tiny; B1=2; B2=4; SCALE_ARGS=(--device cpu --dim 64 --max-n 1024 --budget-s 20)
else
  DEVICE=cuda; SET=full; B1=8; B2=32; SCALE_ARGS=(--device cuda --dim 768 --max-n 16384 --budget-s 90)
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
"$PY" - <<PYEOF
import torch
print("torch", torch.__version__, "| cuda available:", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device:", torch.cuda.get_device_name(0), "| bf16 supported:", torch.cuda.is_bf16_supported(),
          "| memory: %.1f GiB" % (torch.cuda.get_device_properties(0).total_memory / 2**30))
from ravar_bench.engine.precision import resolve_precision
print("train.precision='auto' resolves to:", resolve_precision("auto", "$DEVICE"))
PYEOF
echo "== RefAtomNet ($SET config) bf16 training step, batch $B1 and $B2 (one build, one process)"
timeout 240 "$PY" benchmarks/full_config_step.py --methods refatomnet --config-set "$SET" --device "$DEVICE" \
  --precisions bf16 --batch "$B1,$B2" --steps 3 --timeout 220 || echo "(step run failed or timed out: rc $?)"
echo "== agent attention vs softmax cross-attention, fwd+bwd"
timeout 150 "$PY" benchmarks/agent_attention_scaling.py "${SCALE_ARGS[@]}" || echo "(scaling run failed: rc $?)"
