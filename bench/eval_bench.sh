#!/usr/bin/env bash
# Evaluation speed next to scikit-learn on the same data, in one run, both on the same threads.
#   bash bench/eval_bench.sh            linear eval (5000 x 512 / 8000 x 512, penalty search),
#                                       kNN, PCA of 5000 x 27648 and the whole PCA baseline
#   BENCH_FULL=1 bash bench/eval_bench.sh   also sklearn's PCA(svd_solver='full') (minutes)
#   THREADS=2 (default: 2)
# Prints one line per task: ours, the reference, and the ratio reference/ours (> 1: we are faster).
set -eu
cd "$(dirname "$0")/.."
[ -x ./simclr ] || make -j2 simclr >/dev/null
PY=/usr/bin/python3
T=${THREADS:-2}
export OMP_NUM_THREADS=$T OPENBLAS_NUM_THREADS=$T MKL_NUM_THREADS=$T
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT
echo "generating inputs in $D ..."
$PY bench/sklearn_eval_bench.py gen "$D"
now() { date +%s.%N; }
field() { sed -n "s/.*\"$1\": \([-0-9.e+]*\).*/\1/p" "$2" | head -n 1; }
report() { # task ours_seconds ref_name ref_seconds extra
  awk -v t="$1" -v o="$2" -v n="$3" -v r="$4" -v e="$5" \
    'BEGIN { printf "%-34s ours %8.2fs   %-18s %8.2fs   ratio %6.2fx   %s\n", t, o, n, r, r / o, e }'; }
F="--train-features $D/feat_Xtr.npy --train-labels $D/feat_ytr.npy --test-features $D/feat_Xte.npy --test-labels $D/feat_yte.npy --threads $T"
P="--train-features $D/pix_Xtr.npy --train-labels $D/pix_ytr.npy --test-features $D/pix_Xte.npy --test-labels $D/pix_yte.npy --threads $T"

t0=$(now); ./simclr linear-eval $F --json "$D/le.json" >/dev/null; t1=$(now)
ours=$(echo "$t1 - $t0" | bc); s=$($PY bench/sklearn_eval_bench.py lr "$D")
report "linear eval 5000x512, 10-grid" "$ours" "sklearn lbfgs" "$(echo "$s" | awk '{print $2}')" \
  "top-1 ours $(field top1 "$D/le.json") sklearn $(echo "$s" | awk '{print $4}')"

t0=$(now); ./simclr knn-eval $F --json "$D/knn.json" >/dev/null; t1=$(now)
ours=$(echo "$t1 - $t0" | bc); s=$($PY bench/sklearn_eval_bench.py knn "$D")
report "kNN k=200 5000 -> 8000" "$ours" "numpy" "$(echo "$s" | awk '{print $2}')" \
  "top-1 ours $(field top1 "$D/knn.json") numpy $(echo "$s" | awk '{print $4}')"

t0=$(now); ./simclr pca-baseline $P --json "$D/pca.json" >/dev/null; t1=$(now)
ours_all=$(echo "$t1 - $t0" | bc); ours_pca=$(field pca_seconds "$D/pca.json")
s=$($PY bench/sklearn_eval_bench.py pca "$D")
report "PCA 256 of 5000x27648" "$ours_pca" "sklearn randomized" "$(echo "$s" | awk '{print $2}')" \
  "variance kept ours $(field pca_explained_variance_ratio_sum "$D/pca.json") sklearn $(echo "$s" | awk '{print $6}')"
report "  same, CPU seconds (all threads)" "$(field pca_cpu_seconds "$D/pca.json")" "sklearn randomized" "$(echo "$s" | awk '{print $12}')" ""
if [ "${BENCH_FULL:-0}" = 1 ]; then
  s=$($PY bench/sklearn_eval_bench.py pca "$D" full)
  report "PCA 256 of 5000x27648" "$ours_pca" "sklearn full" "$(echo "$s" | awk '{print $2}')" \
    "variance kept sklearn full $(echo "$s" | awk '{print $6}')"
fi
s=$($PY bench/sklearn_eval_bench.py pcalr "$D")
report "PCA baseline (PCA + linear eval)" "$ours_all" "sklearn" "$(echo "$s" | awk '{print $2}')" \
  "top-1 ours $(field top1 "$D/pca.json") sklearn $(echo "$s" | awk '{print $4}')"
