#!/usr/bin/env bash
# 2 processes x 1 thread against 1 process x 2 threads, the same global batch, rounds alternating
# (README "Multi-process speed"): ResNet-18, 96 px, global batch 32 (64 views). Prints per round
# the views/s and the CPU time per step (all processes), then the median ratio of views/s and the
# ratio of CPU time per step, with the load average at the start and the end. Then the gradient
# all-reduce alone (`simclr bench --network`: minimum and median of 20, both paths).
#   bash bench/mpi_scaling.sh [ROUNDS] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; steps=${2:-5}
S=${SIMCLR:-./simclr}
MPIRUN=(mpirun --oversubscribe)
[ "$(id -u)" = 0 ] && MPIRUN+=(--allow-run-as-root)
B=(bench --arch resnet18 --image-size 96 --batch-size 32 --steps "$steps" --warmup 2)
export OMP_WAIT_POLICY=passive
json() { tail -n 1 | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["views_per_s"], d["cpu_ms_per_step"])'; }
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
r1=(); r2=(); c1=(); c2=()
for r in $(seq "$rounds"); do
  read -r v c < <("$S" "${B[@]}" --threads 2 | json)
  r1+=("$v"); c1+=("$c")
  read -r v c < <("${MPIRUN[@]}" -np 2 "$S" "${B[@]}" --threads 1 | json)
  r2+=("$v"); c2+=("$c")
  echo "round $r: 1 x 2 threads ${r1[-1]} views/s (CPU ${c1[-1]} ms/step), 2 x 1 thread ${r2[-1]} views/s (CPU ${c2[-1]} ms/step, both processes)"
done
/usr/bin/python3 - "${r1[*]}" "${r2[*]}" "${c1[*]}" "${c2[*]}" <<'PY'
import statistics as s, sys
a, b, c, d = ([float(x) for x in v.split()] for v in sys.argv[1:5])
print("ratio 2 processes / 2 threads: views/s %.2f (median of rounds; per round %s), CPU time per step %.2f (least CPU time: %.0f vs %.0f ms)"
      % (s.median(y / x for x, y in zip(a, b)), ", ".join("%.2f" % (y / x) for x, y in zip(a, b)),
         min(c) / min(d), min(c), min(d)))
PY
"${MPIRUN[@]}" -np 2 "$S" bench --network --arch resnet18 --threads 1 --steps 20 | grep -v '^{'
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
