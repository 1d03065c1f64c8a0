#!/usr/bin/env bash
# tools/ablate.sh: a grid of short pretrainings, one table and one plot (kNN and linear top-1
# per setting). Resumable: run it again after an interruption and it continues the unfinished
# run and skips the finished ones.
#
#   tools/ablate.sh --out runs/ablate --grid "loss=ntxent,nt-logistic,margin-triplet similarity=cosine,dot" \
#       [--eval "linear-eval options"] -- PRETRAIN OPTIONS...
#
# --grid: space-separated axes "option=v1,v2,..."; every combination is one pretraining
#         (`simclr pretrain --out OUT/<name> PRETRAIN OPTIONS --option v ...`), with the kNN
#         monitor (--eval-every 1 unless the pretrain options set it). Any pretrain option can be
#         an axis: loss, similarity, temperature, batch-size, head-layers, out-dim, blur-prob,
#         gray-prob, jitter-prob, crop-min-scale, ...
# --eval: options of the linear evaluation of each run's encoder (`simclr linear-eval
#         --checkpoint OUT/<name>/last.safetensors EVAL`); default: the --dataset and --data of
#         the pretrain options (train split against the test split). Give --layer z to evaluate
#         the projection instead of h. --no-linear skips it (kNN only).
# Output: OUT/results.md (one row per setting: the grid values, final loss, contrastive top-1,
#         kNN top-1 of the last evaluation, linear top-1), OUT/results.tsv and OUT/results.png
#         (`simclr plot --table`).
set -euo pipefail
cd "$(dirname "$0")/.."
SIMCLR=${SIMCLR:-./simclr}
OUT="" GRID="" EVAL="" LINEAR=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --grid) GRID=$2; shift 2 ;;
    --eval) EVAL=$2; shift 2 ;;
    --no-linear) LINEAR=0; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "ablate: unknown argument '$1' (see --help)" >&2; exit 1 ;;
  esac
done
PRE=("$@")
[ -n "$OUT" ] || { echo "ablate: error: --out: give the folder of the grid" >&2; exit 1; }
[ -n "$GRID" ] || { echo "ablate: error: --grid: give at least one axis 'option=v1,v2'" >&2; exit 1; }
[ -x "$SIMCLR" ] || make -j2 simclr >/dev/null
mkdir -p "$OUT"

# the combinations: one line per setting, "opt=v opt=v ..."
combos=("")
for axis in $GRID; do
  case "$axis" in *=*) ;; *) echo "ablate: error: --grid: '$axis' is not option=v1,v2" >&2; exit 1 ;; esac
  name=${axis%%=*}; IFS=',' read -r -a vals <<<"${axis#*=}"
  [ ${#vals[@]} -gt 0 ] || { echo "ablate: error: --grid: no values for '$name'" >&2; exit 1; }
  next=()
  for c in "${combos[@]}"; do for v in "${vals[@]}"; do next+=("${c:+$c }$name=$v"); done; done
  combos=("${next[@]}")
done

# linear-eval inputs: the pretrain dataset unless --eval is given
if [ -z "$EVAL" ]; then
  for ((i = 0; i < ${#PRE[@]}; i++)); do
    case "${PRE[$i]}" in
      --dataset|--data|--labels) EVAL+=" ${PRE[$i]} ${PRE[$((i + 1))]}" ;;
      --dataset=*|--data=*|--labels=*) EVAL+=" ${PRE[$i]}" ;;
    esac
  done
fi
has_eval_every=0
for a in "${PRE[@]}"; do case "$a" in --eval-every|--eval-every=*) has_eval_every=1 ;; esac; done

num() { sed -n "s/.*\"$1\": *\([-0-9.eE+]*\).*/\1/p" "$2" | tail -n 1; }
pct() { awk -v v="$1" 'BEGIN { if (v == "") print "-"; else printf "%.2f", 100 * v }'; }
TSV="$OUT/results.tsv.tmp"; MD="$OUT/results.md.tmp"
header="| setting |"; rule="|---|"
for axis in $GRID; do header+=" ${axis%%=*} |"; rule+="---|"; done
{ echo "# Ablation grid ($(date -u +%Y-%m-%d))"; echo
  echo "Common pretrain options: \`${PRE[*]}\`"; echo
  echo "$header final loss | contrastive top-1 | kNN top-1 | linear top-1 |"
  echo "$rule---|---|---|---|"; } >"$MD"
: >"$TSV"
row=0
for c in "${combos[@]}"; do
  row=$((row + 1))
  name=$(echo "$c" | tr ' =' '_-' | tr -cd 'A-Za-z0-9._-')
  dir="$OUT/$name"
  args=()
  for kv in $c; do args+=("--${kv%%=*}" "${kv#*=}"); done
  [ "$has_eval_every" = 1 ] || args+=(--eval-every 1)
  if [ -e "$dir/done" ]; then
    echo "[$row/${#combos[@]}] $c: done"
  elif [ -e "$dir/last.safetensors" ]; then
    echo "[$row/${#combos[@]}] $c: resuming"
    "$SIMCLR" pretrain --resume "$dir" >"$dir/pretrain.log" 2>&1 || { echo "ablate: $c failed, see $dir/pretrain.log" >&2; tail -n 3 "$dir/pretrain.log" >&2; exit 1; }
    touch "$dir/done"
  else
    echo "[$row/${#combos[@]}] $c: pretraining"
    mkdir -p "$dir"
    "$SIMCLR" pretrain --out "$dir" --force "${PRE[@]}" "${args[@]}" >"$dir/pretrain.log" 2>&1 || { echo "ablate: $c failed, see $dir/pretrain.log" >&2; tail -n 3 "$dir/pretrain.log" >&2; exit 1; }
    touch "$dir/done"
  fi
  if [ "$LINEAR" = 1 ] && [ ! -e "$dir/linear.json" ]; then
    # shellcheck disable=SC2086
    "$SIMCLR" linear-eval --checkpoint "$dir/last.safetensors" $EVAL --json "$dir/linear.json" >"$dir/linear.log" 2>&1 ||
      { echo "ablate: linear eval of $c failed, see $dir/linear.log" >&2; tail -n 3 "$dir/linear.log" >&2; exit 1; }
  fi
  loss=$(num loss "$dir/metrics.jsonl"); acc=$(num acc_top1 "$dir/metrics.jsonl")
  knn=$(pct "$(num knn_top1 "$dir/metrics.jsonl")")
  lin="-"; [ -e "$dir/linear.json" ] && lin=$(pct "$(num top1 "$dir/linear.json")")
  line="| $row |"; for kv in $c; do line+=" ${kv#*=} |"; done
  echo "$line $(awk -v v="$loss" 'BEGIN { printf "%.4f", v }') | $(pct "$acc") | $knn | $lin |" >>"$MD"
  printf '%s\t%s\t%s\n' "$c" "$knn" "$lin" >>"$TSV"
done
{ echo; echo "kNN: the pretrain monitor's last evaluation (k 200, t 0.1). Linear: simclr linear-eval $EVAL"\
       "(logistic regression, L2 strength chosen on held-out train rows). Plot: results.png."; } >>"$MD"
mv "$TSV" "$OUT/results.tsv"; mv "$MD" "$OUT/results.md"
"$SIMCLR" plot --table "$OUT/results.tsv" --output "$OUT/results.png" --title "ablation: top-1 per setting" >/dev/null
cat "$OUT/results.md"
echo "written: $OUT/results.md, $OUT/results.png"
