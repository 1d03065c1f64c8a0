#!/usr/bin/env bash
# Runs `simclr bench` and its PyTorch twin (bench/pytorch_train_bench.py) with the same settings,
# alternating them ROUNDS times so both see the same machine load, and prints the ratio
# ours / PyTorch for both PyTorch layouts (NCHW and channels-last): the median of the per-round
# ratios (each round's runs follow each other, so they share the machine's load) and the ratio of
# the best views/s of each. Both run with the same environment (OMP_* variables as given).
#   bench/bench_train.sh [--rounds N] [simclr bench options...]
# Default: --arch resnet18 --image-size 96 --batch-size 64 --steps 10 --warmup 2 --threads 2.
# Options understood by both: --arch --image-size --batch-size --steps --warmup --threads --stem.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=2
source bench/train_args.sh
[ -x ./simclr ] || make -j2 simclr >/dev/null
log=$(mktemp); trap 'rm -f "$log" "$log.ours" "$log.cl" "$log.nchw"' EXIT
for r in $(seq "$rounds"); do
  ./simclr bench "${args[@]}" | tee -a "$log.ours" | tail -n 2 | sed -n 1p | sed 's/^/ours:          /'
  /usr/bin/python3 bench/pytorch_train_bench.py "${pyargs[@]}" --channels-last | tee -a "$log.cl" | tail -n 2 | sed -n 1p | sed 's/^/pytorch CL:    /'
  /usr/bin/python3 bench/pytorch_train_bench.py "${pyargs[@]}" | tee -a "$log.nchw" | tail -n 2 | sed -n 1p | sed 's/^/pytorch NCHW:  /'
done
echo "settings: ${args[*]}  ($rounds alternating rounds)"
/usr/bin/python3 - "$log.ours" "$log.cl" "$log.nchw" <<'PY'
import json, statistics, sys
runs = [[json.loads(l)["views_per_s"] for l in open(f) if l.startswith("{")] for f in sys.argv[1:]]
cpus = [[json.loads(l).get("cpu_ms_per_step", 0) for l in open(f) if l.startswith("{")] for f in sys.argv[1:]]
o, cl, nc = runs
print("views/s per round: simclr " + " ".join(f"{v:.1f}" for v in o) + " | pytorch channels-last "
      + " ".join(f"{v:.1f}" for v in cl) + " | pytorch nchw " + " ".join(f"{v:.1f}" for v in nc))
rcl = statistics.median(a / b for a, b in zip(o, cl)); rnc = statistics.median(a / b for a, b in zip(o, nc))
print(f"best views/s: simclr {max(o):.1f}, pytorch channels-last {max(cl):.1f}, pytorch nchw {max(nc):.1f}")
print(f"ratio simclr/pytorch, median of rounds: {rcl:.2f} (channels-last), {rnc:.2f} (nchw); "
      f"of the best runs: {max(o)/max(cl):.2f}, {max(o)/max(nc):.2f}")
co, ccl, cnc = (min(c) for c in cpus)
if co > 0 and ccl > 0 and cnc > 0:
    print(f"CPU time per step (least of the rounds; insensitive to waiting for a core on a busy machine): "
          f"simclr {co:.0f} ms, pytorch channels-last {ccl:.0f} ms, nchw {cnc:.0f} ms -> ratio {ccl/co:.2f}, {cnc/co:.2f}")
print(json.dumps({"simclr_views_per_s": max(o), "pytorch_cl_views_per_s": max(cl), "pytorch_nchw_views_per_s": max(nc),
                  "ratio_vs_channels_last": round(rcl, 3), "ratio_vs_nchw": round(rnc, 3),
                  "ratio_best_vs_channels_last": round(max(o)/max(cl), 3), "ratio_best_vs_nchw": round(max(o)/max(nc), 3)}))
PY
rm -f "$log.ours" "$log.cl" "$log.nchw"
