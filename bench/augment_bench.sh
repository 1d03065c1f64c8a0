#!/usr/bin/env bash
# Augmented views per second on 96x96 images: simclr's augmentation + loader against
# torchvision's PIL pipeline with the same transforms, on the same images, with 1 and 2
# threads (torchvision: 1 and 2 worker processes, torch single-threaded in each).
#   bash bench/augment_bench.sh [VIEWS] [BLUR_PROB]      (defaults 3000 views, blur p 0.5)
# Prints one line per configuration and the ratio simclr / torchvision.
set -euo pipefail
cd "$(dirname "$0")/.."
VIEWS=${1:-3000}; BLUR=${2:-0.5}
[ -x ./simclr ] || make -j2 simclr >/dev/null
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 bench/torchvision_augment_bench.py --make-images "$TMP/img96.npy"
for t in 1 2; do
  tv=$(/usr/bin/python3 bench/torchvision_augment_bench.py "$TMP/img96.npy" --views "$VIEWS" --procs $t --blur-prob "$BLUR")
  sc=$(./simclr augment-preview --dataset npy --data "$TMP/img96.npy" --image-size 96 --blur-prob "$BLUR" \
        --bench $((VIEWS * 10)) --loader-threads $t 2>/dev/null)
  tvr=$(echo "$tv" | awk '{for(i=1;i<NF;i++) if($i=="views_per_s") print $(i+1)}')
  scr=$(echo "$sc" | awk '{for(i=1;i<NF;i++) if($i=="views_per_s") print $(i+1)}')
  echo "threads $t  torchvision ${tvr} views/s  simclr ${scr} views/s  ratio $(awk -v a="$scr" -v b="$tvr" 'BEGIN{printf "%.1f", a/b}')x  (blur p $BLUR)"
done
