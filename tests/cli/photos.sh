#!/usr/bin/env bash
# The whole "your own images" story on real photographs: the 15 photographs of Debian's
# lomiri-wallpapers-16.04 (tools/deps.sh installs it; the 14 large enough), reduced 8x and cut
# into 96x96 crops with
# libjpeg-turbo's djpeg/cjpeg/jpegtran. A flat unlabeled folder (all photos, plus one broken
# file) is pretrained on; a labelled tree (class = the photo a crop comes from; train crops from
# the left part of each photo, test crops from the right part) drives the kNN monitor and the
# evaluation. Checks every step's outputs, and that the features recognise unseen parts of the
# photos far above chance.
source "$(dirname "$0")/lib.sh"
S="$SIMCLR"
BG=/usr/share/backgrounds
check "Debian's photographs are installed (tools/deps.sh: lomiri-wallpapers-16.04)" -f "$BG/sunset_by_Aitzol_Berasategi.jpg"
command -v jpegtran >/dev/null; check "jpegtran is installed (tools/deps.sh: libjpeg-turbo-progs)" $? -eq 0
P="$TMP/photos"; L="$TMP/labelled"
mkdir -p "$P" "$L/train/zz_empty"
crop() { jpegtran -crop "96x96+$2+$3" -outfile "$4" "$1"; }   # offsets: multiples of 16
n=0
for f in "$BG"/*.jpg; do
  name=$(basename "$f" .jpg); name=${name%%_by_*}
  djpeg -scale 1/8 "$f" | cjpeg -quality 92 > "$TMP/small.jpg"
  read -r w h < <(djpeg "$TMP/small.jpg" | head -c 64 | sed -n 2p)
  [ "$w" -ge 256 ] && [ "$h" -ge 208 ] || continue   # 14 of the 15 photos are large enough
  for xy in "0 0" "96 32" "160 96" "64 112"; do crop "$TMP/small.jpg" ${xy% *} ${xy#* } "$P/${name}_${xy/ /_}.jpg"; done
  n=$((n + 1))
  [ $n -gt 7 ] && continue   # 7 photos are classes
  mkdir -p "$L/train/$name"
  for xy in "0 0" "16 48" "48 16" "32 96" "80 64" "96 112"; do crop "$TMP/small.jpg" ${xy% *} ${xy#* } "$L/train/$name/${xy/ /_}.jpg"; done
  [ $n -eq 7 ] && continue   # the 7th class has no test images
  mkdir -p "$L/test/$name"
  for xy in "160 0" "160 64" "160 112"; do crop "$TMP/small.jpg" ${xy% *} ${xy#* } "$L/test/$name/${xy/ /_}.jpg"; done
done
head -c 3000 "$BG/Wine_by_Jakkub_Mede.jpg" > "$P/zz_truncated.jpg"
check "56 crops + 1 broken file in the flat folder" "$(ls "$P" | wc -l)" -eq 57
check "42 train and 18 test crops" "$(find "$L/train" -name '*.jpg' | wc -l)$(find "$L/test" -name '*.jpg' | wc -l)" = 4218

expect_ok "augment-preview: random photos with the recipe's views" "$S" augment-preview --dataset folder \
    --data "$P" --image-size 64 --images 4 --views 3 --sample random --output "$TMP/grid.png"
check "grid written" -s "$TMP/grid.png"
check "the broken file is named" -n "$(grep 'zz_truncated.jpg' "$TMP/err")"

expect_ok "pretrain on the photos, kNN monitor on the labelled tree" "$S" pretrain --dataset folder --data "$P" \
    --image-size 64 --width 0.125 --batch-size 16 --epochs 2 --lr 0.001 --eval-data "$L" --eval-every 1 \
    --threads 2 --out "$TMP/run"
check "pretrain used the 56 readable crops" -n "$(grep 'folder all (56 images' "$TMP/out")"
check "kNN monitor: 18 test crops against 42 train crops" -n "$(grep 'kNN top-1.*(18 vs 42 images' "$TMP/err")"
check "the class without test images is named" -n "$(grep "no images of class 'free'" "$TMP/err")"
check "the empty class folder is skipped with a note" -n "$(grep 'zz_empty: empty class folder skipped' "$TMP/err")"
check "checkpoint written" -s "$TMP/run/last.safetensors"
expect_ok "augment-preview --from-run: the run's own views" "$S" augment-preview --from-run "$TMP/run" \
    --images 2 --sample random --output "$TMP/grid2.png"
check "the run's image size and blur" -n "$(grep "the run's augmentation, 64x64.*blur 1$" "$TMP/err")"

CK="$TMP/run/last.safetensors"
expect_ok "features of the test crops" "$S" features --checkpoint "$CK" --dataset folder --data "$L" \
    --split test --output "$TMP/test.npy" --labels-output "$TMP/test_labels.npy"
check "one row per test crop" "$(tail -n +2 "$TMP/test.files.tsv" | wc -l)" -eq 18
check "7 class names, sorted" "$(head -1 "$TMP/test.classes.txt")$(wc -l < "$TMP/test.classes.txt")" = "Bridge7"
check "rows name class and file" -n "$(grep -P '^0\t0\tBridge\t.*/test/Bridge/160_0.jpg' "$TMP/test.files.tsv")"
expect_ok "features of the flat folder list the skipped file" "$S" features --checkpoint "$CK" --dataset folder \
    --data "$P" --output "$TMP/all.npy"
check "skipped file listed, no row" -n "$(grep -P '^skipped\t-1\t\t.*zz_truncated.jpg' "$TMP/all.files.tsv")"

expect_ok "linear-eval on the labelled tree (train/ vs test/)" "$S" linear-eval --checkpoint "$CK" \
    --dataset folder --data "$L" --json "$TMP/linear.json"
expect_ok "knn-eval with --test-data" "$S" knn-eval --checkpoint "$CK" --dataset folder --data "$L/train" \
    --test-data "$L/test" --knn-k 5 --json "$TMP/knn.json"
lin=$(grep -o '"top1": [0-9.]*' "$TMP/linear.json" | head -1 | cut -d' ' -f2)
knn=$(grep -o '"top1": [0-9.]*' "$TMP/knn.json" | head -1 | cut -d' ' -f2)
echo "  linear top-1 $lin, kNN top-1 $knn (chance 1/6 of the test classes)"
check "linear eval recognises unseen parts of the photos (top-1 >= 0.45, chance 0.17)" "$(awk -v v="$lin" 'BEGIN{print (v >= 0.45)}')" = 1
check "kNN recognises unseen parts of the photos (top-1 >= 0.4, chance 0.17)" "$(awk -v v="$knn" 'BEGIN{print (v >= 0.4)}')" = 1
expect_fail "testing on the training crops is refused" "test-on-train" "$S" knn-eval --checkpoint "$CK" \
    --dataset folder --data "$L/train"
finish
