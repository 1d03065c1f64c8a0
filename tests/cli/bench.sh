#!/usr/bin/env bash
# CLI tests of `simclr bench`: a tiny real run (JSON last line) and every bad option.
source "$(dirname "$0")/lib.sh"
export OMP_WAIT_POLICY=passive
small=(--width 0.125 --image-size 32 --batch-size 4 --steps 2 --warmup 1 --threads 2)
expect_ok "tiny resnet18 run" "$SIMCLR" bench "${small[@]}"
last=$(tail -n 1 "$TMP/out")
check "last line is JSON with views_per_s, ms_per_step, gflops, peak_rss_mb" \
  "$(/usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(all(k in d and d[k] > 0 for k in ("views_per_s","ms_per_step","gflops","peak_rss_mb")))' "$last" 2>/dev/null)" = True
check "loss is finite and near log(2N-1)" \
  "$(/usr/bin/python3 -c 'import json,sys,math; d=json.loads(sys.argv[1]); print(abs(d["loss"]-math.log(7)) < 1.5)' "$last" 2>/dev/null)" = True
check "JSON has the measured peak and the percentage of it" \
  "$(/usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["peak_gflops"] > 0 and abs(d["pct_of_peak"] * d["peak_gflops"] / 100 - d["gflops"]) <= 0.06 + 0.01 * d["gflops"] + 0.001 * d["peak_gflops"])' "$last" 2>/dev/null)" = True
expect_ok "--peak" "$SIMCLR" bench --peak --threads 1
check "--peak: fp32 > 0, bf16 > 0 exactly when the CPU has avx512_bf16" \
  "$(tail -n 1 "$TMP/out" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["fp32_gflops"] > 0 and (d["bf16_gflops"] > 0) == d["avx512_bf16"])' 2>/dev/null)" = True
expect_ok "same run with 1 thread" "$SIMCLR" bench "${small[@]}" --threads 1
l1=$(tail -n 1 "$TMP/out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["loss"])')
l2=$(echo "$last" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["loss"])')
check "same loss with 1 and 2 threads ($l1 $l2)" "$l1" = "$l2"
expect_ok "resnet50 cifar stem, 1 thread" "$SIMCLR" bench --arch resnet50 --stem cifar --width 0.0625 --image-size 8 --batch-size 2 --steps 1 --warmup 0 --threads 1
expect_ok "resnet34, head 3 with BN" "$SIMCLR" bench --arch resnet34 --width 0.0625 --image-size 32 --batch-size 2 --steps 1 --warmup 0 --head-layers 3 --head-bn
expect_ok "--precision fp32 accepted" "$SIMCLR" bench "${small[@]}" --precision fp32
expect_fail "unknown arch" "--arch: expected one of resnet18\|resnet34\|resnet50" "$SIMCLR" bench --arch resnet99
expect_fail "unknown stem" "--stem" "$SIMCLR" bench --stem tiny
expect_fail "batch size 0" "--batch-size" "$SIMCLR" bench --batch-size 0
expect_fail "negative image size" "--image-size: expected a positive size" "$SIMCLR" bench --image-size -5
expect_fail "image too small for the imagenet stem" "--image-size: 16 is too small" "$SIMCLR" bench --image-size 16
expect_fail "image too small for the cifar stem" "--image-size: 4 is too small" "$SIMCLR" bench --stem cifar --image-size 4
expect_fail "width 0" "--width" "$SIMCLR" bench --width 0
expect_fail "threads 0" "--threads" "$SIMCLR" bench --threads 0
expect_fail "steps 0" "--steps" "$SIMCLR" bench --steps 0
expect_fail "out dim 0" "--out-dim" "$SIMCLR" bench --out-dim 0
expect_fail "unknown precision" "--precision: expected one of fp32\\|bf16" "$SIMCLR" bench --precision fp16
expect_fail "bf16 where oneDNN may not use AVX512-BF16 (its fallback is slower: refused)" \
  "--precision: bf16 needs a CPU with AVX512-BF16" env ONEDNN_MAX_CPU_ISA=AVX512_CORE "$SIMCLR" bench "${small[@]}" --precision bf16
if "$SIMCLR" bench --peak --threads 1 | tail -n 1 | grep -q '"avx512_bf16": true'; then
  expect_ok "bf16 run" "$SIMCLR" bench "${small[@]}" --precision bf16
  b2=$(tail -n 1 "$TMP/out")
  expect_ok "bf16 run, 1 thread" "$SIMCLR" bench "${small[@]}" --precision bf16 --threads 1
  b1=$(tail -n 1 "$TMP/out")
  check "bf16: same loss with 1 and 2 threads, within 2% of fp32's, fewer bytes per view" \
    "$(/usr/bin/python3 -c 'import json,sys; a,b,f=(json.loads(x) for x in sys.argv[1:]); print(a["precision"]=="bf16" and a["loss"]==b["loss"] and abs(a["loss"]-f["loss"]) < 0.02*f["loss"] and a["bytes_per_view"] < 0.75*f["bytes_per_view"])' "$b2" "$b1" "$last" 2>/dev/null)" = True
else
  expect_fail "bf16 on this CPU without AVX512-BF16: refused" "--precision: bf16 needs" "$SIMCLR" bench "${small[@]}" --precision bf16
fi
expect_fail "not a number" "--batch-size" "$SIMCLR" bench --batch-size many
finish
