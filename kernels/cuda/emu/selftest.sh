#!/usr/bin/env bash
# Shows that the emulator catches the kernel bugs it exists for: builds it from mutated
# copies of kernels.cu and runs the GPU tests of kernels/cuda against each; every mutant
# must fail them, with the sign given. Usage: selftest.sh (from anywhere; needs g++, go)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
go test -c -o "$work/cuda.test" "$here/.."
# name | perl substitution on kernels.cu (first match) | tests | sign in the output
mutants=(
  'missing __syncthreads in block_sum|s/(if \(l == 0\) sh\[w\] = v;\n)\t__syncthreads\(\);\n/$1/|TestReductions|relative'
  'divergent __syncthreads (warp 1 leaves block_sum early)|s/(double block_sum\(double v, double \*sh\) \{\n)/$1\tif ((threadIdx.x >> 5) == 1) return v;\n/|TestReductions|__syncthreads reached by'
  'shuffle with an exited lane (lane 33 leaves block_sum early)|s/(double block_sum\(double v, double \*sh\) \{\n)/$1\tif (threadIdx.x == 33) return v;\n/|TestReductions|has returned'
  'warp sum skips the last shuffle|s/(double warp_sum\(double v\) \{\n\tfor \(int o = 16; o > )0;/${1}1;/|TestRowOps|relative error'
  'grid-stride loop one element too far|s/i < \(n\); i \+=/i <= (n); i +=/|TestElementwise|SIGSEGV'
  'fused attention: keys past the end not masked|s/bool ok = k0 \+ nt \* 8 \+ 2 \* t \+ j < L;/bool ok = true;/|TestAttention|relative error'
  'bf16 epilogue: bias left out|s/if \(bias\) t \+= bf16_float\(bias\[j\]\);//|TestRoundedOutputs|output: element'
  'bf16 row sums: last row left out|s/(sum_rows_part_t\(part, x, )rows(, cols, rpc, ldp\);\n\})/${1}rows - 1$2/|TestRoundedOutputs|of rounded storage differs'
  'fused attention: a bf16 qkv read with its last bit flipped|s/unsigned short to_bits\(unsigned short x\) \{ return x; \}/unsigned short to_bits(unsigned short x) { return x ^ 1; }/|TestAttentionRounded|o: element'
  'bf16 softmax gradient over one column too few|s/(row_softmax_grad<K, 32>\(WARP_R, threadIdx.x & 31, 32, dx, dy, y, rows, )cols(, beta, nullptr\);)/${1}cols - 1$2/|TestAttention$|FAIL: TestAttention/gemm-bf16'
  'fused attention: P fragments in the wrong registers|s/a\[1\] = pack_bf16\(lo\[2\], lo\[3\]\);/a[1] = pack_bf16(hi[0], hi[1]);/|TestAttention|relative error'
)
fail=0
for m in "${mutants[@]}"; do
  IFS='|' read -r name sub tests sign <<<"$m"
  d="$work/m"
  rm -rf "$d" && mkdir -p "$d/src"
  cp "$here/../kernels.ptx" "$d/src/"
  perl -0pe "$sub" "$here/../kernels.cu" > "$d/src/kernels.cu"
  if cmp -s "$d/src/kernels.cu" "$here/../kernels.cu"; then
    echo "FAIL  $name: the substitution matched nothing"; fail=1; continue
  fi
  IMMKIT_EMU_SRC="$d/src" bash "$here/build.sh" "$d/lib" >/dev/null
  set +e
  out=$(cd "$here/.." && IMMKIT_CUDA_LIB_DIR="$d/lib" "$work/cuda.test" -test.run "$tests" -test.count=1 2>&1)
  rc=$?
  set -e
  # A fault on one of the emulator's own block threads kills the process with no Go
  # report: exit 139 (128 + SIGSEGV) is that sign.
  if [ "$sign" = SIGSEGV ] && [ $rc -eq 139 ]; then
    echo "ok    $name: the tests fail (killed by SIGSEGV, exit 139)"
  elif [ $rc -ne 0 ] && grep -q -- "$sign" <<<"$out"; then
    echo "ok    $name: the tests fail ($(grep -m1 -o -- ".\{0,60\}$sign.\{0,60\}" <<<"$out"))"
  else
    echo "FAIL  $name: exit $rc, no \"$sign\" in the output"; fail=1
    tail -5 <<<"$out"
  fi
done
exit $fail
