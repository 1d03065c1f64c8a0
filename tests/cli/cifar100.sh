#!/usr/bin/env bash
# CLI tests of the CIFAR-100 reader in every command that takes a dataset, on the fixture's
# cifar-100-binary/ (6 train and 4 test images in the real record layout, tools/make_data_fixtures.py).
source "$(dirname "$0")/lib.sh"
export OMP_WAIT_POLICY=passive
D=(--dataset cifar100 --data "$ROOT/tests/fixtures/data")
M=(--arch resnet18 --width 0.0625 --stem cifar --image-size 16 --threads 2)
expect_ok "augment-preview" "$SIMCLR" augment-preview "${D[@]}" --split test --images 2 --views 2 \
  --image-size 16 --output "$TMP/g.png"
check "describes the split" -n "$(grep 'cifar100 test (4 images, 32x32x3, 100 classes)' "$TMP/err")"
expect_ok "pretrain with a kNN monitor on the coarse labels" "$SIMCLR" pretrain "${D[@]}" "${M[@]}" \
  --cifar100-labels coarse --batch-size 6 --epochs 1 --eval-every 1 --out "$TMP/run" --loader-threads 1
check "kNN line in the metrics" -n "$(grep '"knn_top1"' "$TMP/run/metrics.jsonl")"
check "config keeps the label set" -n "$(grep '"cifar100-labels": "coarse"' "$TMP/run/config.json")"
CK=(--checkpoint "$TMP/run/last.safetensors")
expect_ok "features of the test split" "$SIMCLR" features "${CK[@]}" "${D[@]}" --split test \
  --output "$TMP/f.npy" --labels-output "$TMP/l.npy"
# labels as int64 after a 128-byte header; the fine labels of the fixture
same_data() { cmp -s <(tail -c +129 "$1") <(tail -c +129 "$2"); }
check "fine labels by default" -z "$(same_data "$TMP/l.npy" "$ROOT/tests/fixtures/data/cifar100_test_fine.npy" || echo differ)"
expect_ok "features, coarse labels" "$SIMCLR" features "${CK[@]}" "${D[@]}" --split test --cifar100-labels coarse \
  --output "$TMP/f2.npy" --labels-output "$TMP/l2.npy"
check "coarse labels" -z "$(same_data "$TMP/l2.npy" "$ROOT/tests/fixtures/data/cifar100_test_coarse.npy" || echo differ)"
expect_ok "knn-eval" "$SIMCLR" knn-eval "${CK[@]}" "${D[@]}" --cifar100-labels coarse --k 3 --num-classes 20
expect_ok "linear-eval" "$SIMCLR" linear-eval "${CK[@]}" "${D[@]}" --cifar100-labels coarse --num-classes 20
expect_ok "pca-baseline" "$SIMCLR" pca-baseline "${D[@]}" --components 4 --image-size 16 --num-classes 100
expect_fail "bad split" "--split: CIFAR-100 has train and test; got 'valid'" "$SIMCLR" augment-preview "${D[@]}" \
  --split valid --output "$TMP/x.png"
expect_fail "bad label set" "--cifar100-labels" "$SIMCLR" augment-preview "${D[@]}" --cifar100-labels medium \
  --output "$TMP/x.png"
expect_fail "CIFAR-10 files are not CIFAR-100" "train.bin: file not found" "$SIMCLR" augment-preview \
  --dataset cifar100 --data "$TMP" --output "$TMP/x.png"
finish
