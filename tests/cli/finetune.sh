#!/usr/bin/env bash
# simclr finetune: from a pretrained checkpoint and from random init on a labelled subset of the
# digits images (8 px), the subset file, --json, the PyTorch export, --keep-head, resume after a
# stop (the same metrics as an uninterrupted run), bad input.
. "$(dirname "$0")/lib.sh"
F="$ROOT/tests/fixtures/eval"
D=(--dataset npy --data "$F/digits_img_train.npy" --labels "$F/digits_ytr.npy")
TEST=(--test-data "$F/digits_img_test.npy" --test-labels "$F/digits_yte.npy")
expect_ok "pretrain a tiny encoder" "$SIMCLR" pretrain --out "$TMP/p" "${D[@]}" --arch resnet18 --stem cifar --width 0.0625 --image-size 8 --batch-size 32 --max-steps 2 --threads 2
FT=(finetune "${D[@]}" "${TEST[@]}" --labels-per-class 5 --batch-size 10 --epochs 2 --threads 2)
expect_ok "finetune from the checkpoint" "$SIMCLR" "${FT[@]}" --out "$TMP/f" --checkpoint "$TMP/p/last.safetensors" --json "$TMP/f.json"
json_num() { sed -n "s/.*\"$1\": \([-0-9.e+]*\).*/\1/p" "$2" | head -n 1; }
check "json: top1 and top5 in [0, 1]" "$(awk -v a="$(json_num top1 "$TMP/f.json")" -v b="$(json_num top5 "$TMP/f.json")" 'BEGIN { print (a >= 0 && a <= b && b <= 1) }')" = 1
check "json: 50 labelled images" "$(json_num n_labels "$TMP/f.json")" = 50
check "subset.npy saved" -s "$TMP/f/subset.npy"
check "metrics: 10 steps and a test evaluation" "$(grep -c '"loss"' "$TMP/f/metrics.jsonl")" = 10 -a -n "$(grep test_top1 "$TMP/f/metrics.jsonl")"
check "curves and checkpoint" -s "$TMP/f/curves.png" -a -s "$TMP/f/last.safetensors"
check "PyTorch export: fc.weight / fc.bias and the encoder, no head." -n "$(head -c 20000 "$TMP/f/model.safetensors" | grep -a '"fc.weight"' | grep -a '"fc.bias"' | grep -a '"layer4.1.bn2.running_var"')" -a -z "$(head -c 20000 "$TMP/f/model.safetensors" | grep -a '"head\.')"
expect_ok "finetune: the same subset, random init" "$SIMCLR" "${FT[@]}" --out "$TMP/r" --random-init --arch resnet18 --stem cifar --width 0.0625 --image-size 8 --json "$TMP/r.json"
check "random init: the same labelled subset" "$(md5sum <"$TMP/r/subset.npy")" = "$(md5sum <"$TMP/f/subset.npy")"
expect_ok "finetune --keep-head 1" "$SIMCLR" "${FT[@]}" --out "$TMP/k" --checkpoint "$TMP/p/last.safetensors" --keep-head 1 --epochs 1
check "keep-head: fc as a Sequential (fc.0 kept, fc.2 the classifier)" -n "$(head -c 20000 "$TMP/k/model.safetensors" | grep -a '"fc.0.weight"' | grep -a '"fc.2.bias"')"
# resume after a stop: the same metrics as the uninterrupted run
expect_ok "finetune stopped after 3 steps" "$SIMCLR" "${FT[@]}" --out "$TMP/s" --checkpoint "$TMP/p/last.safetensors" --stop-after-steps 3
expect_ok "finetune resumed" "$SIMCLR" finetune --resume "$TMP/s" --threads 1
check "resumed run: the same metrics, bit for bit (10 steps + the test evaluation)" "$(grep -c . "$TMP/s/metrics.jsonl")" = 11 -a \
  "$(sed 's/"views_per_s": [0-9.e+-]*//' "$TMP/s/metrics.jsonl" | md5sum)" = "$(sed 's/"views_per_s": [0-9.e+-]*//' "$TMP/f/metrics.jsonl" | md5sum)"
# bad input
expect_fail "fraction 0" "--label-fraction: expected a number in" "$SIMCLR" "${FT[@]}" --out "$TMP/b" --random-init --label-fraction 0
expect_fail "fraction above 1" "--label-fraction: expected a number in" "$SIMCLR" "${FT[@]}" --out "$TMP/b" --random-init --label-fraction 1.5
expect_fail "more labels per class than a class has" "--labels-per-class 500: class [0-9] has only" "$SIMCLR" "${FT[@]}" --out "$TMP/b" --random-init --labels-per-class 500
expect_fail "checkpoint of another architecture" "--checkpoint: .*conv1.weight" "$SIMCLR" "${FT[@]}" --out "$TMP/b" --checkpoint "$TMP/p/last.safetensors" --width 0.125
expect_fail "dataset without labels" "has no labels" "$SIMCLR" finetune --dataset npy --data "$F/digits_img_train.npy" "${TEST[@]}" --out "$TMP/b" --random-init
expect_fail "neither --checkpoint nor --random-init" "give --checkpoint CK" "$SIMCLR" "${FT[@]}" --out "$TMP/b"
expect_fail "--keep-head without a 2-layer head" "--keep-head 1" "$SIMCLR" "${FT[@]}" --out "$TMP/b" --checkpoint "$TMP/f/last.safetensors" --keep-head 1
finish
