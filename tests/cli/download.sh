#!/usr/bin/env bash
# CLI tests of `simclr download` against tools/http_test_server.py on 127.0.0.1 (nothing else is
# contacted: every --url is local): small generated archives in the real layouts (the fixtures'
# stl10_binary/ and cifar-100-binary/, a generated cifar-10-batches-bin/), a connection cut
# mid-transfer (resumed with an HTTP Range request, in the same run and in a later run), a server
# that ignores Range, a wrong checksum, a truncated archive, 404, a refused connection, a host name
# that never resolves (.invalid, RFC 6761), a full disk (a tmpfs smaller than the archive, then
# one with room for the archive but not for what it unpacks to; root only, else "skipped").
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
F="$ROOT/tests/fixtures/data"
S="$TMP/srv"; mkdir -p "$S" "$TMP/gen/cifar-10-batches-bin" "$TMP/gen/other" "$TMP/bad/stl10_binary"
tar -czf "$S/stl10_binary.tar.gz" -C "$F" stl10_binary
tar -czf "$S/cifar-100-binary.tar.gz" -C "$F" cifar-100-binary
for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
  { printf '\007'; head -c 3072 /dev/urandom; printf '\002'; head -c 3072 /dev/urandom; } > "$TMP/gen/cifar-10-batches-bin/$f.bin"
done
tar -czf "$S/cifar-10-binary.tar.gz" -C "$TMP/gen" cifar-10-batches-bin
cp "$S/cifar-10-binary.tar.gz" "$S/c10b.tar.gz"
head -c $(( $(stat -c %s "$S/stl10_binary.tar.gz") / 2 )) "$S/stl10_binary.tar.gz" > "$S/trunc.tar.gz"
echo hi > "$TMP/gen/other/readme.txt"; tar -czf "$S/other.tar.gz" -C "$TMP/gen" other
cp "$F"/stl10_binary/* "$TMP/bad/stl10_binary/"; head -c 1000 "$F/stl10_binary/train_X.bin" > "$TMP/bad/stl10_binary/train_X.bin"
tar -czf "$S/bad.tar.gz" -C "$TMP/bad" stl10_binary
md5() { md5sum "$1" | cut -d' ' -f1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
$PY "$ROOT/tools/http_test_server.py" "$S" "$TMP/port" "$TMP/log" --lifetime 240 & SRV=$!
on_exit 'kill $SRV 2>/dev/null'
for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.1; done
U="http://127.0.0.1:$(cat "$TMP/port")"
D="$TMP/data"

# ---- a cut connection resumed within the run; the result is ready for --data ----
expect_ok "stl10: cut mid-transfer, resumed" "$SIMCLR" download stl10 --data "$D" --url "$U/cut/stl10_binary.tar.gz" \
  --checksum "md5:$(md5 "$S/stl10_binary.tar.gz")"
check "the cut was reported" -n "$(grep 'connection was cut after' "$TMP/err")"
check "the second request asked for the rest (Range)" -n "$(grep -E '^GET /cut/stl10_binary.tar.gz bytes=[1-9][0-9]*-$' "$TMP/log")"
check "sha256 printed" -n "$(grep "sha256 $(sha "$S/stl10_binary.tar.gz")" "$TMP/out")"
check "files identical to the source" -z "$(diff -r "$F/stl10_binary" "$D/stl10_binary" 2>&1)"
check "archive, .part and temporary folders removed" -z "$(ls -A "$D" | grep -v '^stl10_binary$')"
expect_ok "ready for --data" "$SIMCLR" augment-preview --dataset stl10 --data "$D" --split train+unlabeled \
  --images 2 --views 1 --image-size 32 --output "$TMP/g.png"
expect_fail "a complete copy is not overwritten" "stl10_binary: a complete copy is already there" \
  "$SIMCLR" download stl10 --data "$D" --url "$U/stl10_binary.tar.gz"
check "refusal made no request" -z "$(grep -c '' "$TMP/log" | grep -v '^2$')"

# ---- sha256, --keep-archive, CIFAR-100 ----
expect_ok "cifar100 with sha256 and --keep-archive" "$SIMCLR" download cifar100 --data "$D" --quiet \
  --url "$U/cifar-100-binary.tar.gz" --checksum "sha256:$(sha "$S/cifar-100-binary.tar.gz")" --keep-archive
check "archive kept" -f "$D/cifar-100-binary.tar.gz"
expect_ok "CIFAR-100 opens with coarse labels" "$SIMCLR" augment-preview --dataset cifar100 --data "$D" \
  --cifar100-labels coarse --images 2 --views 1 --image-size 16 --output "$TMP/g2.png"

# ---- a cut run that gives up, resumed by the next run; a .part from another URL is refused ----
C10=(download cifar10 --data "$D" --checksum "md5:$(md5 "$S/cifar-10-binary.tar.gz")")
expect_fail "cifar10: cut, no retries" "connection was cut after [0-9]+ bytes.*run the same command again" \
  "$SIMCLR" "${C10[@]}" --url "$U/cut/cifar-10-binary.tar.gz" --retries 0
check ".part kept for a resume" -s "$D/cifar-10-binary.tar.gz.part"
check "no dataset folder after a failure" ! -e "$D/cifar-10-batches-bin"
expect_fail "a .part from another URL is refused" "partial download of another archive" \
  "$SIMCLR" "${C10[@]}" --url "$U/c10b.tar.gz"
expect_ok "the next run resumes" "$SIMCLR" "${C10[@]}" --url "$U/cut/cifar-10-binary.tar.gz" --retries 0
check "it resumed at the cut" -n "$(grep 'resuming .*cifar-10-binary.tar.gz.part at byte [1-9]' "$TMP/err")"
check "CIFAR-10 records identical" -z "$(diff -r "$TMP/gen/cifar-10-batches-bin" "$D/cifar-10-batches-bin" 2>&1)"

# ---- a server that ignores Range: the download starts over ----
D2="$TMP/d2"; mkdir -p "$D2"
head -c 100 "$S/c10b.tar.gz" > "$D2/cifar-10-binary.tar.gz.part"; echo "$U/norange/c10b.tar.gz" > "$D2/cifar-10-binary.tar.gz.part.src"
expect_ok "Range ignored: start over" "$SIMCLR" download cifar10 --data "$D2" --url "$U/norange/c10b.tar.gz" \
  --checksum "md5:$(md5 "$S/c10b.tar.gz")"
check "it said so" -n "$(grep 'ignores HTTP ranges; starting over' "$TMP/err")"

# ---- failures: one line, exit 1, nothing left behind ----
D3="$TMP/d3"
expect_fail "wrong checksum" "stl10_binary.tar.gz: checksum mismatch: expected md5 0{32}, got $(md5 "$S/stl10_binary.tar.gz")" \
  "$SIMCLR" download stl10 --data "$D3" --url "$U/stl10_binary.tar.gz" --checksum "md5:$(printf '0%.0s' $(seq 32))"
expect_fail "wrong published checksum (no --checksum)" "checksum mismatch: expected md5 91f7769df0f17e558f3565bffb0c7dfb" \
  "$SIMCLR" download stl10 --data "$D3" --url "$U/stl10_binary.tar.gz"
expect_fail "truncated archive" "trunc|stl10_binary.tar.gz: truncated or damaged archive" \
  "$SIMCLR" download stl10 --data "$D3" --url "$U/trunc.tar.gz" --checksum "md5:$(md5 "$S/trunc.tar.gz")"
expect_fail "archive without the dataset folder" "expected the folder stl10_binary/ in the archive" \
  "$SIMCLR" download stl10 --data "$D3" --url "$U/other.tar.gz" --checksum "md5:$(md5 "$S/other.tar.gz")"
expect_fail "archive with a damaged file" "not a usable copy.*train_X.bin: expected a non-zero multiple of 27648" \
  "$SIMCLR" download stl10 --data "$D3" --url "$U/bad.tar.gz" --checksum "md5:$(md5 "$S/bad.tar.gz")"
expect_fail "404" "/missing.tar.gz: HTTP 404 \(not found\)" \
  "$SIMCLR" download stl10 --data "$D3" --url "$U/missing.tar.gz"
expect_fail "refused connection" "127.0.0.1:1/x.tar.gz: .*(refused|connect)" \
  "$SIMCLR" download stl10 --data "$D3" --url "http://127.0.0.1:1/x.tar.gz"
check "nothing left behind by the failures" -z "$(ls -A "$D3")"
mkdir -p "$D3/stl10_binary"
expect_fail "an incomplete copy is not overwritten" "stl10_binary: exists but is not a complete copy" \
  "$SIMCLR" download stl10 --data "$D3" --url "$U/stl10_binary.tar.gz"
expect_fail "unknown dataset" "expected stl10, cifar10 or cifar100, got 'imagenet'" "$SIMCLR" download imagenet --data "$D3"
expect_fail "no --data" "--data is required" "$SIMCLR" download stl10
expect_fail "bad --checksum" "--checksum: expected sha256:HEX" "$SIMCLR" download stl10 --data "$D3" --checksum sha1:abc
expect_fail "unreachable URL (a name that never resolves)" "simclr-test.invalid/x.tar.gz: .*resolve" \
  timeout 60 "$SIMCLR" download cifar100 --data "$D3" --url "http://simclr-test.invalid/x.tar.gz"
check "... one line" "$(wc -l <"$TMP/err")" -eq 3   # "downloading URL", "  -> FILE", the error
check "nothing left behind by it" -z "$(ls -A "$D3" | grep -v '^stl10_binary$')"

# ---- a full disk: during the download, then during the unpacking ----
# an archive of random (incompressible) CIFAR-10 records, about 3 MB
mkdir -p "$TMP/big/cifar-10-batches-bin"
for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
  $PY -c "import os,sys; sys.stdout.buffer.write(b''.join(bytes([i % 10]) + os.urandom(3072) for i in range(160)))" \
    > "$TMP/big/cifar-10-batches-bin/$f.bin"
done
tar -czf "$S/big.tar.gz" -C "$TMP/big" cifar-10-batches-bin
BIG=(download cifar10 --checksum "md5:$(md5 "$S/big.tar.gz")" --url "$U/big.tar.gz" --quiet)
if tmpfs small 1m; then
  M="$TMP/small"
  expect_fail "disk full during the download" "cifar-10-binary.tar.gz.part: cannot write: No space left on device.*run the same command again" \
    "$SIMCLR" "${BIG[@]}" --data "$M/d"
  check "... one error line" "$(grep -c 'simclr: error' "$TMP/err")" -eq 1
  check "no archive, no dataset folder, only the resumable .part" "$(ls -A "$M/d" | tr '\n' ' ')" = "cifar-10-binary.tar.gz.part cifar-10-binary.tar.gz.part.src "
  mount -o remount,size=16m "$M"
  expect_ok "a later run with room resumes and finishes" "$SIMCLR" "${BIG[@]}" --data "$M/d"
  check "... from the kept bytes" -n "$(grep 'resuming .*cifar-10-binary.tar.gz.part at byte [1-9]' "$TMP/err")"
  check "records identical" -z "$(diff -r "$TMP/big/cifar-10-batches-bin" "$M/d/cifar-10-batches-bin" 2>&1)"
  rm -rf "$M/d"
  mount -o remount,size=$(( $(stat -c %s "$S/big.tar.gz") + (1 << 20) )) "$M"
  expect_fail "disk full during the unpacking" "cannot write: No space left on device.*the verified archive .*cifar-10-binary.tar.gz is kept" \
    "$SIMCLR" "${BIG[@]}" --data "$M/d"
  check "... one error line" "$(grep -c 'simclr: error' "$TMP/err")" -eq 1
  check "nothing unpacked is left, the archive is" "$(ls -A "$M/d" | tr '\n' ' ')" = "cifar-10-binary.tar.gz "
  mount -o remount,size=16m "$M"
  n=$(grep -c . "$TMP/log")
  expect_ok "a later run with room unpacks the kept archive" "$SIMCLR" "${BIG[@]}" --data "$M/d"
  check "... without downloading again" "$(grep -c . "$TMP/log")" -eq "$n"
  check "records identical" -z "$(diff -r "$TMP/big/cifar-10-batches-bin" "$M/d/cifar-10-batches-bin" 2>&1)"
  check "only the dataset folder is left" "$(ls -A "$M/d")" = cifar-10-batches-bin
fi
check "only 127.0.0.1 was contacted (every URL above is local)" -z "$(grep -v '^\(GET\|HEAD\) /' "$TMP/log")"
finish
