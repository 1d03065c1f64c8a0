#!/usr/bin/env bash
# CLI tests of `simclr pretrain --tensorboard`: the events file is decoded with a decoder built
# from the published schema (tools/tensorboard_event.proto, protoc + python3-protobuf) and every
# CRC, tag, step and value is checked against metrics.jsonl (tools/check_tensorboard.py);
# resuming appends without repeating steps, also after a torn last record.
source "$(dirname "$0")/lib.sh"
export OMP_WAIT_POLICY=passive
PY=/usr/bin/python3
if ! command -v protoc >/dev/null || ! $PY -c "import google.protobuf, numpy" 2>/dev/null; then
  echo "FAIL protobuf-compiler / python3-protobuf are not installed (tools/deps.sh installs them)"
  echo "0 passed, 1 failed"; exit 1
fi
T=(--dataset fashion-mnist --split train --limit 128 --batch-size 32 --epochs 3 --threads 2 --loader-threads 1
   --arch resnet18 --width 0.125 --stem cifar --image-size 16 --eval-every 1 --eval-limit 100 --seed 5 --tensorboard)
expect_ok "a run with --tensorboard" "$SIMCLR" pretrain "${T[@]}" --out "$TMP/a"
expect_ok "events decode; CRCs, tags, steps, values = metrics.jsonl; preview image" \
  $PY "$ROOT/tools/check_tensorboard.py" "$TMP/a" --image
sed 's/^/    /' "$TMP/out"
check "12 steps x 5 train scalars + 3 x 2 kNN" -n "$(grep '66 scalars (7 tags, steps 1..12)' "$TMP/out")"
# an interrupted run, a torn record at the end (a crash mid-write), then --resume
expect_ok "stopped after step 5" "$SIMCLR" pretrain "${T[@]}" --out "$TMP/b" --stop-after-steps 5
EV=$(ls "$TMP"/b/tensorboard/events.out.tfevents.*)
printf '\x30\x00\x00\x00\x00\x00\x00\x00torn' >> "$EV"
expect_ok "resumed" "$SIMCLR" pretrain --resume "$TMP/b"
expect_ok "resumed log: no repeated step, same values as metrics.jsonl" $PY "$ROOT/tools/check_tensorboard.py" "$TMP/b" --image
sed 's/^/    /' "$TMP/out"
check "the same scalars as the uninterrupted run" -n "$(grep '66 scalars (7 tags, steps 1..12)' "$TMP/out")"
check "one events file (appended, not a second one)" "$(ls "$TMP/b/tensorboard" | wc -l)" -eq 1
check "same events file name" "$(ls "$TMP"/b/tensorboard/events.out.tfevents.*)" = "$EV"
# --force starts a new log
expect_ok "--force: a new run in the same folder" "$SIMCLR" pretrain "${T[@]}" --epochs 1 --out "$TMP/b" --force
expect_ok "only the new run's log" $PY "$ROOT/tools/check_tensorboard.py" "$TMP/b" --image
check "4 steps" -n "$(grep '22 scalars (7 tags, steps 1..4)' "$TMP/out")"
# the checker can fail: a changed value
cp -r "$TMP/a" "$TMP/c"
sed -i '0,/"loss": [0-9.]*/s//"loss": 1.5/' "$TMP/c/metrics.jsonl"
expect_fail "a changed metrics value is detected" "train/loss step 1: TensorBoard" $PY "$ROOT/tools/check_tensorboard.py" "$TMP/c"
mkdir -p "$TMP/e"; echo x > "$TMP/e/tensorboard"
expect_fail "a file where the log folder goes" "--tensorboard: .*tensorboard" "$SIMCLR" pretrain "${T[@]}" --epochs 1 --out "$TMP/e"
finish
