#!/usr/bin/env bash
# The README's "Your own images" workflow, end to end on a flat folder of PNG files (made here
# from Fashion-MNIST with augment-preview): preview, pretrain, features with the defaults.
source "$(dirname "$0")/lib.sh"
mkdir -p "$TMP/photos"
for s in 1 2 3 4 5 6; do
  "$SIMCLR" augment-preview --dataset fashion-mnist --split test --image-size 28 --images 2 \
      --views 2 --seed $s --output "$TMP/photos/p$s.png" >/dev/null 2>&1
done
check "six PNG photos made" "$(ls "$TMP/photos" | wc -l)" -eq 6
expect_ok "augment-preview on the folder" "$SIMCLR" augment-preview --dataset folder --data "$TMP/photos" \
    --image-size 32 --images 3 --views 4 --output "$TMP/grid.png"
check "grid written" -s "$TMP/grid.png"
expect_ok "pretrain on the folder (default split)" "$SIMCLR" pretrain --dataset folder --data "$TMP/photos" \
    --image-size 32 --width 0.125 --batch-size 3 --epochs 1 --threads 2 --out "$TMP/runs/mine"
check "checkpoint written" -s "$TMP/runs/mine/last.safetensors"
expect_ok "features on the folder (default split)" "$SIMCLR" features \
    --checkpoint "$TMP/runs/mine/last.safetensors" --dataset folder --data "$TMP/photos" \
    --output "$TMP/feats.npy" --labels-output "$TMP/labels.npy"
check "features written" -s "$TMP/feats.npy"
check "labels written" -s "$TMP/labels.npy"
expect_fail "a split the folder lacks is named" "--split.*'all'" "$SIMCLR" features \
    --checkpoint "$TMP/runs/mine/last.safetensors" --dataset folder --data "$TMP/photos" \
    --split train --output "$TMP/f2.npy"
check "no output after the failure" ! -e "$TMP/f2.npy"
finish
