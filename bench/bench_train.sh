#!/usr/bin/env bash
# Runs `simclr bench` and its PyTorch twin (bench/pytorch_train_bench.py) with the same settings,
# alternating them ROUNDS times so both see the same machine load, and prints the best views/s
# of each and the ratio ours / PyTorch for both PyTorch layouts (NCHW and channels-last).
#   bench/bench_train.sh [--rounds N] [simclr bench options...]
# Default: --arch resnet18 --image-size 96 --batch-size 64 --steps 10 --warmup 2 --threads 2.
# Options understood by both: --arch --image-size --batch-size --steps --warmup --threads --stem.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=2
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
[ ${#args[@]} -eq 0 ] && args=(--arch resnet18 --image-size 96 --batch-size 64 --steps 10 --warmup 2 --threads 2)
# options the PyTorch twin understands
pyargs=()
i=0
while [ $i -lt ${#args[@]} ]; do
  case "${args[$i]}" in
    --arch|--image-size|--batch-size|--steps|--warmup|--threads|--stem|--out-dim) pyargs+=("${args[$i]}" "${args[$((i+1))]}"); i=$((i+2)) ;;
    *) i=$((i+1)) ;;
  esac
done
[ -x ./simclr ] || make -j2 simclr >/dev/null
export OMP_WAIT_POLICY=passive
best() { /usr/bin/python3 -c 'import json,sys; v=[json.loads(l)["views_per_s"] for l in sys.stdin if l.startswith("{")]; print(max(v))'; }
log=$(mktemp); trap 'rm -f "$log"' EXIT
for r in $(seq "$rounds"); do
  ./simclr bench "${args[@]}" | tee -a "$log.ours" | tail -n 2 | head -n 1 | sed 's/^/ours:          /'
  /usr/bin/python3 bench/pytorch_train_bench.py "${pyargs[@]}" --channels-last | tee -a "$log.cl" | tail -n 2 | head -n 1 | sed 's/^/pytorch CL:    /'
  /usr/bin/python3 bench/pytorch_train_bench.py "${pyargs[@]}" | tee -a "$log.nchw" | tail -n 2 | head -n 1 | sed 's/^/pytorch NCHW:  /'
done
ours=$(best < "$log.ours"); cl=$(best < "$log.cl"); nchw=$(best < "$log.nchw")
rm -f "$log.ours" "$log.cl" "$log.nchw"
echo "settings: ${args[*]}  (best of $rounds alternating rounds)"
/usr/bin/python3 - "$ours" "$cl" "$nchw" <<'PY'
import json, sys
o, cl, nc = map(float, sys.argv[1:])
print(f"views/s: simclr {o:.1f}, pytorch channels-last {cl:.1f}, pytorch nchw {nc:.1f}")
print(f"ratio simclr/pytorch: {o/cl:.2f} (channels-last), {o/nc:.2f} (nchw)")
print(json.dumps({"simclr_views_per_s": o, "pytorch_cl_views_per_s": cl, "pytorch_nchw_views_per_s": nc,
                  "ratio_vs_channels_last": round(o/cl, 3), "ratio_vs_nchw": round(o/nc, 3)}))
PY
