#!/usr/bin/env bash
# Fault tests of issue #8 through the command: hostile inputs (labels, fold files, npy headers,
# special files, symlink loops, outputs that cannot be written), the run-folder lock (a second
# pretrain, --force or --resume while a run trains; two runs started at once), --resume with
# options that change the trajectory, a full disk (a small tmpfs) during a checkpoint and during
# metrics writing, and a read-only output folder. kill -9 / Ctrl-C + exact resume: pretrain.sh.
# The tmpfs tests need `mount` (root); elsewhere they print "skipped: ..." and count nothing.
source "$(dirname "$0")/lib.sh"
export OMP_WAIT_POLICY=passive
T=(--arch resnet18 --width 0.125 --stem cifar --image-size 16 --limit 256 --batch-size 32
   --seed 7 --threads 2 --loader-threads 1 --checkpoint-every 1)
strip() { sed 's/, "views_per_s.*//' "$1"; }   # metrics lines without the timing
one_line_err() { check "$1: one-line message" "$(wc -l <"$TMP/err")" -eq 1; }

# ---- labels (findings 5, 6) ---------------------------------------------------------------
F1='\x00\x00\x80\x3f'; F2='\x00\x00\x00\x40'
X5="$F1$F2$F2$F1$F1$F1$F2$F2$F1$F1"
npy "$TMP/x5.npy" '<f4' '(5, 2)' "$X5"
i64() { local s=""; for v in "$@"; do s+=$(printf '\\x%02x\\x%02x\\x%02x\\x%02x\\x%02x\\x%02x\\x%02x\\x%02x' \
  $((v & 255)) $((v >> 8 & 255)) $((v >> 16 & 255)) $((v >> 24 & 255)) 0 0 0 0); done; printf '%s' "$s"; }
npy "$TMP/ybig.npy" '<i8' '(5,)' "$(i64 1000000 0 1 2 3)"
npy "$TMP/ymax.npy" '<i8' '(5,)' "$(i64 2147483647 0 1 2 3)"
npy "$TMP/y7.npy" '<i8' '(5,)' "$(i64 7 0 1 2 3)"
npy "$TMP/yok.npy" '<i8' '(5,)' "$(i64 0 1 2 3 0)"
E5=(--test-features "$TMP/x5.npy" --test-labels "$TMP/yok.npy" --threads 1)
expect_fail "a huge label is named, not turned into a million classes" "largest label is 1000000 \(row 0\).*--num-classes" \
  timeout 60 "$SIMCLR" linear-eval --train-features "$TMP/x5.npy" --train-labels "$TMP/ybig.npy" "${E5[@]}" --l2 1
expect_fail "label INT_MAX: no overflow" "largest label is 2147483647" \
  "$SIMCLR" knn-eval --train-features "$TMP/x5.npy" --train-labels "$TMP/ymax.npy" "${E5[@]}"
expect_fail "label 7 of 5 rows needs --num-classes" "largest label is 7" \
  "$SIMCLR" knn-eval --train-features "$TMP/x5.npy" --train-labels "$TMP/y7.npy" "${E5[@]}" --k 2
expect_ok "--num-classes 8 allows classes without examples" \
  "$SIMCLR" knn-eval --train-features "$TMP/x5.npy" --train-labels "$TMP/y7.npy" "${E5[@]}" --k 2 --num-classes 8
expect_fail "--num-classes below a label" "not below --num-classes 5" \
  "$SIMCLR" knn-eval --train-features "$TMP/x5.npy" --train-labels "$TMP/y7.npy" "${E5[@]}" --num-classes 5

# ---- fold files (findings 2, 15) --------------------------------------------------------------
# over 128 KB, then an index out of range: the message used to print from freed memory
{ for i in $(seq 14000); do printf '0 1 2 3 4 '; done; printf '9\n'; } >"$TMP/folds_big.txt"
FOLD=(--train-features "$TMP/x5.npy" --train-labels "$TMP/yok.npy" "${E5[@]}" --folds --l2 1)
expect_fail "out-of-range index at the end of a 140 KB fold file" "--fold-indices .*folds_big.txt: line 1: expected indices 0..4, found '9'" \
  "$SIMCLR" linear-eval "${FOLD[@]}" --fold-indices "$TMP/folds_big.txt"
printf '0 1 5\r\n2 3\n' >"$TMP/folds_crlf.txt"
expect_fail "fold value with a carriage return is quoted escaped" "found '5\\\\x0d'" \
  "$SIMCLR" linear-eval "${FOLD[@]}" --fold-indices "$TMP/folds_crlf.txt"
one_line_err "fold file"
npy "$TMP/nl.npy" $'<f\n' '(5, 2)' "$X5"
expect_fail "npy descr holding a newline" "unsupported npy dtype '<f\\\\x0a'" \
  "$SIMCLR" knn-eval --train-features "$TMP/nl.npy" --train-labels "$TMP/yok.npy" "${E5[@]}"
one_line_err "npy descr"

# ---- npy header read past its end (finding 1) -------------------------------------------------
{ printf '\x93NUMPY\x01\x00\x09\x00'; printf "{'descr':"; printf "'"; head -c $((8 << 20)) /dev/zero; } >"$TMP/e.npy"
expect_fail "npy header ending after 'descr': refused, no crash" "e.npy: npy header has no 'descr' string" \
  "$SIMCLR" augment-preview --dataset npy --data "$TMP/e.npy" --output "$TMP/e.png"

# ---- image folders: special files, symlink loops, bombs (findings 7, 8, 9) ------------------
mkdir -p "$TMP/photos/a" "$TMP/photos/b"
cp "$ROOT/tests/fixtures/data/images/rgb.png" "$TMP/photos/a/1.png"
cp "$ROOT/tests/fixtures/data/images/rgb.png" "$TMP/photos/b/1.png"
ln -s .. "$TMP/photos/a/loop"
mkfifo "$TMP/photos/b/fifo.png"
ln -s /dev/zero "$TMP/photos/b/zero.png"
PREV=(--dataset folder --data "$TMP/photos" --image-size 16 --images 2 --views 1 --output "$TMP/p.png")
expect_ok "folder with a loop, a FIFO and /dev/zero: no hang" timeout 60 "$SIMCLR" augment-preview "${PREV[@]}"
check "the loop is named and not followed" -n "$(grep 'photos/a/loop: a symbolic link to a folder; not followed' "$TMP/err")"
check "the FIFO is skipped with its reason" -n "$(grep 'fifo.png: expected a regular file, found a FIFO' "$TMP/err")"
check "/dev/zero is skipped with its reason" -n "$(grep 'zero.png: expected a regular file, found a character device' "$TMP/err")"
check "2 images, 2 classes" -n "$(grep -E '2 images, .*2 classes' "$TMP/out" "$TMP/err")"
expect_fail "--strict-images makes the FIFO fatal" "strict-images.*fifo.png.*FIFO" \
  timeout 60 "$SIMCLR" augment-preview "${PREV[@]}" --strict-images
expect_fail "--max-image-pixels below the images' size" "no readable PNG/JPEG" \
  "$SIMCLR" augment-preview "${PREV[@]}" --max-image-pixels 10
check "the bomb guard names the option" -n "$(grep -- 'more than --max-image-pixels 10' "$TMP/err")"

# ---- outputs checked before the work (finding 14) ------------------------------------------
DIG=(--train-features "$ROOT/tests/fixtures/eval/digits_Xtr.npy" --train-labels "$ROOT/tests/fixtures/eval/digits_ytr.npy"
     --test-features "$ROOT/tests/fixtures/eval/digits_Xte.npy" --test-labels "$ROOT/tests/fixtures/eval/digits_yte.npy")
expect_fail "linear-eval --json in a missing folder fails first" "--json: .*nowhere/r.json: cannot create" \
  "$SIMCLR" linear-eval "${DIG[@]}" --json "$TMP/nowhere/r.json"
check "... before any fitting" -z "$(grep 'linear eval' "$TMP/out")"
expect_fail "pca-baseline --test-output a folder" "--test-output: .*: is a folder" \
  "$SIMCLR" pca-baseline "${DIG[@]}" --test-output "$TMP"

# ---- the run-folder lock (finding 3) and concurrent runs --------------------------------------
"$SIMCLR" pretrain --out "$TMP/run" "${T[@]}" --epochs 200 >"$TMP/run.log" 2>&1 &
P=$!
for _ in $(seq 600); do [ -s "$TMP/run/metrics.jsonl" ] && break; sleep 0.1; done
check "the first run is training" -s "$TMP/run/metrics.jsonl"
expect_fail "a second pretrain on the folder is refused with the pid" "--out .*/run: in use by another simclr process \(pid $P\)" \
  "$SIMCLR" pretrain --out "$TMP/run" "${T[@]}" --epochs 1
expect_fail "--force while it trains is refused" "in use by another simclr process \(pid $P\)" \
  "$SIMCLR" pretrain --out "$TMP/run" "${T[@]}" --epochs 1 --force
expect_fail "--resume while it trains is refused" "--resume .*in use by another simclr process \(pid $P\)" \
  "$SIMCLR" pretrain --resume "$TMP/run"
check "the refused runs removed nothing" -s "$TMP/run/config.json"
kill -INT $P; wait $P; rc=$?
check "the first run stops cleanly on Ctrl-C (130)" $rc -eq 130
[ $rc -eq 130 ] || { echo "  its log (exit $rc):"; tail -n 20 "$TMP/run.log" | sed 's/^/  | /'; }
check "one process wrote the metrics: steps 1..n once each" -z "$(strip "$TMP/run/metrics.jsonl" | grep -o '"step": [0-9]*' | sort | uniq -d)"
expect_ok "after it ends, --resume works" "$SIMCLR" pretrain --resume "$TMP/run" --stop-after-steps 1

# two runs started at once: one trains, the other is refused
"$SIMCLR" pretrain --out "$TMP/two" "${T[@]}" --epochs 1 >"$TMP/two1.log" 2>&1 & P1=$!
"$SIMCLR" pretrain --out "$TMP/two" "${T[@]}" --epochs 1 >"$TMP/two2.log" 2>&1 & P2=$!
wait $P1; r1=$?; wait $P2; r2=$?
check "two runs at once: exactly one succeeds ($r1, $r2)" $((r1 == 0 && r2 == 1 || r1 == 1 && r2 == 0)) -eq 1
check "the other names the reason" -n "$(grep -hE 'in use by another simclr process|holds another run' "$TMP/two1.log" "$TMP/two2.log")"
check "8 step lines, not 16" "$(grep -c '"loss"' "$TMP/two/metrics.jsonl")" -eq 8

# ---- --resume with options that change the trajectory (finding 11) -------------------------
expect_ok "a run stopped after 5 steps" "$SIMCLR" pretrain --out "$TMP/ov" "${T[@]}" --epochs 2 --stop-after-steps 5
cp "$TMP/ov/config.json" "$TMP/ov.config"
expect_fail "--resume --lr refused" "--resume .*: --lr would change the run's trajectory.*--force-override" \
  "$SIMCLR" pretrain --resume "$TMP/ov" --lr 0.1
expect_fail "--resume --epochs --batch-size refused, both named" "--epochs, --batch-size would change" \
  "$SIMCLR" pretrain --resume "$TMP/ov" --epochs 3 --batch-size 16
check "config.json untouched by the refusals" -z "$(cmp "$TMP/ov/config.json" "$TMP/ov.config" 2>&1)"
expect_ok "--resume with the saved values and harmless options" \
  "$SIMCLR" pretrain --resume "$TMP/ov" --epochs 2 --threads 1 --stop-after-steps 6
expect_ok "--resume --lr 0.1 --force-override" "$SIMCLR" pretrain --resume "$TMP/ov" --lr 0.1 --force-override
check "the override is announced" -n "$(grep -- '--force-override: --lr replace' "$TMP/err")"
check "config.json records the new lr" -n "$(grep '"lr": 0.1,' "$TMP/ov/config.json")"
check "config.json has no run-control values" -z "$(grep -E '"force-override": "on"|"resume": "' "$TMP/ov/config.json")"
check "no temporary file left" -z "$(ls "$TMP/ov" | grep '\.tmp')"

# ---- a full disk (tmpfs) -------------------------------------------------------------------
if tmpfs disk 16m; then
  D="$TMP/disk"
  expect_ok "uninterrupted reference run" "$SIMCLR" pretrain --out "$TMP/ref" "${T[@]}" --epochs 3
  expect_ok "1 epoch on the small disk" "$SIMCLR" pretrain --out "$D/r" "${T[@]}" --epochs 3 --stop-after-steps 8
  fill "$D" $((256 << 10))     # room for the metrics, not for a 2.2 MB checkpoint
  expect_fail "disk full during the epoch-2 checkpoint" "epoch_0002.safetensors.*No space left on device" \
    "$SIMCLR" pretrain --resume "$D/r"
  check "no temporary file left on the full disk" -z "$(ls "$D/r" | grep '\.tmp')"
  rm -f "$D/filler"
  expect_ok "resume after freeing space" "$SIMCLR" pretrain --resume "$D/r"
  check "it resumed from the intact epoch-1 checkpoint" -n "$(grep 'resuming .* at step 8 ' "$TMP/out")"
  diff <(strip "$TMP/ref/metrics.jsonl") <(strip "$D/r/metrics.jsonl") >/dev/null
  check "full disk + resume == uninterrupted, step for step" $? -eq 0
  umount "$D"

  tmpfs disk2 16m && {
    D="$TMP/disk2"
    fill "$D" 12288              # lock, config.json and one page of metrics.jsonl
    expect_fail "disk full while writing metrics" "metrics.jsonl: write failed: No space left on device" \
      "$SIMCLR" pretrain --out "$D/m" "${T[@]}" --limit 512 --batch-size 8 --epochs 1
    check "no checkpoint claims steps the metrics lost" ! -e "$D/m/last.safetensors"
    umount "$D"; }
fi

# ---- a read-only output folder ---------------------------------------------------------------
if tmpfs ro 16m; then
  D="$TMP/ro"
  cp -r "$TMP/two" "$D/run"
  mount -o remount,ro "$D"
  expect_fail "pretrain --out on a read-only file system" "--out .*ro/new.*Read-only file system" \
    "$SIMCLR" pretrain --out "$D/new" "${T[@]}" --epochs 1
  expect_fail "--resume on a read-only file system" "--resume .*ro/run.*Read-only file system" \
    "$SIMCLR" pretrain --resume "$D/run"
  check "the read-only run is intact" -z "$(cmp "$D/run/last.safetensors" "$TMP/two/last.safetensors" 2>&1)"
  expect_fail "features --output on a read-only folder fails before the work" "--output: .*ro/f.npy: cannot create.*Read-only" \
    "$SIMCLR" features --checkpoint "$D/run/last.safetensors" --dataset fashion-mnist --split test --output "$D/f.npy"
  check "... before any extraction" -z "$(grep extracting "$TMP/err")"
fi
finish
