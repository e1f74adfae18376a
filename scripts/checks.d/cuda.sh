#!/usr/bin/env bash
# Check that the committed PTX of kernels/cuda is what `go generate` makes from
# kernels.cu. Needs Debian's nvcc 11.8 (nvidia-cuda-toolkit, non-free); CI does not
# install it (too heavy), so without it the check says it was not run and why.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
pkg="$root/kernels/cuda"
if ! command -v nvcc >/dev/null 2>&1; then
	echo "checks.d/cuda.sh: not run: nvcc is not installed (apt-get install nvidia-cuda-toolkit from bookworm non-free; see docs/cuda.md)"
	exit 0
fi
ver="$(nvcc --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')"
if [[ "$ver" != "11.8" ]]; then
	echo "checks.d/cuda.sh: not run: nvcc $ver is not the 11.8 the committed PTX was made with (its output differs by version)"
	exit 0
fi
cmd="$(sed -n 's|^//go:generate sh -c "\(.*\)"$|\1|p' "$pkg/doc.go")"
[[ -n "$cmd" ]] || { echo "checks.d/cuda.sh: no go:generate line in $pkg/doc.go"; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$pkg/kernels.cu" "$tmp/"
(cd "$tmp" && sh -c "$cmd")
if ! diff -q "$pkg/kernels.ptx" "$tmp/kernels.ptx" >/dev/null; then
	diff -u "$pkg/kernels.ptx" "$tmp/kernels.ptx" | head -40 || true
	echo "checks.d/cuda.sh: FAIL: kernels/cuda/kernels.ptx is stale; run go generate ./kernels/cuda and commit it"
	exit 1
fi
echo "checks.d/cuda.sh: ok: kernels/cuda/kernels.ptx matches nvcc $ver output of kernels.cu"
