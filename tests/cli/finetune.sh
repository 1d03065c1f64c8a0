#!/usr/bin/env bash
# simclr finetune: from a pretrained checkpoint and from random init on a labelled subset of the
# digits images (8 px), the subset file, --json, the PyTorch export, --keep-head, resume after a
# stop (the same metrics as an uninterrupted run), bad input; the run folder as robust as
# pretrain's (the shared cli/run_cli.c): the lock, --resume with options that change the
# trajectory (--force-override), --tensorboard (decoded and checked against metrics.jsonl), a full
# disk while writing metrics and during a checkpoint (tmpfs; root only, else "skipped").
. "$(dirname "$0")/lib.sh"
F="$ROOT/tests/fixtures/eval"
D=(--dataset npy --data "$F/digits_img_train.npy" --labels "$F/digits_ytr.npy")
TEST=(--test-data "$F/digits_img_test.npy" --test-labels "$F/digits_yte.npy")
expect_ok "pretrain a tiny encoder" "$SIMCLR" pretrain --out "$TMP/p" "${D[@]}" --arch resnet18 --stem cifar --width 0.0625 --image-size 8 --batch-size 32 --max-steps 2 --threads 2
check "a recipe warmup longer than a 2-step run: no warmup, said so" -n "$(grep "warmup (10 epochs) is longer than the run: no warmup (the run has fewer than 10 steps)" "$TMP/out")"
FT=(finetune "${D[@]}" "${TEST[@]}" --labels-per-class 5 --batch-size 10 --epochs 2 --threads 2)
expect_ok "finetune from the checkpoint" "$SIMCLR" "${FT[@]}" --out "$TMP/f" --checkpoint "$TMP/p/last.safetensors" --json "$TMP/f.json"
json_num() { sed -n "s/.*\"$1\": \([-0-9.e+]*\).*/\1/p" "$2" | head -n 1; }
check "json: top1 and top5 in [0, 1]" "$(awk -v a="$(json_num top1 "$TMP/f.json")" -v b="$(json_num top5 "$TMP/f.json")" 'BEGIN { print (a >= 0 && a <= b && b <= 1) }')" = 1
check "json: 50 labelled images" "$(json_num n_labels "$TMP/f.json")" = 50
check "subset.npy saved" -s "$TMP/f/subset.npy"
check "metrics: 10 steps and a test evaluation" "$(grep -c '"loss"' "$TMP/f/metrics.jsonl")" = 10 -a -n "$(grep test_top1 "$TMP/f/metrics.jsonl")"
check "curves and checkpoint" -s "$TMP/f/curves.png" -a -s "$TMP/f/last.safetensors"
check "PyTorch export: fc.weight / fc.bias and the encoder, no head." -n "$(head -c 20000 "$TMP/f/model.safetensors" | tr -d "\0" | grep -a '"fc.weight"' | grep -a '"fc.bias"' | grep -a '"layer4.1.bn2.running_var"')" -a -z "$(head -c 20000 "$TMP/f/model.safetensors" | tr -d "\0" | grep -a '"head\.')"
expect_ok "finetune: the same subset, random init" "$SIMCLR" "${FT[@]}" --out "$TMP/r" --random-init --arch resnet18 --stem cifar --width 0.0625 --image-size 8 --json "$TMP/r.json"
check "random init: the same labelled subset" "$(md5sum <"$TMP/r/subset.npy")" = "$(md5sum <"$TMP/f/subset.npy")"
expect_ok "finetune --keep-head 1" "$SIMCLR" "${FT[@]}" --out "$TMP/k" --checkpoint "$TMP/p/last.safetensors" --keep-head 1 --epochs 1
check "keep-head: fc as a Sequential (fc.0 kept, fc.2 the classifier)" -n "$(head -c 20000 "$TMP/k/model.safetensors" | tr -d "\0" | grep -a '"fc.0.weight"' | grep -a '"fc.2.bias"')"
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

# ---- the run-folder lock: a second finetune, a pretrain, --force or --resume while one trains ----
strip() { sed 's/, "views_per_s.*//' "$1"; }   # metrics lines without the timing
"$SIMCLR" "${FT[@]}" --out "$TMP/lk" --random-init --arch resnet18 --stem cifar --width 0.0625 --image-size 8 \
  --epochs 100000 >"$TMP/lk.log" 2>&1 &
P=$!
for _ in $(seq 600); do [ -s "$TMP/lk/metrics.jsonl" ] && break; sleep 0.1; done
check "the first finetune is training" -s "$TMP/lk/metrics.jsonl"
expect_fail "a second finetune on the folder is refused with the pid" "--out .*/lk: in use by another simclr process \(pid $P\)" \
  "$SIMCLR" "${FT[@]}" --out "$TMP/lk" --random-init --arch resnet18 --stem cifar --width 0.0625 --image-size 8 --force
expect_fail "--resume while it trains is refused" "--resume .*/lk: in use by another simclr process \(pid $P\)" \
  "$SIMCLR" finetune --resume "$TMP/lk"
expect_fail "a pretrain on the folder is refused" "in use by another simclr process \(pid $P\)" \
  "$SIMCLR" pretrain --out "$TMP/lk" "${D[@]}" --arch resnet18 --stem cifar --width 0.0625 --image-size 8 --max-steps 1 --force
check "the refused runs removed nothing" -s "$TMP/lk/config.json" -a -s "$TMP/lk/subset.npy"
kill -INT $P; wait $P; rc=$?
check "the finetune stops cleanly on Ctrl-C (130)" $rc -eq 130
check "... and says how to continue" -n "$(grep 'interrupted at step .*continue with: simclr finetune --resume' "$TMP/lk.log")"
check "one process wrote the metrics: each step once" -z "$(strip "$TMP/lk/metrics.jsonl" | grep -o '"step": [0-9]*' | sort | uniq -d)"
expect_ok "after it ends, --resume works" "$SIMCLR" finetune --resume "$TMP/lk" --stop-after-steps 1

# ---- --resume with options that change the trajectory ----
expect_ok "a finetune stopped after 3 steps" "$SIMCLR" "${FT[@]}" --out "$TMP/ov" --checkpoint "$TMP/p/last.safetensors" --stop-after-steps 3
cp "$TMP/ov/config.json" "$TMP/ov.config"
expect_fail "--resume --lr refused" "--resume .*/ov: --lr would change the run's trajectory.*--force-override" \
  "$SIMCLR" finetune --resume "$TMP/ov" --lr 0.1
expect_fail "--resume --epochs --labels-per-class refused, both named" "--labels-per-class, --epochs would change" \
  "$SIMCLR" finetune --resume "$TMP/ov" --epochs 3 --labels-per-class 4
check "config.json untouched by the refusals" -z "$(cmp "$TMP/ov/config.json" "$TMP/ov.config" 2>&1)"
expect_ok "--resume with the saved values and harmless options" \
  "$SIMCLR" finetune --resume "$TMP/ov" --epochs 2 --threads 1 --log-every 2 --stop-after-steps 4
expect_ok "--resume --lr 0.1 --force-override" "$SIMCLR" finetune --resume "$TMP/ov" --lr 0.1 --force-override
check "the override is announced" -n "$(grep -- '--force-override: --lr replace' "$TMP/err")"
check "config.json records the new lr" -n "$(grep '"lr": 0.1,' "$TMP/ov/config.json")"
check "config.json has no run-control values" -z "$(grep -E '"force-override": "on"|"resume": "|"stop-after-steps": [1-9]' "$TMP/ov/config.json")"
check "no temporary file left" -z "$(ls -A "$TMP/ov" | grep '\.tmp')"

# ---- --tensorboard: the scalars of metrics.jsonl, resumed without repeating steps ----
PY=/usr/bin/python3
if command -v protoc >/dev/null && $PY -c "import google.protobuf, numpy" 2>/dev/null; then
  expect_ok "finetune --tensorboard, test accuracy every epoch" "$SIMCLR" "${FT[@]}" --out "$TMP/tb" \
    --checkpoint "$TMP/p/last.safetensors" --tensorboard --eval-every 1
  expect_ok "events decode; CRCs, tags, steps, values = metrics.jsonl" $PY "$ROOT/tools/check_tensorboard.py" "$TMP/tb" --finetune
  sed 's/^/    /' "$TMP/out"
  check "10 steps x 5 train scalars + 2 x 2 test accuracies" -n "$(grep '54 scalars (7 tags, steps 1..10)' "$TMP/out")"
  expect_ok "stopped after step 3" "$SIMCLR" "${FT[@]}" --out "$TMP/tb2" --checkpoint "$TMP/p/last.safetensors" \
    --tensorboard --eval-every 1 --stop-after-steps 3
  expect_ok "resumed" "$SIMCLR" finetune --resume "$TMP/tb2"
  expect_ok "resumed log: no repeated step, values = metrics.jsonl" $PY "$ROOT/tools/check_tensorboard.py" "$TMP/tb2" --finetune
  check "the same scalars as the uninterrupted run" -n "$(grep '54 scalars (7 tags, steps 1..10)' "$TMP/out")"
  expect_fail "the checker knows pretrain's tags from finetune's" "missing in TensorBoard: train/contrastive_top1" \
    $PY "$ROOT/tools/check_tensorboard.py" "$TMP/tb"
else
  echo "FAIL protobuf-compiler / python3-protobuf are not installed (tools/deps.sh installs them)"; FAIL=$((FAIL+1))
fi

# ---- a full disk (tmpfs): metrics, then a checkpoint ----
if tmpfs disk 16m; then
  M="$TMP/disk"
  fill "$M" 12288              # lock, config.json, subset.npy: no page left for metrics.jsonl
  expect_fail "disk full while writing metrics" "metrics.jsonl: write failed: No space left on device" \
    "$SIMCLR" "${FT[@]}" --out "$M/m" --random-init --arch resnet18 --stem cifar --width 0.0625 --image-size 8 \
    --labels-per-class 20 --batch-size 4 --epochs 1
  check "... one error line" "$(grep -c 'simclr: error' "$TMP/err")" -eq 1
  check "no checkpoint claims steps the metrics lost" ! -e "$M/m/last.safetensors"
  check "no temporary file left" -z "$(ls -A "$M/m" | grep '\.tmp')"
  rm -rf "$M/m" "$M/filler"
  expect_ok "uninterrupted reference" "$SIMCLR" "${FT[@]}" --out "$TMP/ref" --checkpoint "$TMP/p/last.safetensors" --epochs 3 --checkpoint-every 1
  expect_ok "1 epoch on the small disk" "$SIMCLR" "${FT[@]}" --out "$M/r" --checkpoint "$TMP/p/last.safetensors" \
    --epochs 3 --checkpoint-every 1 --stop-after-steps 5
  fill "$M" $((256 << 10))     # room for the metrics, not for a 370 KB checkpoint
  expect_fail "disk full during the epoch-2 checkpoint" "epoch_0002.safetensors.*No space left on device" \
    "$SIMCLR" finetune --resume "$M/r"
  check "... one error line" "$(grep -c 'simclr: error' "$TMP/err")" -eq 1
  check "no temporary file, no model.safetensors on the full disk" -z "$(ls -A "$M/r" | grep -E '\.tmp|model.safetensors')"
  rm -f "$M/filler"
  expect_ok "resume after freeing space" "$SIMCLR" finetune --resume "$M/r"
  check "it resumed from the intact epoch-1 checkpoint" -n "$(grep 'resuming .* at step 5$' "$TMP/out")"
  diff <(strip "$TMP/ref/metrics.jsonl") <(strip "$M/r/metrics.jsonl") >/dev/null
  check "full disk + resume == uninterrupted, step for step" $? -eq 0
fi
finish
