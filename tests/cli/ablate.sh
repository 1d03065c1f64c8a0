#!/usr/bin/env bash
# tools/ablate.sh: a 2-setting grid of tiny pretrainings (loss axis), its table and plot, resume
# after an interruption, bad grids; and the ablation options of pretrain.
. "$(dirname "$0")/lib.sh"
F="$ROOT/tests/fixtures/eval"
D=(--dataset npy --data "$F/digits_img_train.npy" --labels "$F/digits_ytr.npy")
PRE=("${D[@]}" --arch resnet18 --stem cifar --width 0.0625 --image-size 8 --batch-size 32 --max-steps 2 --eval-limit 200 --test-on-train --threads 2)
EV="--dataset npy --data $F/digits_img_train.npy --labels $F/digits_ytr.npy --test-data $F/digits_img_test.npy --test-labels $F/digits_yte.npy --l2 0.001"
export SIMCLR
expect_ok "ablate: loss grid" "$ROOT/tools/ablate.sh" --out "$TMP/g" --grid "loss=ntxent,margin-triplet" --eval "$EV" -- "${PRE[@]}"
check "ablate: two rows with kNN and linear top-1" "$(grep -cE '^\| [12] \| (ntxent|margin-triplet) \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|$' "$TMP/g/results.md")" -eq 2
check "ablate: the plot" -s "$TMP/g/results.png"
check "ablate: the margin run used its loss" -n "$(grep '"loss": "margin-triplet"' "$TMP/g/loss-margin-triplet/config.json")"
cp "$TMP/g/results.md" "$TMP/first.md"
# an interrupted grid: the second run lost its end marker and its evaluation -> resumed, re-evaluated
rm "$TMP/g/loss-margin-triplet/done" "$TMP/g/loss-margin-triplet/linear.json" "$TMP/g/results.md"
expect_ok "ablate: resumed" "$ROOT/tools/ablate.sh" --out "$TMP/g" --grid "loss=ntxent,margin-triplet" --eval "$EV" -- "${PRE[@]}"
check "ablate: finished runs skipped, the rest resumed" -n "$(grep -F 'loss=ntxent: done' "$TMP/out")" -a -n "$(grep -F 'loss=margin-triplet: resuming' "$TMP/out")"
check "ablate: the same table after resuming" "$(grep '^| [12] ' "$TMP/g/results.md" | md5sum)" = "$(grep '^| [12] ' "$TMP/first.md" | md5sum)"
expect_fail "ablate: bad axis" "not option=v1,v2" "$ROOT/tools/ablate.sh" --out "$TMP/b" --grid "loss" -- "${PRE[@]}"
expect_fail "ablate: no --out" "--out" "$ROOT/tools/ablate.sh" --grid "loss=ntxent" -- "${PRE[@]}"
expect_fail "pretrain: unknown loss" "--loss: expected one of ntxent\|nt-logistic\|margin-triplet" "$SIMCLR" pretrain --out "$TMP/x" "${PRE[@]}" --loss triplet
expect_ok "pretrain: nt-logistic with dot similarity" "$SIMCLR" pretrain --out "$TMP/d" "${PRE[@]}" --loss nt-logistic --similarity dot
check "pretrain: finite loss logged" -n "$(grep -E '"loss": [0-9]' "$TMP/d/metrics.jsonl")"
finish
