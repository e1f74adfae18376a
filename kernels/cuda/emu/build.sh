#!/usr/bin/env bash
# Builds immkit's CUDA emulator (emu.cpp with kernels.cu compiled as C++) into DIR as
# libimmkit-cudaemu.so, with the names internal/cudadrv loads (libcuda.so.1,
# libcublas.so.13, libcublasLt.so.13) linked to it. Then IMMKIT_CUDA_LIB_DIR=DIR runs `--device cuda` and
# the GPU tests of kernels/cuda on the CPU. Needs g++ (C++17). Usage: build.sh DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build.sh DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
src="${IMMKIT_EMU_SRC:-$here/..}" # kernels.cu and kernels.ptx (selftest.sh points it at mutants)
# extern __shared__ T name[];  ->  T *name = (T *)emu_dyn_shared();
sed -E 's/extern __shared__ ([A-Za-z_ ]+[A-Za-z_]) ([A-Za-z_0-9]+)\[\];/\1 *\2 = (\1 *)emu_dyn_shared();/' \
  "$src/kernels.cu" > "$out/kernels_emu.inc"
grep -oE '^\.visible \.entry [A-Za-z_0-9]+' "$src/kernels.ptx" | awk '{print "K(" $3 ")"}' > "$out/entries.inc"
g++ -std=c++17 -O3 -g -pthread -fPIC -shared -Wall -Wno-unknown-pragmas -Wno-unused-function \
  -I "$here" -I "$out" "$here/emu.cpp" -o "$out/libimmkit-cudaemu.so.tmp"
mv "$out/libimmkit-cudaemu.so.tmp" "$out/libimmkit-cudaemu.so"
ln -sf libimmkit-cudaemu.so "$out/libcuda.so.1"
ln -sf libimmkit-cudaemu.so "$out/libcublas.so.13"
ln -sf libimmkit-cudaemu.so "$out/libcublasLt.so.13"
echo "$out/libimmkit-cudaemu.so: $(wc -l < "$out/entries.inc") kernels"
