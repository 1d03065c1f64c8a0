#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the demo need (idempotent).
#   tools/deps.sh            build + test + demo dependencies
#   tools/deps.sh --python   also the Python references used by tools/*.py and bench/*.py
#   tools/deps.sh --fuzz     also clang and its libFuzzer/sanitizer runtimes (make fuzz only)
set -euo pipefail
pkgs=(gcc make pkg-config libdnnl-dev libopenblas-dev liblapacke-dev libpng-dev libjpeg62-turbo-dev
      zlib1g-dev libopenmpi-dev openmpi-bin dataset-fashion-mnist lomiri-wallpapers-16.04
      libjpeg-turbo-progs
      libcurl4-openssl-dev libssl-dev libarchive-dev   # simclr download: HTTP, checksums, .tar.gz
      python3-numpy python3-onnx python3-opencv        # tests: export checked by onnx.checker + OpenCV dnn
      protobuf-compiler python3-protobuf)              # tests: TensorBoard events decoded from the schema
if [ "${1:-}" = "--python" ]; then
  pkgs+=(python3-torch python3-torchvision python3-numpy python3-sklearn python3-scipy python3-pil)
fi
if [ "${1:-}" = "--fuzz" ]; then
  pkgs+=(clang libclang-rt-14-dev libomp-14-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q || true
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
