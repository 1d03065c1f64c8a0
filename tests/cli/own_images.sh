#!/usr/bin/env bash
# Folders with train/ test/ splits, classes matched by name, the features' row list, the refusal
# to test on training images, augment-preview's recipe / run / random sample, option help and
# suggestions. Small PNGs made here from Fashion-MNIST with augment-preview.
source "$(dirname "$0")/lib.sh"
S="$SIMCLR"
mkdir -p "$TMP/src"
for s in 1 2 3 4 5 6 7 8 9; do
  "$S" augment-preview --dataset fashion-mnist --split test --image-size 28 --images 1 --views 1 \
      --seed $s --output "$TMP/src/p$s.png" >/dev/null 2>&1
done
L="$TMP/lab"
mkdir -p "$L"/train/{a,b,c,empty} "$L"/test/{a,b}
cp "$TMP"/src/p{1,2}.png "$L/train/a/"; cp "$TMP"/src/p{3,4}.png "$L/train/b/"; cp "$TMP"/src/p5.png "$L/train/c/"
cp "$TMP"/src/p6.png "$L/test/a/"; cp "$TMP"/src/p7.png "$L/test/b/"; echo junk > "$L/test/b/broken.png"

expect_ok "pretrain on a folder with splits (train by default)" "$S" pretrain --dataset folder --data "$L" \
    --image-size 32 --width 0.125 --batch-size 2 --epochs 1 --threads 2 --out "$TMP/run" --eval-every 1
grep -q "folder train (5 images" "$TMP/out"; check "pretrain read the train split (5 images)" $? -eq 0
grep -q "empty class folder skipped" "$TMP/err"; check "empty class folder: a note" $? -eq 0
check "... once, though the kNN monitor opens the folder again" "$(grep -c 'empty class folder skipped' "$TMP/err")" -eq 1
CK="$TMP/run/last.safetensors"

expect_ok "features of the test split" "$S" features --checkpoint "$CK" --dataset folder --data "$L" \
    --split test --output "$TMP/f.npy" --labels-output "$TMP/y.npy"
check "row list beside the features" -s "$TMP/f.files.tsv"
check "class names beside the features" "$(tr '\n' ' ' < "$TMP/f.classes.txt")" = "a b c "
check "one line per row and the skipped file" "$(cut -f1,2,3 "$TMP/f.files.tsv" | tr '\t\n' ', ')" = "row,label,class 0,0,a 1,1,b skipped,1,b "
check "rows name their files" "$(sed -n 2p "$TMP/f.files.tsv" | cut -f4)" = "$L/test/a/p6.png"
grep -q "no images of class 'c'" "$TMP/err"; check "a class missing from the test split: a note" $? -eq 0

expect_ok "knn-eval: train and test splits of one folder" "$S" knn-eval --checkpoint "$CK" --dataset folder --data "$L" --knn-k 3
grep -q "(5 train, 2 test" "$TMP/out"; check "5 train and 2 test images" $? -eq 0
expect_ok "linear-eval: --data train/ --test-data test/ (no split options)" "$S" linear-eval --checkpoint "$CK" \
    --dataset folder --data "$L/train" --test-data "$L/test" --l2 0.01 --json "$TMP/le.json"
check "classes matched by name: 3 classes" -n "$(grep '"classes": 3' "$TMP/le.json")"
expect_fail "testing on the training images is refused" "test-on-train" "$S" knn-eval --checkpoint "$CK" \
    --dataset folder --data "$L/train"
expect_ok "... unless asked for" "$S" knn-eval --checkpoint "$CK" --dataset folder --data "$L/train" --test-on-train
mkdir -p "$TMP/other/zebra"; cp "$TMP/src/p8.png" "$TMP/other/zebra/"
expect_fail "a test class the training data lacks is an error" "class 'zebra'.*not among" "$S" knn-eval \
    --checkpoint "$CK" --dataset folder --data "$L/train" --test-data "$TMP/other"
mkdir -p "$L/val/zebra"; cp "$TMP/src/p9.png" "$L/val/zebra/"
expect_fail "a val class that train lacks is an error" "zebra.*no images in" "$S" features --checkpoint "$CK" \
    --dataset folder --data "$L" --split val --output "$TMP/v.npy"
check "no output after the failure" ! -e "$TMP/v.npy"
rm -rf "$L/val"
# npy_u8 FILE DESCR SHAPE BYTES: a .npy file (version 1.0) with the given dtype and shape, data from stdin
npy() { local h="{'descr': '$2', 'fortran_order': False, 'shape': $3, }"
  while [ $(( (10 + ${#h} + 1) % 64 )) -ne 0 ]; do h="$h "; done
  { printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $(( (${#h} + 1) % 256 )))\\x$(printf %02x $(( (${#h} + 1) / 256 )))"
    printf '%s\n' "$h"; cat; } > "$1"; }
head -c $((4 * 28 * 28)) /dev/urandom | npy "$TMP/imgs.npy" '|u1' '(4, 28, 28)'
printf '\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00' \
  | npy "$TMP/labs.npy" '<i8' '(4,)'
expect_ok "--test-dataset: test images of another kind (npy; class counts checked)" "$S" knn-eval \
    --checkpoint "$CK" --dataset folder --data "$L" --test-dataset npy --test-data "$TMP/imgs.npy" \
    --test-labels "$TMP/labs.npy" --knn-k 3
grep -q "(5 train, 4 test" "$TMP/out"; check "5 train and 4 npy test images" $? -eq 0
expect_ok "features of an npy dataset" "$S" features --checkpoint "$CK" --dataset npy --data "$TMP/imgs.npy" --output "$TMP/fn.npy"
check "features of an npy dataset name their records" -n "$(sed -n 2p "$TMP/fn.files.tsv" | grep 'imgs.npy:file:0')"
expect_fail "the default dataset is named when --dataset is forgotten" "Fashion-MNIST, the default --dataset.*--dataset folder" \
    "$S" features --checkpoint "$CK" --data "$L" --output "$TMP/x.npy"

# pretrain: the kNN monitor on its own labeled folder with splits; warnings
expect_ok "pretrain on a flat folder, kNN monitor on --eval-data with train/ and test/" "$S" pretrain \
    --dataset folder --data "$TMP/src" --eval-data "$L" --eval-every 1 --image-size 32 --width 0.125 \
    --batch-size 4 --epochs 1 --threads 2 --out "$TMP/run2"
grep -q "kNN top-1 .*(2 vs 5 images" "$TMP/err"; check "kNN monitor: 2 test images against 5 train images" $? -eq 0
expect_fail "the kNN monitor on its own voting images is refused" "score images against themselves" "$S" pretrain \
    --dataset folder --data "$L/train" --eval-every 1 --image-size 32 --width 0.125 --batch-size 2 \
    --epochs 1 --threads 2 --out "$TMP/run3"
expect_ok "batch of one image, warmup over most of the run" "$S" pretrain --dataset folder --data "$L" \
    --image-size 32 --width 0.125 --batch-size 1 --epochs 1 --warmup-epochs 0.6 --threads 2 --out "$TMP/run4"
grep -q "batch-size 1: every batch holds one image" "$TMP/err"; check "degenerate batches: a warning" $? -eq 0
grep -q "warmup (3 of 5 steps.*more than half" "$TMP/err"; check "warmup longer than half the run: a warning" $? -eq 0

# augment-preview shows what pretrain uses
expect_ok "augment-preview: the recipe's blur (sthalles: 1)" "$S" augment-preview --dataset folder --data "$L" \
    --image-size 32 --images 2 --output "$TMP/g.png"
grep -q "blur 1$" "$TMP/err"; check "default recipe blur p 1 as pretrain" $? -eq 0
expect_ok "augment-preview --recipe paper" "$S" augment-preview --dataset folder --data "$L" --recipe paper \
    --image-size 32 --images 2 --output "$TMP/g.png"
grep -q "strength 0.5, gray 0.2, blur 0$" "$TMP/err"; check "paper recipe at 32 px: jitter 0.5, no blur" $? -eq 0
expect_ok "augment-preview --from-run" "$S" augment-preview --from-run "$TMP/run" --images 2 --npy "$TMP/v1.npy" --output "$TMP/g.png"
grep -q "the run's augmentation, 32x32" "$TMP/err"; check "the run's image size" $? -eq 0
expect_ok "augment-preview --sample random" "$S" augment-preview --from-run "$TMP/run" --images 3 --sample random \
    --npy "$TMP/r1.npy" --output "$TMP/g.png"
cp "$TMP/err" "$TMP/rows1"
"$S" augment-preview --from-run "$TMP/run" --images 3 --sample random --npy "$TMP/r2.npy" --output "$TMP/g.png" 2>"$TMP/rows2"
check "random sample: the same rows and views for the same seed" "$(cmp "$TMP/r1.npy" "$TMP/r2.npy" && echo same)" = same
"$S" augment-preview --from-run "$TMP/run" --images 3 --sample random --seed 5 --output "$TMP/g.png" 2>"$TMP/rows3"
check "another seed picks other rows" "$(grep '^row' "$TMP/rows1" | md5sum)" != "$(grep '^row' "$TMP/rows3" | md5sum)"
expect_fail "--recipe with --from-run is refused" "exclude" "$S" augment-preview --from-run "$TMP/run" --recipe paper --output "$TMP/g.png"
expect_ok "upsampling warning" "$S" augment-preview --dataset folder --data "$L" --image-size 64 --images 1 --output "$TMP/g.png"
grep -q "larger than most images" "$TMP/err"; check "--image-size above the images' size: a warning" $? -eq 0

# options: -h, suggestions, aliases, resolved help
expect_ok "-h works" "$S" knn-eval -h
grep -q -- "--knn-k N.*also --k" "$TMP/out"; check "knn-eval: --knn-k as in pretrain (--k still accepted)" $? -eq 0
expect_fail "unknown option: the closest one is suggested" "did you mean --image-size" "$S" pretrain --image-szie 3
expect_ok "pretrain --recipe paper --help" "$S" pretrain --recipe paper --help
grep -Eq -- "--optimizer .*\[lars \*\]" "$TMP/out"; check "help shows the recipe's values" $? -eq 0
grep -Eq -- "--image-size .*\[28 \*\]" "$TMP/out"; check "help shows the image size from the data" $? -eq 0
finish
