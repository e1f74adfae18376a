#!/usr/bin/env bash
# Runs the GPU tests of kernels/cuda on the CPU through the CUDA emulator
# (kernels/cuda/emu: kernels.cu compiled as C++, the driver API and cuBLAS emulated,
# loaded through the same dlopen path as a real GPU), so every CI run checks the kernels'
# indexing, launch arguments, barriers and shuffles against the CPU device. Then the
# block threads in reverse order (a missing barrier shows in one order or the other), the
# fused-epilogue paths with a cuBLASLt that finds no algorithm (the fallback a GPU's
# library may choose), and the emulator's self-test: mutated kernels must fail the tests.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
if [[ "$(uname -m)" != "x86_64" ]]; then
	echo "checks.d/cuda-emu.sh: not run: the emulator's fiber switch is x86-64 only (this is $(uname -m))"
	exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
bash kernels/cuda/emu/build.sh "$tmp/lib"
export IMMKIT_CUDA_LIB_DIR="$tmp/lib"
go test -c -o "$tmp/cuda.test" ./kernels/cuda
run() { (cd kernels/cuda && "$tmp/cuda.test" -test.count=1 -test.v "$@") >"$tmp/out" 2>&1; }
# verdict NAME: the run passed, ran on the emulator and skipped nothing.
verdict() {
	local rc=$1 name=$2 n
	n=$(grep -c $'PARITY\t' "$tmp/out" || true)
	if [[ $rc -ne 0 ]] || grep -q -- '--- SKIP\|GPU tests not run' "$tmp/out" || [[ $n -lt 40 ]] ||
		! grep -q 'GPU tests on immkit CUDA emulator' "$tmp/out"; then
		grep -v $'PARITY\t' "$tmp/out" | tail -40
		echo "checks.d/cuda-emu.sh: FAIL: $name (exit $rc, $n parity lines)"
		exit 1
	fi
	echo "checks.d/cuda-emu.sh: ok: $name: $n parity checks pass, nothing skipped"
}
start=$SECONDS
rc=0; run || rc=$?
verdict $rc "kernels/cuda tests on the emulator ($((SECONDS - start)) s)"
start=$SECONDS
rc=0; IMMKIT_CUDA_EMU_ORDER=reverse run -test.run 'TestGemm|TestRoundedOperands|TestRoundedOutputs|TestAttention|TestElementwise|TestReductions|TestLaplaceMMD|TestRand|TestRowOps|TestSumRowGroups|TestIMMStep|TestMultimodalStep' || rc=$?
verdict $rc "the same without TestDiTStep, block threads in reverse order ($((SECONDS - start)) s)"
start=$SECONDS
rc=0; IMMKIT_CUDA_EMU_LT_NOALGO=1 run -test.run 'TestGemmEpilogues|TestRoundedOutputs|TestDiTStep/tiny|TestMultimodalStep/(fp32|bf16-random$)' || rc=$?
verdict $rc "the epilogue ops and model steps when cuBLASLt has no algorithm (separate ops; $((SECONDS - start)) s)"
unset IMMKIT_CUDA_LIB_DIR
bash kernels/cuda/emu/selftest.sh
echo "checks.d/cuda-emu.sh: ok"
