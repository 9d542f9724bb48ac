#!/usr/bin/env bash
# The prepared GPU check (README: "GPU check"): paper-shaped GRPO-D on sdpa (and flash-attention 2
# when flash_attn imports), peak memory against `mr1 plan`, generation tokens/s against the decode
# roofline, LoRA against full fine-tuning memory, and `mr1 bench grpo --profile paper-shaped` against
# TRL. Writes results/gpu/gpu-check.{json,md}. Budget: under 8 minutes on one H100/H200.
#
#   scripts/gpu-check.sh              # on a GPU machine
#   scripts/gpu-check.sh --cpu-smoke  # the same control flow, tiny model, CPU (about a minute)
#
# The GPU image has torch, transformers, accelerate, typer, rich, pandas and matplotlib but not
# `datasets`, peft or trl: put their wheels in wheels/ (pip download -d wheels datasets peft trl
# psutil -c constraints.txt) and they are installed from there without network.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ -d wheels ]; then
  "$PY" -m pip install -q --no-index --find-links wheels datasets peft trl psutil math-verify 2>/dev/null || true
fi
"$PY" -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 || true
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "$PY" -m mr1cli.bench.gpu_check "$@"
