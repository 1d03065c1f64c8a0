#!/usr/bin/env bash
# `make demo`: SimCLR on Fashion-MNIST from scratch, then the evaluation table.
#
#   tools/demo.sh            the full demo: pretrain on the 60k training images (about 12 minutes
#                            on 2 cores), evaluate on the 10k test images
#   tools/demo.sh --fast     a ~1-2 minute smoke run (4096 images, 1 epoch; CI)
#
# Rows: the SimCLR encoder's features, the same encoder at its random initialisation, PCA of the
# pixels, the raw pixels (each: linear eval on all training labels, linear eval on 1% of them,
# kNN), and two fine-tuned networks on the same 1% (simclr finetune: from the SimCLR encoder, and
# supervised from scratch). Every linear evaluation uses the same L2 penalty search.
# Prints one table and writes it, with the configuration and the training curves, to
# $RUN/results.md (RUN defaults to runs/demo, or runs/demo-fast). Settings can be changed with
# environment variables: SIMCLR_DEMO_RUN, SIMCLR_DEMO_EPOCHS, SIMCLR_DEMO_WIDTH, SIMCLR_DEMO_STEM,
# SIMCLR_DEMO_IMAGE_SIZE, SIMCLR_DEMO_PRECISION, SIMCLR_DEMO_BATCH, SIMCLR_DEMO_FT_EPOCHS,
# SIMCLR_DEMO_FT_LR, SIMCLR_THREADS; extra pretrain options go in SIMCLR_DEMO_ARGS, the linear
# and kNN evaluation's options in SIMCLR_DEMO_LINEAR_ARGS and SIMCLR_DEMO_KNN_ARGS.
# Needs only the simclr binary and the dataset-fashion-mnist package (tools/deps.sh); the raw
# pixel arrays for the baselines are written as .npy by perl (Debian's perl-base).
set -euo pipefail
cd "$(dirname "$0")/.."
FAST=${SIMCLR_DEMO_FAST:-0}
[ "${1:-}" = "--fast" ] && FAST=1
SIMCLR=${SIMCLR:-./simclr}
THREADS=${SIMCLR_THREADS:-$(nproc)}
# Two cores shared by the compute threads and the augmentation threads: threads that spin while
# waiting (libgomp's default) steal time from the loader.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
FM=${SIMCLR_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}

if [ "$FAST" = 1 ]; then
  RUN=${SIMCLR_DEMO_RUN:-runs/demo-fast}
  EPOCHS=${SIMCLR_DEMO_EPOCHS:-1}; LIMIT=4096; NTRAIN=5000; NTEST=1000
  FT_EPOCHS=${SIMCLR_DEMO_FT_EPOCHS:-3}; FT_BATCH=16
else
  RUN=${SIMCLR_DEMO_RUN:-runs/demo}
  EPOCHS=${SIMCLR_DEMO_EPOCHS:-28}; LIMIT=0; NTRAIN=60000; NTEST=10000
  FT_EPOCHS=${SIMCLR_DEMO_FT_EPOCHS:-60}; FT_BATCH=64
fi
WIDTH=${SIMCLR_DEMO_WIDTH:-0.5}
STEM=${SIMCLR_DEMO_STEM:-imagenet}
SIZE=${SIMCLR_DEMO_IMAGE_SIZE:-32}
# bf16 convolutions (fp32 accumulation) where the CPU has AVX512-BF16: 1.4x the steps per second
# at the same accuracy in the trials of doc/pretrain.md; fp32 elsewhere
if [ -z "${SIMCLR_DEMO_PRECISION:-}" ]; then
  if grep -qw avx512_bf16 /proc/cpuinfo 2>/dev/null; then SIMCLR_DEMO_PRECISION=bf16; else SIMCLR_DEMO_PRECISION=fp32; fi
fi
PRECISION=$SIMCLR_DEMO_PRECISION
FT_LR=${SIMCLR_DEMO_FT_LR:-0.05}
# Linear evaluation: the same L2 search for every row (penalties from strong to weak, each fit
# warm-started from the previous one, stopping after 2 penalties without a better held-out
# accuracy, then the refit); SIMCLR_DEMO_LINEAR_ARGS="--l2 1e-3" fixes the penalty instead.
read -r -a LINEAR <<<"${SIMCLR_DEMO_LINEAR_ARGS---max-iter 300 --patience 2}"
# kNN protocol of every row and of the pretraining monitor (doc/eval.md: --knn-norm)
read -r -a KNN <<<"${SIMCLR_DEMO_KNN_ARGS---knn-norm l2}"
BATCH=${SIMCLR_DEMO_BATCH:-256}

[ -x "$SIMCLR" ] || make -j2 simclr
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  [ -e "$FM/$f.gz" ] || [ -e "$FM/$f" ] || { echo "demo: $FM/$f(.gz) missing: install dataset-fashion-mnist (bash tools/deps.sh)" >&2; exit 1; }
done
mkdir -p "$RUN"
T0=$SECONDS
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# ---- 1. pretrain -----------------------------------------------------------------------------
# ResNet-18 at width 0.5 with the ImageNet stem on 32-px images (the 28-px images resized), bf16
# convolutions where the CPU has them: the settings that gave the best encoder within the 15-minute
# budget in the trials of doc/pretrain.md (the small-image stem at 28 px costs 4x as much per
# step). Adam with a larger lr than sthalles' 3e-4 for a short run, tau 0.2, no blur and milder
# crops/jitter for small grey images. 28 epochs (6552 steps, 12 minutes on 2 idle Zen 5
# cores): the full-split kNN of h rose from 82.2-82.4 (18 epochs) and 82.6 (22) to 82.8-82.9 over
# epochs 24-28, past PCA's 82.70; batch 512 for 28 epochs gave 82.5 (doc/pretrain.md).
PRE=(--dataset fashion-mnist --split train --arch resnet18 --stem "$STEM" --image-size "$SIZE"
     --width "$WIDTH" --precision "$PRECISION" --batch-size "$BATCH" --epochs "$EPOCHS"
     --optimizer adam --lr 3e-3 --weight-decay 1e-4 --temperature 0.2 --warmup-epochs 0.5
     --crop-min-scale 0.35 --jitter-strength 0.5 --blur-prob 0 --threads "$THREADS"
     --checkpoint-every 1 --eval-every 1 --eval-limit 5000 --save-init --seed 0 "${KNN[@]}")
[ "$LIMIT" -gt 0 ] && PRE+=(--limit "$LIMIT")
# shellcheck disable=SC2206
PRE+=(${SIMCLR_DEMO_ARGS:-})
RESUMED=
if [ -e "$RUN/last.safetensors" ] && [ -z "${SIMCLR_DEMO_FRESH:-}" ]; then
  log "pretrain: continuing the run in $RUN (SIMCLR_DEMO_FRESH=1 starts over)"
  RESUMED=1
  "$SIMCLR" pretrain --resume "$RUN" --threads "$THREADS"
else
  log "pretrain: $RUN"
  "$SIMCLR" pretrain --out "$RUN" --force "${PRE[@]}"
fi
T_PRE=$((SECONDS - T0))
# a resumed run's pretraining time is only that of this call
T_PRE_TEXT="$T_PRE s"
[ -n "${RESUMED:-}" ] && T_PRE_TEXT="$T_PRE s in this call, which resumed the run,"

# ---- 2. the images as .npy (raw pixel baselines, and the evaluation sets) --------------------
NPY="$RUN/data"
mkdir -p "$NPY"
# idx_to_npy IDX_FILE(.gz) OUT.npy COUNT: uint8 images (N,28,28) or labels (N,) as int64
idx_to_npy() {
  local src=$1 out=$2 count=$3
  { if [ -e "$src.gz" ]; then gzip -dc "$src.gz"; else cat "$src"; fi; } | perl -e '
    use strict; binmode STDIN; binmode STDOUT;
    my ($count) = @ARGV; local $/; my $d = <STDIN>;
    my ($magic) = unpack("N", substr($d, 0, 4));
    my $nd = $magic & 0xff; my @dims = unpack("N*", substr($d, 4, 4 * $nd));
    my $n = $dims[0] < $count ? $dims[0] : $count; $dims[0] = $n;
    my $off = 4 + 4 * $nd; my $per = 1; $per *= $_ for @dims[1..$#dims];
    my $body = substr($d, $off, $n * $per);
    my ($descr, $data);
    if ($nd == 1) { $descr = "<i8"; $data = pack("q<*", unpack("C*", $body)); }
    else { $descr = "|u1"; $data = $body; }
    my $shape = "(" . join(", ", @dims) . ($nd == 1 ? ",)" : ")");
    my $h = "{\x27descr\x27: \x27$descr\x27, \x27fortran_order\x27: False, \x27shape\x27: $shape, }";
    my $len = length($h) + 1; my $pad = (64 - (10 + $len) % 64) % 64;
    $h .= " " x $pad . "\n";
    print "\x93NUMPY\x01\x00", pack("v", length($h)), $h, $data;' "$count" > "$out.tmp"
  mv "$out.tmp" "$out"
}
idx_to_npy "$FM/train-images-idx3-ubyte" "$NPY/train_x.npy" "$NTRAIN"
idx_to_npy "$FM/train-labels-idx1-ubyte" "$NPY/train_y.npy" "$NTRAIN"
idx_to_npy "$FM/t10k-images-idx3-ubyte" "$NPY/test_x.npy" "$NTEST"
idx_to_npy "$FM/t10k-labels-idx1-ubyte" "$NPY/test_y.npy" "$NTEST"

# ---- 3. evaluation ---------------------------------------------------------------------------
EV="$RUN/eval"
mkdir -p "$EV"
# (no `| head` / `| grep -q` under pipefail: a reader that stops early kills the writer with
# SIGPIPE and fails the pipeline at random; awk and a captured string read everything)
top1() { sed -n 's/.*"top1": *\([0-9.eE+-]*\).*/\1/p' "$1" | awk 'NR == 1 { printf "%.2f", 100 * $1 }'; }
ROWS=()
# 1% of the training labels (class-balanced, seed 0): the subset simclr finetune draws, saved by
# the first fine-tuning run as subset.npy and used by every "1%" column
FT_DATA=(--dataset npy --data "$NPY/train_x.npy" --labels "$NPY/train_y.npy" --test-data "$NPY/test_x.npy"
         --test-labels "$NPY/test_y.npy" --label-fraction 0.01 --seed 0 --epochs "$FT_EPOCHS"
         --batch-size "$FT_BATCH" --lr "$FT_LR" --threads "$THREADS")
log "fine-tuning on 1% of the labels: from the SimCLR encoder"
"$SIMCLR" finetune "${FT_DATA[@]}" --checkpoint "$RUN/last.safetensors" --out "$RUN/ft-simclr" --force \
  --json "$EV/ft-simclr.json" >"$EV/ft-simclr.log" 2>&1
SUBSET="$RUN/ft-simclr/subset.npy"
log "fine-tuning on the same 1%: supervised from scratch"
"$SIMCLR" finetune "${FT_DATA[@]}" --random-init --arch resnet18 --stem "$STEM" --image-size "$SIZE" \
  --width "$WIDTH" --out "$RUN/ft-scratch" --force --json "$EV/ft-scratch.json" >"$EV/ft-scratch.log" 2>&1
cmp -s "$SUBSET" "$RUN/ft-scratch/subset.npy" || { echo "demo: the two fine-tuning runs drew different subsets" >&2; exit 1; }
NSUB=$(sed -n 's/.*"n_labels": *\([0-9]*\).*/\1/p' "$EV/ft-simclr.json")
evaluate() {  # name, train features, test features, tag
  local name=$1 ftr=$2 fte=$3 tag=$4
  "$SIMCLR" linear-eval --train-features "$ftr" --train-labels "$NPY/train_y.npy" \
    --test-features "$fte" --test-labels "$NPY/test_y.npy" --threads "$THREADS" "${LINEAR[@]}" \
    --json "$EV/$tag.linear.json" >"$EV/$tag.linear.log" 2>&1
  "$SIMCLR" linear-eval --train-features "$ftr" --train-labels "$NPY/train_y.npy" \
    --train-indices "$SUBSET" --test-features "$fte" --test-labels "$NPY/test_y.npy" \
    --threads "$THREADS" "${LINEAR[@]}" --json "$EV/$tag.linear1.json" >"$EV/$tag.linear1.log" 2>&1
  "$SIMCLR" knn-eval --train-features "$ftr" --train-labels "$NPY/train_y.npy" \
    --test-features "$fte" --test-labels "$NPY/test_y.npy" --threads "$THREADS" "${KNN[@]}" \
    --json "$EV/$tag.knn.json" >"$EV/$tag.knn.log" 2>&1
  ROWS+=("| $name | $(top1 "$EV/$tag.linear.json") | $(top1 "$EV/$tag.linear1.json") | $(top1 "$EV/$tag.knn.json") |")
  log "$name: linear $(top1 "$EV/$tag.linear.json")%, linear on 1% $(top1 "$EV/$tag.linear1.json")%, kNN $(top1 "$EV/$tag.knn.json")%"
}
features() {  # checkpoint, tag
  for split in train test; do
    "$SIMCLR" features --checkpoint "$1" --dataset npy --data "$NPY/${split}_x.npy" \
      --labels "$NPY/${split}_y.npy" --threads "$THREADS" --output "$EV/$2.$split.npy" >"$EV/$2.$split.log" 2>&1
  done
}
log "evaluation: features of the SimCLR encoder"
features "$RUN/last.safetensors" simclr
evaluate "SimCLR encoder (h)" "$EV/simclr.train.npy" "$EV/simclr.test.npy" simclr
log "evaluation: the same encoder at its random initialisation"
features "$RUN/init.safetensors" init
evaluate "same encoder, random init" "$EV/init.train.npy" "$EV/init.test.npy" init
log "evaluation: PCA of raw pixels (64 components, fitted on all training images)"
"$SIMCLR" pca-baseline --train-features "$NPY/train_x.npy" --train-labels "$NPY/train_y.npy" \
  --test-features "$NPY/test_x.npy" --test-labels "$NPY/test_y.npy" --components 64 \
  --threads "$THREADS" "${LINEAR[@]}" --train-output "$EV/pca.train.npy" --test-output "$EV/pca.test.npy" \
  >"$EV/pca.log" 2>&1
evaluate "PCA of raw pixels (64 components)" "$EV/pca.train.npy" "$EV/pca.test.npy" pca
log "evaluation: raw pixels"
evaluate "raw pixels" "$NPY/train_x.npy" "$NPY/test_x.npy" pixels
ROWS+=("| fine-tuned on 1% of the labels: from SimCLR | – | $(top1 "$EV/ft-simclr.json") | – |")
ROWS+=("| supervised from scratch on the same 1% | – | $(top1 "$EV/ft-scratch.json") | – |")
log "fine-tuned from SimCLR: $(top1 "$EV/ft-simclr.json")%; from scratch: $(top1 "$EV/ft-scratch.json")%"
"$SIMCLR" plot "$RUN" >/dev/null

# ---- 4. the table ------------------------------------------------------------------------------
CFG=$(tr -d '{}"' <"$RUN/config.json" | tr ',' '\n' | sed 's/^ *//' |
      grep -E '^(arch|width|stem|image-size|precision|batch-size|epochs|optimizer|lr|temperature|crop-min-scale|limit):' |
      tr '\n' ',' | sed 's/,$//; s/,/, /g')
STEPS=$(grep -c '"loss"' "$RUN/metrics.jsonl" || true)
VPS=$(sed -n 's/.*"views_per_s": \([0-9.]*\).*/\1/p' "$RUN/metrics.jsonl" | sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)] }')
{
  echo "# SimCLR on Fashion-MNIST$([ "$FAST" = 1 ] && echo " (fast smoke run)")"
  echo
  echo "Pretrained on $([ "$LIMIT" -gt 0 ] && echo "the first $LIMIT" || echo "the 60000") training images"\
       "($STEPS steps, median ${VPS:-?} views/s, $T_PRE_TEXT with $THREADS threads); evaluated on"\
       "$NTEST test images, classifiers fit on $NTRAIN training images. Top-1 accuracy in %."
  echo
  echo "| features | linear eval top-1 | linear eval, 1% of the labels ($NSUB images) | kNN top-1 |"
  echo "|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "Linear eval: multinomial logistic regression on standardised features, the L2 strength"
  echo "chosen on held-out training rows for every row and column (simclr linear-eval ${LINEAR[*]});"
  echo "the 1% column fits on the class-balanced subset simclr finetune drew (seed 0, --train-indices)."
  echo "Fine-tuning (simclr finetune, $FT_EPOCHS epochs, batch $FT_BATCH, SGD-Nesterov lr $FT_LR x $FT_BATCH/256, crop + flip): the"
  echo "whole network with a new linear classifier on that subset, from the SimCLR checkpoint or from"
  echo "random initialisation. kNN: k = 200, cosine similarity, temperature 0.1 (simclr knn-eval ${KNN[*]})."
  echo
  echo "Configuration: $CFG. Total time $((SECONDS - T0)) s."
  echo
  echo "![training curves](curves.png)"
} >"$RUN/results.md.tmp"
mv "$RUN/results.md.tmp" "$RUN/results.md"
echo
sed -n '/^| features/,/^$/p' "$RUN/results.md"
echo "written: $RUN/results.md, $RUN/curves.png ($((SECONDS - T0)) s in all)"
