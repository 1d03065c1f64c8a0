# Helpers for CLI tests. Source it, call the checks, end with `finish`.
#   expect_ok  "what" cmd args...            command must exit 0
#   expect_fail "what" "regex" cmd args...   must exit non-zero (not by a signal) with stderr matching regex
#   check "what" test-expression...          e.g. check "file exists" -f out.npy
#   npy PATH DESCR SHAPE 'printf-escaped bytes'   writes a crafted .npy file
set -u
: "${SIMCLR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/simclr}"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR="${SIMCLR_BUILD:-$ROOT/build}"   # test and helper binaries (tests/run.sh --build DIR)
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
PASS=0; FAIL=0
expect_ok() { local what="$1"; shift
  if "$@" >"$TMP/out" 2>"$TMP/err"; then PASS=$((PASS+1)); echo "ok $what"
  else FAIL=$((FAIL+1)); echo "FAIL $what (exit $?)"; tail -n 20 "$TMP/err"; fi; }
expect_fail() { local what="$1" re="$2"; shift 2
  "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -Eq -- "$re" "$TMP/err"; then PASS=$((PASS+1)); echo "ok $what"
  else FAIL=$((FAIL+1)); echo "FAIL $what (exit $rc, stderr below; wanted /$re/)"; tail -n 20 "$TMP/err"; fi; }
check() { local what="$1"; shift
  if test "$@"; then PASS=$((PASS+1)); echo "ok $what"; else FAIL=$((FAIL+1)); echo "FAIL $what"; fi; }
finish() { echo "$PASS passed, $FAIL failed"; [ $FAIL -eq 0 ]; }
npy() {
  local hdr="{'descr': '$2', 'fortran_order': False, 'shape': $3, }"
  local total=$((10 + ${#hdr} + 1)); local pad=$(( (64 - total % 64) % 64 ))
  hdr="$hdr$(printf '%*s' $pad '')"; local len=$(( ${#hdr} + 1 ))
  { printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $((len & 255)))\\x$(printf %02x $((len >> 8)))"
    printf '%s\n' "$hdr"; printf "$4"; } > "$1"
}
