#!/usr/bin/env bash
# GPU check of kernels/cuda (docs/cuda.md).
#
#   bash scripts/gpu-check.sh          on the build machine (Go, no GPU needed): compiles the
#                                      GPU test/benchmark binaries into gpu-bin/ with the
#                                      PyTorch reference beside them, prints the run command.
#   bash scripts/gpu-check.sh --run    on the GPU machine (no Go, no network): parity tests,
#                                      benchmarks and the PyTorch mlp64 line, then one table.
#                                      Under 7 minutes; results also go to $OUT if it is set.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/gpu-bin"

if [[ "${1:-}" != "--run" ]]; then
	set -e
	mkdir -p "$bin"
	cd "$root"
	CGO_ENABLED=1 go test -c -o "$bin/cuda.test" ./kernels/cuda
	CGO_ENABLED=1 go test -c -o "$bin/cudadrv.test" ./internal/cudadrv
	CGO_ENABLED=1 go test -c -o "$bin/device.test" ./kernels/device
	CGO_ENABLED=1 go test -c -o "$bin/imm.test" ./imm
	ref=""
	for c in "$root/shared/bench/imm_torch_ref.py" "$root/../shared/bench/imm_torch_ref.py"; do
		[[ -f "$c" ]] && ref="$c" && break
	done
	if [[ -n "$ref" ]]; then
		install -m 644 "$ref" "$bin/imm_torch_ref.py"
	else
		echo "gpu-check: shared/bench/imm_torch_ref.py not found; the PyTorch line will be missing" >&2
	fi
	cp "$0" "$bin/gpu-check.sh"
	git -C "$root" rev-parse HEAD >"$bin/commit" 2>/dev/null || true
	ls -la "$bin"
	cat <<MSG
gpu-check: binaries are in gpu-bin/ (ignored by git). On the GPU machine run, from the
repository root, with gpu-bin carried (run tool: carry ["gpu-bin"], timeout_s 540):

    bash scripts/gpu-check.sh --run
MSG
	exit 0
fi

# --- on the GPU machine ---
out="${OUT:-$bin/results}"
mkdir -p "$out"
cd "$bin" || { echo "gpu-check: $bin missing; build it first"; exit 1; }
if [[ -z "${GPU_CHECK_TABLE_ONLY:-}" ]]; then # set it to re-print the table of $OUT
echo "== commit $(cat commit 2>/dev/null)"
echo "== card"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee "$out/card.txt"

# cuBLAS may live outside the loader path (e.g. in PyTorch's nvidia-cublas wheel).
if [[ -z "${IMMKIT_CUDA_LIB_DIR:-}" ]] && ! ldconfig -p 2>/dev/null | grep -qE 'libcublas\.so\.1[123] '; then
	for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64 \
		$(python3 -c 'import nvidia.cublas as m, os; print(os.path.join(list(m.__path__)[0], "lib"))' 2>/dev/null); do
		if ls "$d"/libcublas.so.1[123] >/dev/null 2>&1; then
			export IMMKIT_CUDA_LIB_DIR="$d"
			break
		fi
	done
fi
echo "== IMMKIT_CUDA_LIB_DIR=${IMMKIT_CUDA_LIB_DIR:-(unset)}"
echo "== driver shim and device choice"
timeout 60 ./cudadrv.test -test.v 2>&1 | tee "$out/cudadrv.log" | grep -E "^(---|ok|FAIL|PASS)|CUDA device|no GPU"
timeout 60 ./device.test -test.v 2>&1 | tee "$out/device.log" | grep -E "^(---|ok|FAIL|PASS)|auto:|cuda:"

echo "== parity tests"
timeout 150 ./cuda.test -test.v -test.run . 2>&1 >"$out/parity.log"
prc=$?
grep -E "^(--- |ok|FAIL|PASS|panic)|not run" "$out/parity.log" | grep -v "^--- PASS: TestElementwise/" | head -80
echo "parity exit status: $prc"

echo "== benchmarks"
timeout 150 ./cuda.test -test.run '^$' -test.bench . -test.benchtime 300ms 2>&1 >"$out/bench.log"
echo "bench exit status: $?"

echo "== IMM DiT-S/2 training step, 32x32x3, batch 256 (both forward passes, backward, AdamW)"
for dev in cuda cuda-tf32; do
	IMMKIT_BENCH_DEVICE=$dev timeout 120 ./imm.test -test.run '^$' -test.bench 'DiTStep/S2-32x32x3-b256' -test.benchtime 20x 2>&1 |
		sed "s/^BenchmarkDiTStep/BenchmarkDiTStep-$dev/" | tee -a "$out/dit.log" | grep -E "^Benchmark|FAIL|panic|cuda:"
done
cat "$out/dit.log" >>"$out/bench.log"

echo "== PyTorch reference (mlp64 and dit-s2-32px lines of imm_torch_ref.py, eager and compiled)"
if [[ -f imm_torch_ref.py ]] && python3 -c "import torch" 2>/dev/null; then
	timeout 240 python3 -c '
import sys; sys.argv = ["imm_torch_ref.py"]
import imm_torch_ref as r, torch
print(torch.__version__, torch.cuda.get_device_name(), flush=True)
r.bench("mlp64-h1024x4 eager", r.MLP(), lambda B: torch.randn(B, 64, device=r.dev), 4096)
img = lambda B: torch.randn(B, 3, 32, 32, device=r.dev)
r.bench("dit-s2-32px eager", r.DiT(), img, 256)
r.bench("dit-s2-32px compiled", r.DiT(), img, 256, compile_=True)
' 2>&1 | tee "$out/torch.log"
else
	echo "not run: no imm_torch_ref.py or no python3 torch" | tee "$out/torch.log"
fi

fi
echo
echo "== table ($(head -2 "$out/card.txt" | tail -1))"
{
	printf "%-34s %-34s %10s %12s %12s %8s\n" op shape max-rel-err gpu-time GB/s-TFLOP/s %copy
	awk -F'\t' '/PARITY/ { sub(/.*PARITY\t/, ""); printf "%-34s %-34s %10s\n", $1, $2, $3 }' "$out/parity.log"
	awk '
	/^Benchmark/ {
		name = $1; sub(/^Benchmark/, "", name); sub(/-[0-9]+$/, "", name)
		ns = ""; rate = ""
		for (i = 2; i <= NF; i++) {
			if ($(i) == "ns/op") ns = $(i-1)
			if ($(i) == "MB/s") rate = sprintf("%.0f GB/s", $(i-1) / 1000)
			if ($(i) == "TFLOP/s") rate = sprintf("%.1f TFLOP/s", $(i-1))
			if ($(i) == "ms/step") rate = sprintf("%.2f ms/step", $(i-1))
		}
		if (name ~ /^Copy/) copy = $0
		t = (ns >= 1e6) ? sprintf("%.3f ms", ns / 1e6) : sprintf("%.1f us", ns / 1e3)
		rows[++n] = name; times[n] = t; rates[n] = rate
		if (rate ~ /GB\/s/) { split(rate, a, " "); gbs[n] = a[1] }
		if (name ~ /^Copy/) { split(rate, a, " "); copygbs = a[1] }
	}
	END {
		for (i = 1; i <= n; i++) {
			pct = (gbs[i] != "" && copygbs > 0) ? sprintf("%.0f%%", 100 * gbs[i] / copygbs) : ""
			printf "%-34s %-34s %10s %12s %12s %8s\n", rows[i], "", "", times[i], rates[i], pct
		}
	}' "$out/bench.log"
	grep -hE "mlp64|dit-s2" "$out/torch.log" | sed 's/^/pytorch: /'
} | tee "$out/table.txt"
if grep -q "GPU tests not run" "$out/parity.log"; then
	echo "GPU CHECK NOT RUN: $(grep -m1 'GPU tests not run' "$out/parity.log")"
	exit 2
fi
grep -E "^(FAIL|panic)" "$out/parity.log" "$out/bench.log" && exit 1
exit 0
