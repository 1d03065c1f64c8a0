#!/usr/bin/env bash
# CLI tests of `simclr export` (ONNX): the model is checked by onnx.checker (Debian's
# python3-onnx) and run with OpenCV's dnn module (python3-opencv) on real images (the fixture
# photo crops and Fashion-MNIST test images); its outputs must equal `simclr features` to 1e-4
# relative (tools/check_onnx.py). Trained briefly so BN running statistics are not the identity.
source "$(dirname "$0")/lib.sh"
export OMP_WAIT_POLICY=passive
PY=/usr/bin/python3
if ! $PY -c "import onnx, cv2, numpy" 2>/dev/null; then
  echo "FAIL python3-onnx / python3-opencv / python3-numpy are not installed (tools/deps.sh installs them)"
  echo "0 passed, 1 failed"; exit 1
fi
IM="$ROOT/tests/fixtures/data/images"
FM=(--dataset fashion-mnist --split train --limit 128 --batch-size 32 --max-steps 3 --epochs 1
    --threads 2 --loader-threads 1 --seed 3)
# ResNet-18, imagenet stem, 2-layer head, ImageNet normalisation (inside the graph)
expect_ok "pretrain a small ResNet-18 (imagenet stem, normalize imagenet)" "$SIMCLR" pretrain "${FM[@]}" \
  --arch resnet18 --width 0.125 --image-size 32 --normalize imagenet --out "$TMP/r18"
# ResNet-50 (bottleneck, downsample in layer1.0), cifar stem, 3-layer head with BatchNorm1d
expect_ok "pretrain a small ResNet-50 (cifar stem, BN head)" "$SIMCLR" pretrain "${FM[@]}" \
  --arch resnet50 --width 0.0625 --stem cifar --image-size 16 --head-layers 3 --head-bn --out "$TMP/r50"
expect_ok "images: photo crops + Fashion-MNIST, 32 px" $PY "$ROOT/tools/check_onnx.py" prepare "$TMP/i32.npy" 32 \
  "$IM/rgb.png" "$IM/rgb.jpg" "$IM/rgba.png" "$IM/palette.png" --fashion-mnist 6
expect_ok "images at 16 px" $PY "$ROOT/tools/check_onnx.py" prepare "$TMP/i16.npy" 16 \
  "$IM/rgb.png" "$IM/rgb.jpg" "$IM/rgba.png" "$IM/palette.png" --fashion-mnist 6
run_case() {  # name, run, layer, images, extra export args...
  local name=$1 run=$2 layer=$3 imgs=$4; shift 4
  expect_ok "$name: export --layer $layer" "$SIMCLR" export --checkpoint "$TMP/$run/last.safetensors" \
    --layer "$layer" --output "$TMP/$name.onnx" "$@"
  expect_ok "$name: simclr features" "$SIMCLR" features --checkpoint "$TMP/$run/last.safetensors" --layer "$layer" \
    --dataset npy --data "$TMP/$imgs" --threads 2 --output "$TMP/$name.feat.npy" "$@"
  expect_ok "$name: onnx.checker + OpenCV dnn equal features to 1e-4" $PY "$ROOT/tools/check_onnx.py" check \
    "$TMP/$name.onnx" "$TMP/$imgs" "$TMP/$name.feat.npy" "$layer"
  grep -E "onnx.checker|OpenCV|FAIL" "$TMP/out" | sed 's/^/    /'
}
run_case r18h r18 h i32.npy
run_case r18z r18 z i32.npy
run_case r50h r50 h i16.npy
run_case r50z r50 z i16.npy
# another input size than the training one: the network is fully convolutional
run_case r50h32 r50 h i32.npy --image-size 32
# the checker must be able to fail: the features without the normalisation differ
expect_ok "features without the normalisation" "$SIMCLR" features --checkpoint "$TMP/r18/last.safetensors" \
  --dataset npy --data "$TMP/i32.npy" --normalize none --threads 2 --output "$TMP/wrong.npy"
expect_fail "a mismatch is detected" "FAIL: relative error above" $PY "$ROOT/tools/check_onnx.py" check "$TMP/r18h.onnx" "$TMP/i32.npy" "$TMP/wrong.npy" h
# rewrite_header SRC DST plain|noarch: the checkpoint without its stored configuration (a plain
# state_dict), or with a stored configuration that lacks the architecture options
rewrite_header() { $PY - "$@" <<'PYEOF'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
if sys.argv[3] == "plain":
    h.pop("__metadata__")
else:
    cfg = json.loads(h["__metadata__"]["config"])
    for k in ("arch", "stem", "width", "image-size"):
        cfg.pop(k)
    h["__metadata__"]["config"] = json.dumps(cfg)
j = json.dumps(h, separators=(",", ":")).encode()
j += b" " * (-len(j) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(j)) + j + b[8 + n:])
PYEOF
}
# a plain state_dict: the architecture must be given
rewrite_header "$TMP/r18/last.safetensors" "$TMP/plain.safetensors" plain
expect_fail "plain state_dict without --arch" "no stored configuration.*--arch, --stem and --image-size" \
  "$SIMCLR" export --checkpoint "$TMP/plain.safetensors" --output "$TMP/x.onnx"
expect_ok "plain state_dict with the architecture" "$SIMCLR" export --checkpoint "$TMP/plain.safetensors" \
  --arch resnet18 --stem imagenet --width 0.125 --image-size 32 --normalize imagenet --output "$TMP/plain.onnx"
check "same model as from the simclr checkpoint" -z "$(cmp <(tail -c 100000 "$TMP/plain.onnx") <(tail -c 100000 "$TMP/r18h.onnx") 2>&1)"
# a stored configuration without the architecture options: refused in one line that names them
rewrite_header "$TMP/r18/last.safetensors" "$TMP/noarch.safetensors" noarch
expect_fail "stored configuration without the architecture" "noarch.safetensors: the stored configuration lacks the architecture options --arch, --stem, --width, --image-size" \
  "$SIMCLR" export --checkpoint "$TMP/noarch.safetensors" --output "$TMP/x.onnx"
check "... in one line" "$(wc -l <"$TMP/err")" -eq 1
expect_ok "... and given, it exports the same model" "$SIMCLR" export --checkpoint "$TMP/noarch.safetensors" \
  --arch resnet18 --stem imagenet --width 0.125 --image-size 32 --output "$TMP/noarch.onnx"
check "same model as from the simclr checkpoint" -z "$(cmp <(tail -c 100000 "$TMP/noarch.onnx") <(tail -c 100000 "$TMP/r18h.onnx") 2>&1)"
# bad input
expect_fail "missing --output" "--output is required" "$SIMCLR" export --checkpoint "$TMP/r18/last.safetensors"
expect_fail "missing checkpoint" "nope.safetensors" "$SIMCLR" export --checkpoint "$TMP/nope.safetensors" --output "$TMP/x.onnx"
expect_fail "image too small" "--image-size" "$SIMCLR" export --checkpoint "$TMP/r18/last.safetensors" --image-size 8 --output "$TMP/x.onnx"
expect_fail "unwritable output" "nodir/x.onnx" "$SIMCLR" export --checkpoint "$TMP/r18/last.safetensors" --output "$TMP/nodir/x.onnx"
check "nothing half-written" -z "$(ls "$TMP" | grep -E '^x\.onnx|tmp')"
finish
