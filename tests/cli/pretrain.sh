#!/usr/bin/env bash
# CLI tests of `simclr pretrain` and `simclr plot` on a tiny configuration (ResNet-18 at width
# 0.125, 16 px, the first 256 Fashion-MNIST images; a run takes about a second).
source "$(dirname "$0")/lib.sh"
export OMP_WAIT_POLICY=passive   # 2 shared cores: spinning OpenMP threads starve the loader
FM=/usr/share/datasets/fashion-mnist
if [ ! -e "$FM/train-images-idx3-ubyte.gz" ] && [ ! -e "$FM/train-images-idx3-ubyte" ]; then
  echo "FAIL dataset-fashion-mnist is not installed (tools/deps.sh installs it)"; echo "0 passed, 1 failed"; exit 1
fi
T=(--arch resnet18 --width 0.125 --stem cifar --image-size 16 --limit 256 --batch-size 32
   --epochs 3 --seed 7 --threads 2 --loader-threads 1 --checkpoint-every 1)
strip() { sed 's/, "views_per_s.*//' "$1"; }   # everything but the timing
same_metrics() { diff <(strip "$1") <(strip "$2") >"$TMP/diff" 2>&1; }
tensors() { local n; n=$(od -An -tu8 -N8 "$1" | tr -d ' '); tail -c +$((9 + n)) "$1"; }  # data after the header

# ---- a complete run ----
expect_ok "tiny run" "$SIMCLR" pretrain --out "$TMP/a" "${T[@]}" --eval-every 1 --eval-limit 300
cp "$TMP/out" "$TMP/a.out"
check "config printed" -n "$(grep -E '^  optimizer +adam' "$TMP/a.out")"
check "config.json saved" -n "$(grep '"temperature": 0.07' "$TMP/a/config.json")"
for f in last.safetensors epoch_0001.safetensors epoch_0003.safetensors metrics.jsonl curves.png; do
  check "run folder has $f" -s "$TMP/a/$f"
done
check "24 step lines" "$(grep -c '"loss"' "$TMP/a/metrics.jsonl")" -eq 24
check "3 kNN lines" "$(grep -c '"knn_top1"' "$TMP/a/metrics.jsonl")" -eq 3
check "metrics fields" -n "$(grep '"step": 1, "epoch": 0, "loss": [0-9.]*, "acc_top1": [0-9.e-]*, "acc_top5": [0-9.e-]*, "lr": [0-9.e-]*, "views_per_s"' "$TMP/a/metrics.jsonl")"
check "finite losses" -z "$(grep -E 'null|nan|inf' "$TMP/a/metrics.jsonl")"
check "PNG written" "$(head -c 8 "$TMP/a/curves.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a"

# ---- run folder guard ----
expect_fail "existing run refused" "holds another run.*--resume.*--force" "$SIMCLR" pretrain --out "$TMP/a" "${T[@]}"
check "refused run left the files" -s "$TMP/a/epoch_0003.safetensors"
expect_ok "--force overwrites" "$SIMCLR" pretrain --out "$TMP/f" "${T[@]}" --epochs 1
expect_ok "--force overwrites (2)" "$SIMCLR" pretrain --out "$TMP/f" "${T[@]}" --epochs 1 --force

# ---- resume gives the same losses, step for step ----
expect_ok "uninterrupted" "$SIMCLR" pretrain --out "$TMP/u" "${T[@]}"
expect_ok "stopped after step 5" "$SIMCLR" pretrain --out "$TMP/s" "${T[@]}" --stop-after-steps 5
check "5 lines before resume" "$(grep -c '"loss"' "$TMP/s/metrics.jsonl")" -eq 5
expect_ok "resume (with another thread count)" "$SIMCLR" pretrain --resume "$TMP/s" --threads 1
check "resume prints position" -n "$(grep 'resuming .* at step 5 (epoch 0, batch 5)' "$TMP/out")"
same_metrics "$TMP/u/metrics.jsonl" "$TMP/s/metrics.jsonl"; check "stop + resume == uninterrupted" $? -eq 0
cmp -s <(tensors "$TMP/u/last.safetensors") <(tensors "$TMP/s/last.safetensors"); check "final checkpoint tensors identical" $? -eq 0
check "saved configuration restored" -n "$(head -c 8000 "$TMP/s/last.safetensors" | tr -d '\0' | grep -aF 'checkpoint-every\": 1,')"
expect_ok "resume of a finished run" "$SIMCLR" pretrain --resume "$TMP/s"

# ---- a failure mid-epoch (NaN loss): last good checkpoint kept, resume continues exactly ----
expect_fail "NaN loss stops the run" "loss is NaN at step 12.*last good checkpoint" \
  "$SIMCLR" pretrain --out "$TMP/n" "${T[@]}" --debug-nan-at-step 11
check "NaN run kept the epoch-1 checkpoint" -s "$TMP/n/epoch_0001.safetensors"
check "no checkpoint after the NaN" ! -e "$TMP/n/epoch_0002.safetensors"
expect_ok "resume after the failure" "$SIMCLR" pretrain --resume "$TMP/n"
same_metrics "$TMP/u/metrics.jsonl" "$TMP/n/metrics.jsonl"; check "failure + resume == uninterrupted" $? -eq 0

# ---- kill -9 during a run, then resume ----
K=("${T[@]}" --epochs 8 --limit 512)
expect_ok "uninterrupted (long)" "$SIMCLR" pretrain --out "$TMP/ku" "${K[@]}"
"$SIMCLR" pretrain --out "$TMP/k" "${K[@]}" >"$TMP/k.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  n=$(grep -c '"loss"' "$TMP/k/metrics.jsonl" 2>/dev/null); [ "${n:-0}" -ge 40 ] && break
  kill -0 $pid 2>/dev/null || break; sleep 0.02
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
echo "  (killed after $(grep -c '"loss"' "$TMP/k/metrics.jsonl") step lines)"
expect_ok "resume after kill -9" "$SIMCLR" pretrain --resume "$TMP/k"
same_metrics "$TMP/ku/metrics.jsonl" "$TMP/k/metrics.jsonl"; check "kill -9 + resume == uninterrupted" $? -eq 0
check "no temporary files left" -z "$(ls "$TMP/k" | grep tmp)"

# ---- Ctrl-C: the step finishes, last.safetensors is saved, exit status 130, resume continues ----
"$SIMCLR" pretrain --out "$TMP/sig" "${K[@]}" >"$TMP/sig.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  n=$(grep -c '"loss"' "$TMP/sig/metrics.jsonl" 2>/dev/null); [ "${n:-0}" -ge 20 ] && break
  kill -0 $pid 2>/dev/null || break; sleep 0.02
done
kill -INT $pid 2>/dev/null; wait $pid; rc=$?
check "SIGINT exits 130 (or the run had finished)" $rc -eq 130 -o $rc -eq 0
expect_ok "resume after SIGINT" "$SIMCLR" pretrain --resume "$TMP/sig"
same_metrics "$TMP/ku/metrics.jsonl" "$TMP/sig/metrics.jsonl"; check "SIGINT + resume == uninterrupted" $? -eq 0

# ---- bad input ----
expect_fail "batch larger than dataset" "batch-size 512 is larger than the dataset \(256 images" \
  "$SIMCLR" pretrain --out "$TMP/b" "${T[@]}" --batch-size 512
expect_fail "resume without a run" "no last.safetensors" "$SIMCLR" pretrain --resume "$TMP/none"
expect_fail "no --out" "give --out" "$SIMCLR" pretrain "${T[@]}"
expect_fail "missing data" "no-such-dir" "$SIMCLR" pretrain --out "$TMP/m" --dataset idx --data "$TMP/no-such-dir" --batch-size 8
cp -r "$TMP/u" "$TMP/c"
head -c 50000 "$TMP/u/last.safetensors" >"$TMP/c/last.safetensors"
cp "$TMP/c/last.safetensors" "$TMP/c.keep"
expect_fail "corrupt checkpoint refused" "last.safetensors" "$SIMCLR" pretrain --resume "$TMP/c"
cmp -s "$TMP/c/last.safetensors" "$TMP/c.keep"; check "corrupt file left as it was" $? -eq 0
expect_fail "--init from another architecture" "resnet34.*resnet18|resnet18.*resnet34" \
  "$SIMCLR" pretrain --out "$TMP/i" "${T[@]}" --arch resnet34 --init "$TMP/u/last.safetensors"
expect_ok "--init from a checkpoint" "$SIMCLR" pretrain --out "$TMP/i2" "${T[@]}" --epochs 1 --init "$TMP/u/last.safetensors"
expect_fail "unknown option" "unknown option" "$SIMCLR" pretrain --out "$TMP/x" --no-such-option 1

# ---- recipes ----
expect_ok "recipe paper" "$SIMCLR" pretrain --out "$TMP/p" --recipe paper --arch resnet18 --width 0.125 --image-size 16 --limit 256 --batch-size 32 --epochs 1 --save-init
check "paper: lars" -n "$(grep '"optimizer": "lars"' "$TMP/p/config.json")"
check "paper: tau 0.5 for small images" -n "$(grep '"temperature": 0.5' "$TMP/p/config.json")"
check "paper: cifar stem, no blur" -n "$(grep '"stem": "cifar"' "$TMP/p/config.json" | grep '"blur-prob": 0,')"
check "paper: linear lr scaling" -n "$(grep '"lr-scaling": "linear"' "$TMP/p/config.json")"
check "--save-init" -s "$TMP/p/init.safetensors"
expect_ok "recipe + explicit option" "$SIMCLR" pretrain --out "$TMP/p2" --recipe paper --optimizer adam --arch resnet18 --width 0.125 --image-size 16 --limit 256 --batch-size 32 --epochs 1
check "explicit --optimizer wins" -n "$(grep '"optimizer": "adam"' "$TMP/p2/config.json" | grep '"temperature": 0.5')"

# ---- precision ----
expect_fail "--precision fp16 refused" "--precision: expected one of" "$SIMCLR" pretrain --out "$TMP/x16" "${T[@]}" --precision fp16
if "$SIMCLR" bench --peak --threads 1 | tail -n 1 | grep -q '"avx512_bf16": true'; then
  B16=(--arch resnet18 --width 0.125 --stem cifar --image-size 16 --limit 128 --batch-size 32
       --epochs 2 --seed 7 --threads 2 --loader-threads 1 --precision bf16)
  expect_ok "bf16 run" "$SIMCLR" pretrain --out "$TMP/b" "${B16[@]}"
  check "bf16 in the saved configuration" -n "$(grep '"precision": "bf16"' "$TMP/b/config.json")"
  expect_ok "bf16 run stopped after 3 steps" "$SIMCLR" pretrain --out "$TMP/bs" "${B16[@]}" --stop-after-steps 3
  expect_ok "bf16 resume (1 thread; precision from the saved run)" "$SIMCLR" pretrain --resume "$TMP/bs" --threads 1
  check "bf16 resumed run = uninterrupted run, step for step" "$(strip "$TMP/b/metrics.jsonl" | md5sum)" = "$(strip "$TMP/bs/metrics.jsonl" | md5sum)"
  expect_ok "features of the bf16-trained encoder in fp32" "$SIMCLR" features --checkpoint "$TMP/b/last.safetensors" \
    --dataset fashion-mnist --split test --output "$TMP/b32.npy" --precision fp32
  expect_ok "and in bf16" "$SIMCLR" features --checkpoint "$TMP/b/last.safetensors" \
    --dataset fashion-mnist --split test --output "$TMP/b16.npy" --precision bf16
  check "fp32 and bf16 features agree to bf16 accuracy" "$(/usr/bin/python3 -c '
import array, struct, sys
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<H", b[8:10])[0]; a = array.array("f"); a.frombytes(b[10 + n:]); return a
a, b = load(sys.argv[1]), load(sys.argv[2])
print(len(a) == len(b) > 0 and sum((x - y) ** 2 for x, y in zip(a, b)) < 0.05 ** 2 * sum(x * x for x in a))' "$TMP/b32.npy" "$TMP/b16.npy")" = True
fi
# --help shows the values a run uses (the recipe applied), not the tables' initial values
"$SIMCLR" pretrain --help >"$TMP/help1" 2>&1
check "--help: sthalles blur 1" -n "$(grep -E -- '--blur-prob .*\[1( \*)?\]$' "$TMP/help1")"
"$SIMCLR" pretrain --recipe paper --dataset cifar10 --help >"$TMP/help2" 2>&1
check "--help: paper at 32 px: lr 1, batch 512, head-bn all, lars" -n "$(grep -E -- '--lr .*\[1( \*)?\]$' "$TMP/help2")" -a \
  -n "$(grep -E -- '--batch-size .*\[512( \*)?\]$' "$TMP/help2")" -a -n "$(grep -E -- '--head-bn .*\[all( \*)?\]$' "$TMP/help2")" -a \
  -n "$(grep -E -- '--optimizer .*\[lars( \*)?\]$' "$TMP/help2")"
"$SIMCLR" pretrain --recipe blog --dataset stl10 --help >"$TMP/help3" 2>&1
check "--help: blog on STL-10: train+unlabeled, out-dim 64" -n "$(grep -E -- '--split .*\[train\+unlabeled( \*)?\]$' "$TMP/help3")" -a \
  -n "$(grep -E -- '--out-dim .*\[64( \*)?\]$' "$TMP/help3")"
check "paper run: google head in the checkpoint" -n "$(grep '"head-bn": "all"' "$TMP/p/config.json")"

# ---- plot ----
expect_ok "plot" "$SIMCLR" plot "$TMP/a" --output "$TMP/a.png"
check "plot PNG" -s "$TMP/a.png"
expect_fail "plot of nothing" "no such run folder" "$SIMCLR" plot "$TMP/nothing"
finish
