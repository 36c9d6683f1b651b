#!/bin/sh
# Builds native/ptx/<name>.ptx from each native/kernels/<name>.cu with Debian's clang-14 (no CUDA SDK needed).
# sm_80 PTX; the driver JIT-compiles it for the GPU it runs on. +ptx70 enables the *_sync warp builtins.
# Usage: native/build-ptx.sh [output-directory]   (default: native/ptx)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/ptx}
clang=${CLANG:-clang-14}
mkdir -p "$out"
for source in "$here"/kernels/*.cu; do
    name=$(basename "$source" .cu)
    "$clang" -x cuda --cuda-device-only -nocudainc -nocudalib --cuda-gpu-arch=sm_80 -O3 \
        -Xclang -target-feature -Xclang +ptx70 -std=c++17 -Wall -Werror \
        -S "$source" -o "$out/$name.ptx"
done
