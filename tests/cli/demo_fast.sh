#!/usr/bin/env bash
# Smoke test of `make demo`'s pipeline (tools/demo.sh --fast: 4096 images, 1 epoch, evaluation on
# 5000 train / 1000 test images, fine-tuning on 1% = 50 of them): every command the demo chains
# still fits together and the table has its six rows and the 1% column. About a minute on 2 idle
# cores.
source "$(dirname "$0")/lib.sh"
export OMP_WAIT_POLICY=passive
R="$TMP/demo"
# (with the centred kNN protocol: the option reaches every kNN row and the pretraining monitor)
expect_ok "demo --fast" env SIMCLR="$SIMCLR" SIMCLR_DEMO_RUN="$R" SIMCLR_THREADS=2 \
  SIMCLR_DEMO_KNN_ARGS="--knn-norm center" bash "$ROOT/tools/demo.sh" --fast
check "results.md written" -s "$R/results.md"
check "curves.png written" -s "$R/curves.png"
for row in "SimCLR encoder (h)" "same encoder, random init" "PCA of raw pixels" "raw pixels"; do
  check "row: $row" -n "$(grep -F "| $row" "$R/results.md" | grep -E '\| [0-9]+\.[0-9]+ \| [0-9]+\.[0-9]+ \| [0-9]+\.[0-9]+ \|$')"
done
for row in "fine-tuned on 1% of the labels: from SimCLR" "supervised from scratch on the same 1%"; do
  check "row: $row" -n "$(grep -F "| $row" "$R/results.md" | grep -E '\| – \| [0-9]+\.[0-9]+ \| – \|$')"
done
check "table printed, with the 1% column" -n "$(grep -E '^\| features \| linear eval top-1 \| linear eval, 1% of the labels \([0-9]+ images\) \| kNN top-1 \|$' "$TMP/out")"
check "the kNN protocol named in results.md" -n "$(grep -F '(simclr knn-eval --knn-norm center)' "$R/results.md")"
check "the monitor used it" -n "$(grep -E '"knn-norm": *"center"' "$R/config.json")"
check "every kNN row used it" "$(grep -l '"norm": "center"' "$R"/eval/*.knn.json | wc -l)" -eq 4
check "the same subset for both fine-tuning runs" "$(md5sum <"$R/ft-simclr/subset.npy")" = "$(md5sum <"$R/ft-scratch/subset.npy")"
# raw pixels: logistic regression on 5000 Fashion-MNIST images reaches about 80% (sanity bound)
px=$(sed -n 's/^| raw pixels | \([0-9.]*\) .*/\1/p' "$R/results.md")
check "raw-pixel linear accuracy plausible ($px)" "${px%.*}" -ge 70
finish
