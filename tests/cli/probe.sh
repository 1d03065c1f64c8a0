#!/usr/bin/env bash
# CLI tests of `simclr pretrain --online-probe`: the probe never changes the encoder's training
# (same losses with and without it), its accuracy is in every metrics line, the progress line,
# TensorBoard and the curves, and its state resumes exactly with the run.
source "$(dirname "$0")/lib.sh"
export OMP_WAIT_POLICY=passive
T=(--dataset fashion-mnist --split train --limit 256 --batch-size 32 --epochs 2 --threads 2 --loader-threads 1
   --arch resnet18 --width 0.125 --stem cifar --image-size 16 --seed 11)
strip() { sed 's/, "views_per_s[^,}]*//; s/, "probe_top1[^,}]*//' "$1"; }
nostrip() { sed 's/, "views_per_s[^,}]*//' "$1"; }
expect_ok "without the probe" "$SIMCLR" pretrain "${T[@]}" --out "$TMP/a"
expect_ok "with --online-probe --tensorboard" "$SIMCLR" pretrain "${T[@]}" --online-probe --probe-lr 0.01 \
  --tensorboard --out "$TMP/b"
check "progress line shows the probe" -n "$(grep -E 'probe [0-9.]+' "$TMP/err")"
check "probe_top1 in all 16 step lines" "$(grep -c '"probe_top1": [0-9.]*}' "$TMP/b/metrics.jsonl")" -eq 16
check "the encoder's training is unchanged (same losses, accuracies, lr)" -z "$(diff <(strip "$TMP/a/metrics.jsonl") <(strip "$TMP/b/metrics.jsonl"))"
if /usr/bin/python3 -c "import google.protobuf, numpy" 2>/dev/null && command -v protoc >/dev/null; then
  expect_ok "TensorBoard has train/probe_top1 = metrics" /usr/bin/python3 "$ROOT/tools/check_tensorboard.py" "$TMP/b" --image
  check "6 tags (5 training scalars + the probe)" -n "$(grep '(6 tags' "$TMP/out")"
fi
check "curves drawn" -s "$TMP/b/curves.png"
expect_ok "plot reads the probe back" "$SIMCLR" plot "$TMP/b" --output "$TMP/p.png"
expect_ok "features ignore the probe's tensors" "$SIMCLR" features --checkpoint "$TMP/b/last.safetensors" \
  --dataset fashion-mnist --split test --output "$TMP/f.npy" --threads 2
# a frozen encoder (lr 0) on plain images: the probe's online accuracy climbs from chance
expect_ok "probe on a frozen encoder" "$SIMCLR" pretrain "${T[@]}" --limit 512 --batch-size 64 --epochs 4 \
  --augment none --lr 0 --online-probe --probe-lr 0.05 --out "$TMP/e"
probe_mean() { grep -o '"probe_top1": [0-9.]*' "$TMP/e/metrics.jsonl" | cut -d' ' -f2 | $1 -8 | awk '{s+=$1} END {print s/8}'; }
check "the probe learns: first 8 steps $(probe_mean head), last 8 $(probe_mean tail)" -n \
  "$(awk -v a="$(probe_mean head)" -v b="$(probe_mean tail)" 'BEGIN {if (b > 0.35 && b > a + 0.15) print "yes"}')"
# interrupted and resumed: the same lines, probe included
expect_ok "stopped at step 5" "$SIMCLR" pretrain "${T[@]}" --online-probe --probe-lr 0.01 --out "$TMP/c" --stop-after-steps 5
expect_ok "resumed" "$SIMCLR" pretrain --resume "$TMP/c"
check "resumed run = uninterrupted run, probe included" -z "$(diff <(nostrip "$TMP/b/metrics.jsonl") <(nostrip "$TMP/c/metrics.jsonl"))"
expect_fail "unlabelled training data" "--online-probe: the training split .* has no labels" "$SIMCLR" pretrain \
  --dataset npy --data "$ROOT/tests/fixtures/eval/digits_img_train.npy" --image-size 16 --stem cifar --width 0.125 \
  --batch-size 16 --max-steps 1 --online-probe --out "$TMP/d"
finish
