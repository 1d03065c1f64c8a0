# Helpers for CLI tests. Source it, call the checks, end with `finish`.
#   expect_ok  "what" cmd args...            command must exit 0
#   expect_fail "what" "regex" cmd args...   must exit non-zero (not by a signal) with stderr matching regex
#   check "what" test-expression...          e.g. check "file exists" -f out.npy
#   npy PATH DESCR SHAPE 'printf-escaped bytes'   writes a crafted .npy file
set -u
: "${SIMCLR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/simclr}"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR="${SIMCLR_BUILD:-$ROOT/build}"   # test and helper binaries (tests/run.sh --build DIR)
#   tmpfs NAME SIZE                       mounts a tmpfs at $TMP/NAME (a small disk; root only:
#                                         elsewhere it prints "skipped: ..." and returns 1)
#   fill DIR BYTES                        leaves about BYTES free on DIR's file system
#   on_exit 'command'                     runs the command at exit, before the mounts go and $TMP
TMP=$(mktemp -d); MNT=(); ON_EXIT=""
lib_cleanup() { eval "$ON_EXIT"; local m; for m in "${MNT[@]}"; do umount "$m" 2>/dev/null; done; rm -rf "$TMP"; }
trap lib_cleanup EXIT
on_exit() { ON_EXIT+="$1;"; }
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
tmpfs() {
  mkdir -p "$TMP/$1"
  if mount -t tmpfs -o "size=$2" tmpfs "$TMP/$1" 2>"$TMP/mount.err"; then MNT+=("$TMP/$1"); return 0; fi
  echo "skipped: $1 tests: cannot mount a tmpfs ($(head -c 200 "$TMP/mount.err"))"; return 1
}
fill() { local avail; avail=$(df -B1 --output=avail "$1" | tail -n 1)
  fallocate -l $((avail - $2)) "$1/filler" 2>/dev/null || dd if=/dev/zero of="$1/filler" bs=4096 count=$(((avail - $2) / 4096)) 2>/dev/null; }
