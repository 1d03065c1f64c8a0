#!/usr/bin/env bash
# The inputs the fuzzers found (fuzz/regress/, doc/fuzzing.md) and the parser findings of issue
# #8, through the commands that read them: each must fail with exit 1 and one clean line
# "simclr: error: ..." naming the file.
. "$(dirname "$0")/lib.sh"
R="$ROOT/fuzz/regress"
F="$ROOT/tests/fixtures/eval"
export OMP_WAIT_POLICY=passive
DIG="--train-features $F/digits_Xtr.npy --train-labels $F/digits_ytr.npy --test-features $F/digits_Xte.npy --test-labels $F/digits_yte.npy"
# expect_one_line "what" "regex" cmd...: exit 1, stderr exactly one line matching regex
expect_one_line() { local what="$1" re="$2"; shift 2
  "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  if [ $rc -eq 1 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -Eq -- "^simclr: error: .*$re" "$TMP/err"; then
    PASS=$((PASS+1)); echo "ok $what"
  else FAIL=$((FAIL+1)); echo "FAIL $what (exit $rc, stderr below; wanted one line /$re/)"; head -c 2000 "$TMP/err"; fi; }

# npy: header ending right after 'descr': with the data starting with a quote (table #1: read past
# the file); a dtype holding a newline (table #15); a shape whose byte count wraps to zero
cp "$R/npy/descr_at_header_end" "$TMP/e.npy"
expect_one_line "npy header ending after 'descr':" "e.npy: .*descr" \
  "$SIMCLR" augment-preview --dataset npy --data "$TMP/e.npy" --output "$TMP/x.png"
cp "$R/npy/descr_newline" "$TMP/nl.npy"
expect_one_line "npy dtype with a newline, shown escaped" "nl.npy: unsupported npy dtype '<f\\\\x0a'" \
  "$SIMCLR" augment-preview --dataset npy --data "$TMP/nl.npy" --output "$TMP/x.png"
cp "$R/npy/shape_bytes_overflow" "$TMP/big.npy"
expect_one_line "npy shape whose size overflows" "big.npy: expected" \
  "$SIMCLR" linear-eval --train-features "$TMP/big.npy" --train-labels "$F/digits_ytr.npy" \
  --test-features "$F/digits_Xte.npy" --test-labels "$F/digits_yte.npy"

# safetensors: a tensor name holding a newline
cp "$R/safetensors/newline_in_name" "$TMP/nl.safetensors"
expect_one_line "checkpoint tensor name with a newline" "nl.safetensors: tensor 'a\\\\x0ab'" \
  "$SIMCLR" features --checkpoint "$TMP/nl.safetensors" --dataset npy --data "$TMP/e.npy" --output "$TMP/f.npy"

# saved configuration: a key holding a newline, read back by pretrain --resume
mkdir -p "$TMP/run"
meta='{"__metadata__":{"config":"{\"lr\": 1, \"a\\nb\" 2}"}}'
{ printf "\\x$(printf %02x ${#meta})\\x00\\x00\\x00\\x00\\x00\\x00\\x00"; printf '%s' "$meta"; } >"$TMP/run/last.safetensors"
expect_one_line "saved configuration with a newline in a key" "saved configuration: .*a\\\\x0ab" \
  "$SIMCLR" pretrain --resume "$TMP/run"

# fold file: an out-of-range index at the end of a line over 128 KB (table #2: the message was
# printed from freed memory)
{ for i in $(seq 1 30000); do printf '%d ' $((i % 100)); done; echo 99999; } >"$TMP/folds.txt"
expect_one_line "fold index out of range at the end of a long line" "folds.txt: line 1: expected indices 0\\.\\.[0-9]+, found '99999'" \
  "$SIMCLR" linear-eval $DIG --folds --fold-indices "$TMP/folds.txt"
# an error after a good fold (the folds read so far were freed twice)
printf '0 1\n\n2 x3\n' >"$TMP/folds2.txt"
expect_one_line "bad fold after a good one; line numbers count empty lines" "folds2.txt: line 3: .*found 'x3'" \
  "$SIMCLR" linear-eval $DIG --folds --fold-indices "$TMP/folds2.txt"
# image: the JPEG decompression bombs the image fuzzer found (doc/fuzzing.md): a few hundred bytes
# declaring 65468 x 64976 pixels, baseline and progressive; refused from the header, before any
# allocation (they used to take over 2 minutes and 6 GB each)
for b in baseline progressive; do
  mkdir -p "$TMP/bomb_$b"; cp "$R/image/jpeg_bomb_$b" "$TMP/bomb_$b/x.jpg"
  expect_one_line "JPEG bomb ($b) in a folder, --strict-images" "x.jpg: cannot decode JPEG: 65468x64976 = 4253848768 pixels.*decompression bomb" \
    timeout 20 "$SIMCLR" augment-preview --dataset folder --data "$TMP/bomb_$b" --strict-images --images 1 --views 1 --image-size 16 --output "$TMP/x.png"
done
finish
