#!/usr/bin/env bash
# bf16 side by side: `simclr bench` in fp32 and bf16, and PyTorch's channels-last twin in bf16
# autocast and fp32 (bench/pytorch_train_bench.py), alternated ROUNDS times so that all four see
# the same machine load. Prints views/s per round, the median of the per-round ratios (bf16 / our
# fp32, bf16 / PyTorch bf16 autocast, our fp32 / PyTorch fp32) and the same ratios of the least
# CPU time per step (robust on a machine shared with other jobs; run with
# OMP_WAIT_POLICY=passive so that waiting threads do not count).
#   bench/bench_bf16.sh [--rounds N] [simclr bench options...]
# Default: --arch resnet18 --image-size 96 --batch-size 64 --steps 10 --warmup 2 --threads 2.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3
source bench/train_args.sh
SIMCLR=${SIMCLR:-./simclr}
[ -x "$SIMCLR" ] || make -j2 simclr >/dev/null
log=$(mktemp -d); trap 'rm -rf "$log"' EXIT
for r in $(seq "$rounds"); do
  "$SIMCLR" bench "${args[@]}" --precision fp32 | tee -a "$log/f32" | tail -n 2 | sed -n 1p | sed 's/^/ours fp32:          /'
  "$SIMCLR" bench "${args[@]}" --precision bf16 | tee -a "$log/b16" | tail -n 2 | sed -n 1p | sed 's/^/ours bf16:          /'
  /usr/bin/python3 bench/pytorch_train_bench.py "${pyargs[@]}" --channels-last --bf16 | tee -a "$log/pb16" | tail -n 2 | sed -n 1p | sed 's/^/pytorch CL bf16:    /'
  /usr/bin/python3 bench/pytorch_train_bench.py "${pyargs[@]}" --channels-last | tee -a "$log/pf32" | tail -n 2 | sed -n 1p | sed 's/^/pytorch CL fp32:    /'
done
echo "settings: ${args[*]}  ($rounds alternating rounds)"
/usr/bin/python3 - "$log" <<'PY'
import json, statistics, sys
d = sys.argv[1]
runs = {k: [json.loads(l) for l in open(f"{d}/{k}") if l.startswith("{")] for k in ("f32", "b16", "pb16", "pf32")}
v = {k: [r["views_per_s"] for r in rs] for k, rs in runs.items()}
c = {k: min(r["cpu_ms_per_step"] for r in rs) for k, rs in runs.items()}
names = {"f32": "simclr fp32", "b16": "simclr bf16", "pb16": "pytorch CL bf16", "pf32": "pytorch CL fp32"}
for k in v:
    print(f"{names[k]:16s} views/s per round " + " ".join(f"{x:.1f}" for x in v[k]) +
          f"; least CPU time per step {c[k]:.0f} ms")
for k in ("f32", "b16"):
    pct = [r["pct_of_peak"] for r in runs[k]]
    print(f"{names[k]}: % of the peak measured beside each round " + " ".join(f"{x:.1f}" for x in pct) +
          f" (median {statistics.median(pct):.1f}); {runs[k][0]['gflops']:.0f} GFLOP/s in round 1; "
          f"bytes per view {runs[k][0]['bytes_per_view']:.0f}")
def ratio(a, b):
    return statistics.median(x / y for x, y in zip(v[a], v[b])), c[b] / c[a]
out = {}
for a, b in (("b16", "f32"), ("b16", "pb16"), ("f32", "pf32"), ("pb16", "pf32")):
    m, cr = ratio(a, b)
    out[f"{a}/{b}"] = [round(m, 3), round(cr, 3)]
    print(f"{names[a]} / {names[b]}: median of per-round views/s ratios {m:.2f}; CPU-time ratio {cr:.2f}")
print(json.dumps(out))
PY
