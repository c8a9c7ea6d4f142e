#!/usr/bin/env bash
# The GPU check: ResNet-50 images/s (eager and compiled), a LeNet grid of 4 jobs on one GPU and
# a 200-step ResNet-18 run whose loss must fall, in one JSON (benchmarks/gpu_check.py).
#   bash benchmarks/gpu.sh [--out FILE]   # on a CUDA machine, under 8 minutes
#   bash benchmarks/gpu.sh --dry-run      # every piece at toy size on the CPU
# The report goes to FILE, by default outputs/gpu_check.json (a folder git ignores).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 benchmarks/gpu_check.py "$@"
