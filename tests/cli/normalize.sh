#!/usr/bin/env bash
# --normalize dataset: pretraining computes the per-channel mean/std once from the training
# data and stores them with the run; resume and the evaluation commands reuse exactly those,
# not statistics of whatever split they read.
source "$(dirname "$0")/lib.sh"
mkdir -p "$TMP/train" "$TMP/other"
for s in 1 2 3 4 5 6; do
  "$SIMCLR" augment-preview --dataset fashion-mnist --split test --image-size 28 --images 2 \
      --views 2 --seed $s --output "$TMP/train/p$s.png" >/dev/null 2>&1
done
cp "$TMP/train/p1.png" "$TMP/train/p2.png" "$TMP/other/"
expect_ok "pretrain with --normalize dataset" "$SIMCLR" pretrain --dataset folder --data "$TMP/train" \
    --image-size 32 --width 0.125 --batch-size 3 --epochs 1 --threads 2 --normalize dataset \
    --out "$TMP/run"
stats=$(sed -n 's/.*"normalize-stats": "\([^"]*\)".*/\1/p' "$TMP/run/config.json")
check "the statistics are stored in config.json ($stats)" "$(echo "$stats" | tr ',' '\n' | grep -c .)" -eq 6
CK="$TMP/run/last.safetensors"
F=(features --checkpoint "$CK" --dataset folder --data "$TMP/other" --threads 2)
expect_ok "features with the checkpoint's statistics" "$SIMCLR" "${F[@]}" --output "$TMP/a.npy"
expect_ok "features with the same statistics given" "$SIMCLR" "${F[@]}" --normalize-stats "$stats" --output "$TMP/b.npy"
expect_ok "features with other statistics" "$SIMCLR" "${F[@]}" --normalize-stats 0,0,0,1,1,1 --output "$TMP/c.npy"
check "the checkpoint's statistics are used, not the split's" -n "$(cmp -s "$TMP/a.npy" "$TMP/b.npy" && echo same)"
check "other statistics give other features" -z "$(cmp -s "$TMP/a.npy" "$TMP/c.npy" && echo same)"
expect_fail "malformed statistics are named" "--normalize-stats" "$SIMCLR" "${F[@]}" \
    --normalize-stats 1,2 --output "$TMP/d.npy"
expect_fail "a zero std is refused" "std > 0" "$SIMCLR" "${F[@]}" \
    --normalize-stats 0.5,0.5,0.5,0.2,0,0.2 --output "$TMP/d.npy"
check "no output after the failures" ! -e "$TMP/d.npy"
finish
