#!/usr/bin/env bash
# mr1's GPU check (docs/gpus.md: "Before a GPU run … GPU check"): what only a GPU can tell, in under
# 8 minutes on one H100 or H200, written to results/gpu/<device>.json and .md. Sections, in order
# (mr1cli/bench/gpu_sections.py):
#   precision      one SFT step at lr 1e-6 with model.dtype=bfloat16 changes as many weights as float32
#   cpu-parity     a tiny GRPO-D run on the GPU follows the same run on the CPU (rewards, lengths, loss)
#   memory         peak torch.cuda.max_memory_allocated of paper-shaped GRPO-D against `mr1 plan`
#   sharded        FSDP2 on 2 GPUs against 1 GPU (skipped, with the reason, when fewer are visible)
#   rollout-speed  generation tokens/s against the decode roofline
#   trl            the TRL engine (train.engine=trl) on the paper-shaped model: step time, tokens/s,
#                  peak memory, reward after 3 steps (mr1cli/bench/trl_gpu_check.py; needs trl)
#   trl-vllm       the same with vLLM colocated (rl.rollout_engine=vllm; needs the vllm extra)
# Every section runs even when an earlier one failed; the script exits 1 if any failed, 2 on a
# usage error, 0 when all passed or were skipped.
#
# It installs nothing. It runs this checkout's code (PYTHONPATH=<repo>) with the project's
# .venv/bin/python when there is one, else the machine's python3 (PYTHON=/path/to/python picks
# another), says which, and first checks that every package it needs imports, naming what is missing.
# The lent GPU image has torch, transformers, accelerate, typer, rich, pandas and matplotlib; mr1 also
# needs pyarrow and math-verify (and psutil for --cpu-smoke). Install what is missing yourself first,
# e.g. from wheels downloaded on a machine with network (the GPU machine has none):
#   pip download -d wheels pyarrow math-verify psutil -c constraints.txt
#   python3 -m pip install --no-index --find-links wheels pyarrow math-verify psutil
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/gpu-check.sh [--cpu-smoke] [--out DIR] [--sections LIST] [--help]

  --cpu-smoke      run every section's control flow on CPU with the tiny model (a few minutes)
  --out DIR        where to write <device>.json and <device>.md (default: results/gpu)
  --sections LIST  comma-separated subset, in order (default: all):
                   precision,cpu-parity,memory,sharded,rollout-speed,trl,trl-vllm
  --help           this text; nothing is run or installed

Python: $PYTHON if set, else <repo>/.venv/bin/python if it exists, else python3.
Exit status: 0 all sections passed or were skipped, 1 a section failed, 2 usage or setup error.
EOF
}

args=()
smoke=0
while [ "$#" -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --cpu-smoke) args+=("--cpu-smoke"); smoke=1; shift ;;
    --out | --sections)
      if [ "$#" -lt 2 ]; then echo "gpu-check: $1 needs a value" >&2; usage >&2; exit 2; fi
      args+=("$1" "$2"); shift 2 ;;
    *) echo "gpu-check: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [ -n "${PYTHON:-}" ]; then
  py="$PYTHON"
elif [ -x .venv/bin/python ]; then
  py="$root/.venv/bin/python"
else
  py="$(command -v python3)" || { echo "gpu-check: no python3 on PATH and no .venv" >&2; exit 2; }
fi
echo "gpu-check: python: $py ($("$py" -c 'import sys; print(sys.version.split()[0])'))" >&2

needed="torch transformers accelerate safetensors tokenizers yaml PIL numpy pandas pyarrow typer rich math_verify"
if [ "$smoke" = 1 ]; then needed="$needed psutil"; fi  # the CPU memory meter
missing="$("$py" - $needed <<'EOF'
import importlib.util, sys
print(" ".join(name for name in sys.argv[1:] if importlib.util.find_spec(name) is None))
EOF
)"
if [ -n "$missing" ]; then
  echo "gpu-check: $py cannot import: $missing" >&2
  echo "gpu-check: install them (see the header of scripts/gpu-check.sh for a way without network) and rerun" >&2
  exit 2
fi

export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_WAIT_POLICY=PASSIVE
exec "$py" -m mr1cli.bench.gpu_check ${args[@]+"${args[@]}"}
