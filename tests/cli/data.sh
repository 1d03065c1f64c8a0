#!/usr/bin/env bash
# CLI tests of the data module: `simclr augment-preview` on real photos (sklearn's china.jpg and
# flower.jpg) and on Fashion-MNIST, its outputs, and the errors of the dataset options.
source "$(dirname "$0")/lib.sh"
IMG=/usr/lib/python3/dist-packages/sklearn/datasets/images
mkdir -p "$TMP/photos" "$TMP/bad"
if [ -f "$IMG/china.jpg" ]; then cp "$IMG/china.jpg" "$IMG/flower.jpg" "$TMP/photos/"
else cp "$ROOT/tests/fixtures/data/images/rgb.jpg" "$TMP/photos/china.jpg"; cp "$ROOT/tests/fixtures/data/images/rgb.png" "$TMP/photos/flower.png"; fi
cp "$TMP"/photos/* "$TMP/bad/"; cp "$ROOT/tests/fixtures/data/images/broken.png" "$TMP/bad/"

png_wh() { od -An -tu1 -j16 -N8 "$1" | awk '{print $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8}'; }

expect_ok "preview of two photos" $SIMCLR augment-preview --dataset folder --data "$TMP/photos" \
  --images 2 --views 3 --image-size 64 --output "$TMP/grid.png" --npy "$TMP/v.npy" --seed 7
check "grid PNG is (2+1+3*66) x (2+2*66)" "$(png_wh "$TMP/grid.png")" = "266 134"
check "views npy has shape (2, 3, 64, 64, 3)" -n "$(head -c 128 "$TMP/v.npy" | tr -d "\\0" | grep -a "'shape': (2, 3, 64, 64, 3)")"
check "views npy holds 2*3*64*64*3 bytes + header" $(( $(stat -c %s "$TMP/v.npy") - 73728 )) -le 128
check "no temporary files left" -z "$(ls "$TMP" | grep tmp)"
expect_ok "same seed again" $SIMCLR augment-preview --dataset folder --data "$TMP/photos" \
  --images 2 --views 3 --image-size 64 --output "$TMP/grid2.png" --npy "$TMP/v2.npy" --seed 7
check "same seed, same views" -z "$(cmp "$TMP/v.npy" "$TMP/v2.npy" 2>&1)"
expect_ok "another seed" $SIMCLR augment-preview --dataset folder --data "$TMP/photos" \
  --images 2 --views 3 --image-size 64 --output "$TMP/grid3.png" --npy "$TMP/v3.npy" --seed 8
check "another seed, other views" -n "$(cmp "$TMP/v.npy" "$TMP/v3.npy" 2>&1)"
expect_ok "augment none" $SIMCLR augment-preview --dataset folder --data "$TMP/photos" --augment none \
  --images 1 --views 2 --image-size 32 --output "$TMP/n1.png" --npy "$TMP/n1.npy" --seed 1
expect_ok "augment none, other seed" $SIMCLR augment-preview --dataset folder --data "$TMP/photos" --augment none \
  --images 1 --views 2 --image-size 32 --output "$TMP/n2.png" --npy "$TMP/n2.npy" --seed 2
check "augment none ignores the seed" -z "$(cmp "$TMP/n1.npy" "$TMP/n2.npy" 2>&1)"
expect_ok "every op off but the crop, paper options" $SIMCLR augment-preview --dataset folder --data "$TMP/photos" \
  --images 2 --views 2 --image-size 48 --output "$TMP/o.png" --flip-prob 0 --jitter-prob 0 --gray-prob 0 \
  --blur-prob 1 --blur-sigma-min 0.5 --blur-sigma-max 0.5 --crop-min-scale 0.5 --crop-ratio-min 1 --crop-ratio-max 1
if [ -d /usr/share/datasets/fashion-mnist ]; then
  expect_ok "Fashion-MNIST preview" $SIMCLR augment-preview --dataset fashion-mnist --split test --images 4 \
    --views 2 --image-size 32 --output "$TMP/fm.png" --npy "$TMP/fm.npy" --blur-prob 0
  check "Fashion-MNIST grid is 104 x 138" "$(png_wh "$TMP/fm.png")" = "104 138"
  expect_fail "Fashion-MNIST bad split" "--split.*validation" $SIMCLR augment-preview --dataset fashion-mnist \
    --split validation --output "$TMP/x.png"
fi
expect_ok "STL-10 train+unlabeled preview" $SIMCLR augment-preview --dataset stl10 --data "$ROOT/tests/fixtures/data" \
  --split train+unlabeled --images 5 --views 1 --image-size 32 --output "$TMP/stl.png"
check "STL-10 describes the split" -n "$(grep 'stl10 train+unlabeled (5 images, 96x96x3' "$TMP/err")"
expect_fail "STL-10 fold of the test split" "--fold" $SIMCLR augment-preview --dataset stl10 \
  --data "$ROOT/tests/fixtures/data" --split test --fold 1 --output "$TMP/x.png"
expect_ok "broken file skipped" $SIMCLR augment-preview --dataset folder --data "$TMP/bad" --images 2 --views 1 \
  --image-size 32 --output "$TMP/b.png"
check "skip is reported" -n "$(grep 'broken.png' "$TMP/err")"
expect_fail "broken file fatal with --strict-images" "strict-images.*broken.png" $SIMCLR augment-preview \
  --dataset folder --data "$TMP/bad" --strict-images --output "$TMP/b2.png"
check "no output after a failure" ! -e "$TMP/b2.png"
expect_fail "missing --output" "--output" $SIMCLR augment-preview --dataset folder --data "$TMP/photos"
expect_fail "unknown dataset kind" "--dataset" $SIMCLR augment-preview --dataset imagenet --output "$TMP/x.png"
expect_fail "missing data folder" "nowhere" $SIMCLR augment-preview --dataset folder --data "$TMP/nowhere" --output "$TMP/x.png"
expect_fail "stl10 without files" "train_X.bin" $SIMCLR augment-preview --dataset stl10 --data "$TMP/photos" --output "$TMP/x.png"
expect_fail "probability out of range" "--flip-prob" $SIMCLR augment-preview --dataset folder --data "$TMP/photos" --flip-prob 1.5 --output "$TMP/x.png"
expect_fail "min scale above max" "--crop-min-scale" $SIMCLR augment-preview --dataset folder --data "$TMP/photos" \
  --crop-min-scale 0.9 --crop-max-scale 0.5 --output "$TMP/x.png"
expect_fail "unwritable output" "nodir/g.png" $SIMCLR augment-preview --dataset folder --data "$TMP/photos" --images 1 --output "$TMP/nodir/g.png"
expect_ok "help lists the augmentation options" $SIMCLR augment-preview --help
check "help mentions --crop-min-scale and --loader-threads" -n "$(grep -- '--crop-min-scale' "$TMP/out" | head -1)$(grep -- '--loader-threads' "$TMP/out" | head -1)"
expect_ok "bench mode" $SIMCLR augment-preview --dataset folder --data "$TMP/photos" --image-size 32 --bench 64 --loader-threads 2
check "bench prints views_per_s" -n "$(grep views_per_s "$TMP/out")"
finish
