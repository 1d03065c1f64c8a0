# Sourced by bench/bench_train.sh and bench/bench_bf16.sh: splits "$@" into rounds (--rounds N,
# default $rounds), args (the `simclr bench` options; a ResNet-18 96 px batch-64 default) and
# pyargs (those the PyTorch twin bench/pytorch_train_bench.py understands too).
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
[ ${#args[@]} -eq 0 ] && args=(--arch resnet18 --image-size 96 --batch-size 64 --steps 10 --warmup 2 --threads 2)
pyargs=()
i=0
while [ $i -lt ${#args[@]} ]; do
  case "${args[$i]}" in
    --arch|--image-size|--batch-size|--steps|--warmup|--threads|--stem|--out-dim) pyargs+=("${args[$i]}" "${args[$((i+1))]}"); i=$((i+2)) ;;
    *) i=$((i+1)) ;;
  esac
done
