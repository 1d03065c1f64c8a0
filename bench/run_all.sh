#!/usr/bin/env bash
# `make bench`: every side-by-side benchmark, each printing its ratio against the reference.
#   training step vs PyTorch 1.13 (both layouts), augmentation vs torchvision, evaluation vs
#   scikit-learn. Needs the Python references: bash tools/deps.sh --python.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh --python
echo "== training step: simclr vs PyTorch (ResNet-18, 96 px, batch 64, 2 threads)"
bash bench/bench_train.sh --rounds 3
echo "== augmentation: simclr vs torchvision (96x96 views, blur p 0.5)"
bash bench/augment_bench.sh 3000 0.5
echo "== evaluation: simclr vs scikit-learn"
bash bench/eval_bench.sh
