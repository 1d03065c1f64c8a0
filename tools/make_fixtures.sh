#!/usr/bin/env bash
# `make fixtures`: regenerates every reference fixture under tests/fixtures/ with Debian's
# python3 (torch 1.13, torchvision 0.14, numpy, scikit-learn 1.2). The scripts are deterministic:
# on the same package versions `git status tests/fixtures` stays clean afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
for s in tools/make_core_fixtures.py tools/make_opt_fixtures.py tools/make_data_fixtures.py \
         tools/make_eval_fixtures.py tools/make_pretrain_fixtures.py tools/make_photo_fixtures.py \
         tools/make_finetune_fixtures.py; do
  echo "== $s"
  /usr/bin/python3 "$s"
done
