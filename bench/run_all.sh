#!/usr/bin/env bash
# `make bench`: every side-by-side benchmark, each printing its ratio against the reference.
#   training step vs PyTorch 1.13 (both layouts), bf16 vs PyTorch's bf16 autocast, augmentation vs torchvision, evaluation vs
#   scikit-learn. Needs the Python references: bash tools/deps.sh --python.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh --python
echo "== training step: simclr vs PyTorch (ResNet-18, 96 px, batch 64, 2 threads)"
bash bench/bench_train.sh --rounds 3
if ./simclr bench --peak --threads 1 | tail -n 1 | grep -c '"avx512_bf16": true' >/dev/null; then
  echo "== bf16: simclr fp32 and bf16 vs PyTorch channels-last bf16 autocast and fp32"
  OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} bash bench/bench_bf16.sh --rounds 3
fi
echo "== augmentation: simclr vs torchvision (96x96 views, blur p 0.5)"
bash bench/augment_bench.sh 3000 0.5
echo "== evaluation: simclr vs scikit-learn"
bash bench/eval_bench.sh
