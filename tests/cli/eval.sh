#!/usr/bin/env bash
# CLI tests of the evaluation commands: linear-eval, knn-eval, pca-baseline, features.
source "$(dirname "$0")/lib.sh"
F="$ROOT/tests/fixtures/eval"
export OMP_WAIT_POLICY=passive
DIG="--train-features $F/digits_Xtr.npy --train-labels $F/digits_ytr.npy --test-features $F/digits_Xte.npy --test-labels $F/digits_yte.npy"
json_num() { sed -n "s/.*\"$1\": \([-0-9.e+]*\).*/\1/p" "$2" | head -n 1; }

ONE='\x00\x00\x80\x3f'; TWO='\x00\x00\x00\x40'; NAN='\x00\x00\xc0\x7f'
L0='\x00\x00\x00\x00\x00\x00\x00\x00'; L1='\x01\x00\x00\x00\x00\x00\x00\x00'
L5='\x05\x00\x00\x00\x00\x00\x00\x00'; LM='\xff\xff\xff\xff\xff\xff\xff\xff'
npy "$TMP/x.npy" '<f4' '(3, 2)' "$ONE$TWO$TWO$ONE$ONE$ONE"
npy "$TMP/xnan.npy" '<f4' '(3, 2)' "$ONE$TWO$NAN$ONE$ONE$ONE"
npy "$TMP/y.npy" '<i8' '(3,)' "$L0$L1$L0"
npy "$TMP/yneg.npy" '<i8' '(3,)' "$L0$LM$L1"
npy "$TMP/y5.npy" '<i8' '(3,)' "$L0$L1$L5"
npy "$TMP/yf.npy" '<f4' '(3,)' "$ONE$ONE$ONE"
SMALL="--train-features $TMP/x.npy --train-labels $TMP/y.npy --l2 1"

# ---- results on .npy features ---------------------------------------------------------------
expect_ok "linear-eval on digits features" "$SIMCLR" linear-eval $DIG --json "$TMP/le.json"
check "linear-eval JSON has top-1 >= 0.95" "$(awk -v v="$(json_num top1 "$TMP/le.json")" 'BEGIN{print (v >= 0.95)}')" = 1
check "linear-eval JSON has the chosen penalty and sklearn's C" -n "$(json_num sklearn_C "$TMP/le.json")"
check "linear-eval prints top-1 and top-5" -n "$(grep -E 'top-1 [0-9.]+%  top-5' "$TMP/out")"
expect_ok "linear-eval, paper grid" "$SIMCLR" linear-eval $DIG --grid paper --json "$TMP/lp.json"
check "paper grid: 45 penalties in the JSON" "$(grep -o '"grid_lambda": \[[^]]*\]' "$TMP/lp.json" | tr ',' '\n' | wc -l)" -eq 45
expect_ok "linear-eval, Adam solver" "$SIMCLR" linear-eval $DIG --solver adam --adam-epochs 20 --json "$TMP/la.json"
check "Adam JSON names the solver" -n "$(grep '"solver": "adam"' "$TMP/la.json")"
expect_ok "knn-eval on digits features" "$SIMCLR" knn-eval $DIG --json "$TMP/knn.json"
check "knn-eval top-1 >= 0.9" "$(awk -v v="$(json_num top1 "$TMP/knn.json")" 'BEGIN{print (v >= 0.9)}')" = 1
# --knn-norm on non-negative features with a scale per feature (numpy/sklearn: 68.67 / 94.00% at k 20)
POS="--train-features $F/knnpos_Xtr.npy --train-labels $F/knn_ytr.npy --test-features $F/knnpos_Xte.npy --test-labels $F/knn_yte.npy --k 20"
expect_ok "knn-eval --knn-norm l2" "$SIMCLR" knn-eval $POS --json "$TMP/kl2.json"
expect_ok "knn-eval --knn-norm standardize" "$SIMCLR" knn-eval $POS --knn-norm standardize --json "$TMP/kst.json"
check "l2: numpy's top-1 (103 of 150)" "$(awk -v v="$(json_num top1 "$TMP/kl2.json")" 'BEGIN{printf "%.0f", 150 * v}')" = 103
check "standardize: numpy's top-1 (141 of 150)" "$(awk -v v="$(json_num top1 "$TMP/kst.json")" 'BEGIN{printf "%.0f", 150 * v}')" = 141
check "the JSON names the norm" -n "$(grep '"norm": "standardize"' "$TMP/kst.json")"
check "the printed line names the norm" -n "$(grep -E 'kNN \(k 20, t 0.1, standardize\): top-1 94.00%' "$TMP/out")"
expect_fail "unknown --knn-norm" "--knn-norm" "$SIMCLR" knn-eval $POS --knn-norm cosine
# the same result on 1 and 2 threads (fixed-order reductions)
"$SIMCLR" linear-eval $DIG --threads 1 --json "$TMP/t1.json" >/dev/null 2>&1
"$SIMCLR" linear-eval $DIG --threads 2 --json "$TMP/t2.json" >/dev/null 2>&1
check "linear-eval identical on 1 and 2 threads" "$(grep -vE 'seconds|threads|json' "$TMP/t1.json" | md5sum)" = "$(grep -vE 'seconds|threads|json' "$TMP/t2.json" | md5sum)"

# --patience: the warm-started search stops once the held-out accuracy stops improving
expect_ok "linear-eval --patience 2" "$SIMCLR" linear-eval $DIG --patience 2 --json "$TMP/pat.json"
check "--patience 2: fewer penalties tried" "$(grep -o '"grid_lambda": \[[^]]*\]' "$TMP/pat.json" | tr ',' '\n' | wc -l)" -lt 10
check "--patience 2: the full search's penalty on digits" "$(json_num lambda "$TMP/pat.json")" = "$(json_num lambda "$TMP/le.json")"
# --train-indices: fit on a subset of the train rows (the demo's 1% column)
/usr/bin/env perl -e 'binmode STDOUT; my @i = map { $_ * 3 } 0..99; my $h = "{\x27descr\x27: \x27<i8\x27, \x27fortran_order\x27: False, \x27shape\x27: (100,), }"; $h .= " " x ((64 - (10 + length($h) + 1) % 64) % 64) . "\n"; print "\x93NUMPY\x01\x00", pack("v", length($h)), $h, pack("q<*", @i);' > "$TMP/idx.npy"
expect_ok "linear-eval --train-indices" "$SIMCLR" linear-eval $DIG --train-indices "$TMP/idx.npy" --json "$TMP/sub.json"
check "--train-indices: 100 train rows" "$(json_num n_train "$TMP/sub.json")" = 100
/usr/bin/env perl -e 'binmode STDOUT; my $h = "{\x27descr\x27: \x27<i8\x27, \x27fortran_order\x27: False, \x27shape\x27: (1,), }"; $h .= " " x ((64 - (10 + length($h) + 1) % 64) % 64) . "\n"; print "\x93NUMPY\x01\x00", pack("v", length($h)), $h, pack("q<", 99999);' > "$TMP/bad.npy"
expect_fail "--train-indices out of range" "--train-indices .*row 99999 is outside" "$SIMCLR" linear-eval $DIG --train-indices "$TMP/bad.npy"

# ---- PCA baseline on a pixel dataset, against sklearn -----------------------------------------
read -r SK_TOP1 SK_L2 < "$F/pca_baseline_expected.txt"
PIX="--dataset npy --data $F/digits_img_train.npy --labels $F/digits_ytr.npy --test-data $F/digits_img_test.npy --test-labels $F/digits_yte.npy"
expect_ok "pca-baseline on digits pixels" "$SIMCLR" pca-baseline $PIX --components 20 --l2 "$SK_L2" --tol 1e-8 --json "$TMP/pca.json"
check "pca-baseline top-1 within 0.5 points of sklearn's PCA+LogisticRegression ($SK_TOP1)" \
  "$(awk -v v="$(json_num top1 "$TMP/pca.json")" -v s="$SK_TOP1" 'BEGIN{d=v-s; if (d<0) d=-d; print (d <= 0.005)}')" = 1
read -r SK_BLOG < "$F/pca_blog_expected.txt"
expect_ok "pca-baseline --protocol blog on digits pixels" "$SIMCLR" pca-baseline $PIX --protocol blog --components 20 --tol 1e-8 --json "$TMP/pcab.json"
check "blog protocol: top-1 within 0.5 points of sklearn's StandardScaler+PCA+LogisticRegression(C=1) ($SK_BLOG)" \
  "$(awk -v v="$(json_num top1 "$TMP/pcab.json")" -v s="$SK_BLOG" 'BEGIN{d=v-s; if (d<0) d=-d; print (d <= 0.005)}')" = 1
check "blog protocol: C = 1, no search" "$(json_num sklearn_C "$TMP/pcab.json")" = 1
expect_ok "pca-baseline --protocol blog: 64 components by default" "$SIMCLR" pca-baseline $PIX --protocol blog --json "$TMP/pcab64.json"
check "blog protocol: 64 components" "$(json_num pca_components "$TMP/pcab64.json")" = 64
expect_fail "--l2 with --sklearn-c" "give one penalty" "$SIMCLR" pca-baseline $PIX --l2 0.1 --sklearn-c 1
expect_ok "pca-baseline writes the projections" "$SIMCLR" pca-baseline $PIX --components 20 --train-output "$TMP/ptr.npy" --test-output "$TMP/pte.npy"
check "projected train .npy (1200 x 20 float32)" "$(stat -c %s "$TMP/ptr.npy")" -eq $((128 + 1200 * 20 * 4))
expect_ok "knn-eval on the PCA projections" "$SIMCLR" knn-eval --train-features "$TMP/ptr.npy" --train-labels $F/digits_ytr.npy --test-features "$TMP/pte.npy" --test-labels $F/digits_yte.npy
expect_fail "pca-baseline: too many components" "at most 64 components" "$SIMCLR" pca-baseline $PIX --components 65

# ---- STL-10-style folds from a fold file ------------------------------------------------------
{ seq -s ' ' 0 399; seq -s ' ' 400 799; seq -s ' ' 800 1199; } > "$TMP/folds.txt"
expect_ok "linear-eval --folds" "$SIMCLR" linear-eval $DIG --folds --fold-indices "$TMP/folds.txt" --json "$TMP/lf.json"
check "three fold results and a std" -n "$(grep -E '"fold_top1": \[[^,]+, [^,]+, [^,]+\]' "$TMP/lf.json")" -a -n "$(json_num top1_std "$TMP/lf.json")"
expect_ok "knn-eval --folds" "$SIMCLR" knn-eval $DIG --folds --fold-indices "$TMP/folds.txt"
expect_fail "--folds without folds" "fold-indices" "$SIMCLR" linear-eval $DIG --folds
echo "0 1 5000" > "$TMP/badfolds.txt"
expect_fail "fold index out of range" "badfolds.txt: line 1" "$SIMCLR" linear-eval $DIG --folds --fold-indices "$TMP/badfolds.txt"

# ---- bad input ----------------------------------------------------------------------------------
expect_fail "feature/label counts disagree" "expected 1200 labels" "$SIMCLR" linear-eval \
  --train-features $F/digits_Xtr.npy --train-labels $F/digits_yte.npy --test-features $F/digits_Xte.npy --test-labels $F/digits_yte.npy
expect_fail "train/test dimensions differ" "32 features per row, but --train-features .* has 64" "$SIMCLR" linear-eval \
  --train-features $F/digits_Xtr.npy --train-labels $F/digits_ytr.npy --test-features $F/knn_Xte.npy --test-labels $F/knn_yte.npy
expect_fail "NaN in features" "--train-features .*xnan.npy: feature 0 of row 1 is NaN" "$SIMCLR" linear-eval \
  --train-features "$TMP/xnan.npy" --train-labels "$TMP/y.npy" --test-features "$TMP/x.npy" --test-labels "$TMP/y.npy"
expect_fail "NaN in test features (knn)" "--test-features .*xnan.npy: feature 0 of row 1 is NaN" "$SIMCLR" knn-eval \
  --train-features "$TMP/x.npy" --train-labels "$TMP/y.npy" --test-features "$TMP/xnan.npy" --test-labels "$TMP/y.npy"
expect_fail "negative label" "--train-labels .*yneg.npy: label -1 at row 1" "$SIMCLR" linear-eval \
  --train-features "$TMP/x.npy" --train-labels "$TMP/yneg.npy" --test-features "$TMP/x.npy" --test-labels "$TMP/y.npy"
expect_fail "test label beyond the train classes" "--test-labels: label 5 at row 2 is outside the train classes 0..1" "$SIMCLR" linear-eval \
  $SMALL --test-features "$TMP/x.npy" --test-labels "$TMP/y5.npy"
expect_fail "float labels" "--train-labels" "$SIMCLR" linear-eval \
  --train-features "$TMP/x.npy" --train-labels "$TMP/yf.npy" --test-features "$TMP/x.npy" --test-labels "$TMP/y.npy"
expect_fail "missing features file" "--train-features.*nope.npy" "$SIMCLR" knn-eval \
  --train-features "$TMP/nope.npy" --train-labels "$TMP/y.npy" --test-features "$TMP/x.npy" --test-labels "$TMP/y.npy"
expect_fail "missing test labels" "--test-labels is required" "$SIMCLR" linear-eval \
  --train-features "$TMP/x.npy" --train-labels "$TMP/y.npy" --test-features "$TMP/x.npy"
expect_fail "no input at all" "--checkpoint with a dataset" "$SIMCLR" linear-eval
expect_fail "bad --k" "--k" "$SIMCLR" knn-eval $DIG --k 0
expect_fail "JSON into a missing folder" "--json" "$SIMCLR" linear-eval $DIG --json "$TMP/no/such/dir/r.json"
check "no partial JSON left" ! -e "$TMP/no/such/dir/r.json"

# ---- checkpoint + dataset -------------------------------------------------------------------------
RUN="$TMP/run"
"$SIMCLR" pretrain --out "$RUN" --dataset npy --data $F/digits_img_train.npy --labels $F/digits_ytr.npy \
  --arch resnet18 --width 0.125 --stem cifar --image-size 16 --batch-size 16 --max-steps 2 --epochs 1 \
  --limit 64 --threads 2 >"$TMP/pre.log" 2>&1
check "a tiny checkpoint to evaluate" -f "$RUN/last.safetensors"
CK="--checkpoint $RUN/last.safetensors"
expect_ok "features of a split" "$SIMCLR" features $CK --dataset npy --data $F/digits_img_test.npy --labels $F/digits_yte.npy \
  --output "$TMP/f.npy" --labels-output "$TMP/fl.npy"
# 597 x 64 float32 + a 128-byte header; labels 597 int64
check "features .npy size (597 x 64 float32, architecture from the checkpoint)" "$(stat -c %s "$TMP/f.npy")" -eq $((128 + 597 * 64 * 4))
check "labels .npy size" "$(stat -c %s "$TMP/fl.npy")" -eq $((128 + 597 * 8))
expect_ok "features --layer z" "$SIMCLR" features $CK --dataset npy --data $F/digits_img_test.npy --layer z --output "$TMP/z.npy"
check "z is 128 wide" "$(stat -c %s "$TMP/z.npy")" -eq $((128 + 597 * 128 * 4))
expect_ok "linear-eval from a checkpoint and a dataset" "$SIMCLR" linear-eval $CK $PIX --json "$TMP/lc.json"
check "linear-eval (checkpoint) wrote its JSON" -n "$(json_num top1 "$TMP/lc.json")"
expect_ok "knn-eval from a checkpoint and a dataset" "$SIMCLR" knn-eval $CK $PIX
# the features command and the on-the-fly path agree: linear-eval on exported features
"$SIMCLR" features $CK --dataset npy --data $F/digits_img_train.npy --labels $F/digits_ytr.npy --output "$TMP/ftr.npy" --labels-output "$TMP/ftrl.npy" >/dev/null 2>&1
expect_ok "linear-eval on exported features" "$SIMCLR" linear-eval --train-features "$TMP/ftr.npy" --train-labels "$TMP/ftrl.npy" \
  --test-features "$TMP/f.npy" --test-labels "$TMP/fl.npy" --json "$TMP/le2.json"
check "exported and on-the-fly features give the same top-1" "$(json_num top1 "$TMP/le2.json")" = "$(json_num top1 "$TMP/lc.json")"
expect_fail "checkpoint of another architecture" "resnet18 x0.125 .*current model is resnet34" "$SIMCLR" linear-eval $CK $PIX --arch resnet34
expect_fail "checkpoint of another width" "current model expects" "$SIMCLR" knn-eval $CK $PIX --width 0.25
expect_fail "both .npy features and a checkpoint" "not both" "$SIMCLR" linear-eval $CK $DIG
expect_fail "unlabeled split" "no labels" "$SIMCLR" linear-eval $CK --dataset npy --data $F/digits_img_train.npy --test-data $F/digits_img_test.npy
expect_fail "missing checkpoint" "--checkpoint" "$SIMCLR" features --checkpoint "$TMP/none.safetensors" --dataset npy --data $F/digits_img_test.npy --output "$TMP/g.npy"
check "no output after a failure" ! -e "$TMP/g.npy"
# a miniature STL-10 folder (100 train images in 10 folds of 10, 30 test images, random pixels):
# the --folds path through the dataset's fold_indices.txt
STL="$TMP/stl"; mkdir -p "$STL"
head -c $((100 * 27648)) /dev/urandom > "$STL/train_X.bin"
head -c $((30 * 27648)) /dev/urandom > "$STL/test_X.bin"
for i in $(seq 0 99); do printf "\\$(printf %03o $((i % 10 + 1)))"; done > "$STL/train_y.bin"
for i in $(seq 0 29); do printf "\\$(printf %03o $((i % 10 + 1)))"; done > "$STL/test_y.bin"
for f in $(seq 0 9); do seq -s ' ' $((f * 10)) $((f * 10 + 9)); done > "$STL/fold_indices.txt"
expect_ok "linear-eval --folds on STL-10 (checkpoint)" "$SIMCLR" linear-eval $CK --dataset stl10 --data "$STL" --folds --json "$TMP/stlf.json"
check "ten fold results" "$(grep -o '"fold_top1": \[[^]]*\]' "$TMP/stlf.json" | tr ',' '\n' | wc -l)" -eq 10
expect_ok "knn-eval --folds on STL-10 (checkpoint)" "$SIMCLR" knn-eval $CK --dataset stl10 --data "$STL" --folds --k 5
expect_ok "pca-baseline --folds on STL-10 pixels" "$SIMCLR" pca-baseline --dataset stl10 --data "$STL" --folds --components 8 --json "$TMP/stlp.json"
check "pca-baseline: ten fold results" "$(grep -o '"fold_top1": \[[^]]*\]' "$TMP/stlp.json" | tr ',' '\n' | wc -l)" -eq 10
expect_fail "--folds on a dataset without folds" "only STL-10" "$SIMCLR" linear-eval $CK $PIX --folds
expect_ok "--help" "$SIMCLR" linear-eval --help
finish
