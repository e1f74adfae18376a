#!/usr/bin/env bash
# GPU check of kernels/cuda (docs/cuda.md).
#
#   bash scripts/gpu-check.sh          on the build machine (Go, no GPU needed): compiles the
#                                      GPU test/benchmark binaries into gpu-bin/ with the
#                                      PyTorch reference beside them, prints the run command.
#   bash scripts/gpu-check.sh --run    on the GPU machine (no Go, no network): parity tests,
#                                      benchmarks and the PyTorch mlp64 line, then one table.
#                                      Under 7 minutes; results also go to $OUT if it is set.
#   GPU_CHECK_MNIST=out/mnist bash scripts/gpu-check.sh
#                                      also packs the MNIST ingest output and classifier of
#                                      `scripts/mnist.sh out/mnist --data-only` and immtrain; the
#                                      run then encodes it (28x28 grey), trains the class-conditional
#                                      model on the GPU with the MNIST recipe for MNIST_SECONDS
#                                      (default 150; SIGINT writes a checkpoint) and scores
#                                      1/2/4/8-step samples (docs/eval.md).
#                                      Also an `immtrain toy` run on the GPU (energy distances).
#   GPU_CHECK_DEMO=1 (on the --run)     also `immtrain multimodal --demo` with the GPU defaults
#                                      until the budget runs out, then its eval.
#   GPU_CHECK_DRY=1 (on the --run)      a rehearsal on the CUDA emulator (docs/cuda.md): with
#                                      IMMKIT_CUDA_LIB_DIR pointing at it, runs every part with
#                                      one-iteration benchmarks on small shapes, so the script,
#                                      its flags and its table are checked before GPU minutes
#                                      are spent (the figures mean nothing).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/gpu-bin"

if [[ "${1:-}" != "--run" ]]; then
	set -e
	rm -rf "$bin" && mkdir -p "$bin"
	cd "$root"
	CGO_ENABLED=1 go test -c -o "$bin/cuda.test" ./kernels/cuda
	CGO_ENABLED=1 go test -c -o "$bin/cudadrv.test" ./internal/cudadrv
	CGO_ENABLED=1 go test -c -o "$bin/device.test" ./kernels/device
	CGO_ENABLED=1 go test -c -o "$bin/imm.test" ./imm
	# immdata and immtrain for the toy and MNIST runs. Binaries are xz-compressed: a Go 1.26
	# binary holds 32 MiB of zero bytes (crypto/internal/fips140/drbg.memory), and the
	# carried tree is limited to 64 MiB.
	CGO_ENABLED=1 go build -ldflags="-s -w" -o "$bin/" ./cmd/immtrain ./cmd/immdata
	rm -f "$bin"/*.xz "$bin/mnist.tar"
	xz -f -T2 -6 "$bin"/*.test "$bin/immtrain" "$bin/immdata"
	if [[ -n "${GPU_CHECK_MNIST:-}" ]]; then # the ingested PNGs (encode and shard run there)
		tar -C "$GPU_CHECK_MNIST" -cf "$bin/mnist.tar" ingested classifier.safetensors
	fi
	du -sh "$bin"
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
# Results go to gpu-bin/results; with $OUT set (the device tool), they are also packed into
# $OUT/results.tgz beside $OUT/table.txt (the tool brings back at most 8 files).
out="$bin/results"
if [[ -n "${GPU_CHECK_TABLE_ONLY:-}" ]]; then # re-print the table of an earlier run's results
	mkdir -p "$out"
	[[ -f "$out/parity.log" || ! -f "${OUT:-/nonexistent}/results.tgz" ]] || tar -C "$out" -xzf "$OUT/results.tgz"
else
	rm -rf "$out" && mkdir -p "$out"
fi
pack() {
	if [[ -n "${OUT:-}" && -d "$OUT" ]]; then
		tar -C "$out" -czf "$OUT/results.tgz" . && cp "$out/table.txt" "$OUT/" 2>/dev/null
	fi
}
trap pack EXIT
[[ -d "$bin" ]] || { echo "gpu-check: $bin missing; build it first"; exit 1; }
work=/tmp/immkit-gpu-check # binaries unpacked here, not in the carried gpu-bin/
rm -rf "$work" && mkdir -p "$work" && cp "$bin"/* "$work/" 2>/dev/null
cd "$work" || exit 1
# The MNIST training gets what is left of GPU_CHECK_BUDGET seconds (default 420) after
# the other parts, at most MNIST_SECONDS, keeping 45 s for its evaluation.
deadline=$(($(date +%s) + ${GPU_CHECK_BUDGET:-420}))
unxz_() { if command -v xz >/dev/null; then xz -dc "$1"; else
	python3 -c 'import lzma, sys; sys.stdout.buffer.write(lzma.decompress(open(sys.argv[1], "rb").read()))' "$1"; fi; }
for z in *.xz; do unxz_ "$z" >"${z%.xz}" && chmod +x "${z%.xz}" && rm -f "$z"; done
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
if [[ -z "${GPU_CHECK_TABLE_ONLY:-}" ]]; then # set it to re-print the table of $OUT
echo "== commit $(cat commit 2>/dev/null)"
echo "== card"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee "$out/card.txt"

if [[ -x immtrain ]]; then
	echo "== immtrain toy 8gaussians on the GPU (in the background while the parity tests run)"
	(timeout 150 ./immtrain toy --dataset 8gaussians --device cuda --out /tmp/toy-gpu >"$out/toy.log" 2>&1
		echo "toy exit status: $?" >>"$out/toy.log"
		cp /tmp/toy-gpu/summary.json "$out/toy-summary.json" 2>/dev/null) &
	toypid=$!
fi
m=/tmp/mnist-gpu
if [[ -f mnist.tar && -x immdata ]]; then
	echo "== MNIST encode + shard (in the background)"
	(rm -rf "$m" && mkdir -p "$m" && tar -C "$m" -xf mnist.tar &&
		./immdata encode "$m/ingested" -o "$m/encoded" --image-encoder pixels --image-size 28 --image-gray \
			--audio-encoder none --text-encoder none --label-encoder labels --quiet &&
		./immdata shard "$m/encoded" -o "$m/shards" --val-fraction 0.02 --seed 1 --quiet) >"$out/mnist-data.log" 2>&1 &
	mnistpid=$!
fi
echo "== driver shim and device choice"
timeout 60 ./cudadrv.test -test.v 2>&1 | tee "$out/cudadrv.log" | grep -E "^(---|ok|FAIL|PASS)|CUDA device|no GPU"
timeout 60 ./device.test -test.v 2>&1 | tee "$out/device.log" | grep -E "^(---|ok|FAIL|PASS)|auto:|cuda:"

# GPU_CHECK_DRY: the emulator runs the parity tests in minutes and a benchmark iteration
# of a large shape in hours; benchmarks then run once, on the small shapes only.
dry="${GPU_CHECK_DRY:-}"
bench_res=('^[^D]' DiTFootprint) benchtime=200ms dit_bench='DiTStep/S2-32x32x3-b256' dit_n=20x prof_n=3x parity_limit=120
if [[ -n "$dry" ]]; then
	bench_res=(Copy 'Elementwise/^Mul/' 'Gemm/^fp32$/^4096x1024x1024$') benchtime=1x dit_bench='DiTStep/tiny' dit_n=1x prof_n=1x parity_limit=600
fi
echo "== parity tests"
timeout "$parity_limit" ./cuda.test -test.v -test.run . 2>&1 >"$out/parity.log"
prc=$?
grep -E "^(--- |ok|FAIL|PASS|panic)|not run" "$out/parity.log" | grep -v "^--- PASS: TestElementwise/" | head -80
echo "parity exit status: $prc"

if [[ -n "${toypid:-}" ]]; then
	wait "$toypid"
	tail -4 "$out/toy.log"
fi

echo "== benchmarks"
: >"$out/bench.log"
for re in "${bench_res[@]}"; do
	timeout 150 ./cuda.test -test.run '^$' -test.bench "$re" -test.benchtime "$benchtime" 2>&1 >>"$out/bench.log"
	echo "bench exit status: $?"
done

echo "== IMM DiT-S/2 training step, 32x32x3, batch 256 (both forward passes, backward, AdamW)"
# -nolt: without cuBLASLt (bias, GELU and its gradient as separate ops); -flash: the
# fused bf16 attention kernels (IMMKIT_CUDA_ATTN=flash); -nokeep: bf16 GEMMs rounding
# their operands in each product instead of the layers' kept copies (IMMKIT_CUDA_BF16_KEEP=0);
# -noout: kept operands, but FC1 writing float32 rather than bf16 (IMMKIT_CUDA_BF16_OUT=0)
for run in cuda cuda-tf32 cuda-bf16 cuda-tf32-nolt cuda-bf16-nolt cuda-bf16-nokeep cuda-bf16-noout cuda-tf32-flash cuda-bf16-flash; do
	dev=${run%-nolt} lt=1 attn=gemm keep=1 bf16out=1
	dev=${dev%-flash}
	dev=${dev%-nokeep}
	dev=${dev%-noout}
	[[ $run == *-nolt ]] && lt=0
	[[ $run == *-flash ]] && attn=flash
	[[ $run == *-nokeep ]] && keep=0
	[[ $run == *-noout ]] && bf16out=0
	IMMKIT_CUDA_BF16_OUT=$bf16out IMMKIT_CUDA_BF16_KEEP=$keep IMMKIT_CUDA_ATTN=$attn IMMKIT_CUDA_LT=$lt IMMKIT_BENCH_DEVICE=$dev timeout 60 ./imm.test -test.run '^$' -test.bench "$dit_bench" -test.benchtime "$dit_n" 2>&1 |
		sed "s/^BenchmarkDiTStep/BenchmarkDiTStep-$run/" | tee -a "$out/dit.log" | grep -E "^Benchmark|FAIL|panic|cuda:"
done
echo "== the same, cuda-tf32, with IMMKIT_PROFILE=1 (each op synchronised and timed: shares, not speed)"
IMMKIT_PROFILE=1 IMMKIT_BENCH_DEVICE=cuda-tf32 timeout 60 ./imm.test -test.run '^$' -test.bench "$dit_bench" -test.benchtime "$prof_n" >"$out/dit-prof.log" 2>&1
grep -E "^prof: +[0-9]" "$out/dit-prof.log" | head -25
cat "$out/dit.log" >>"$out/bench.log"

echo "== PyTorch reference (mlp64 and dit-s2-32px lines of imm_torch_ref.py, eager and compiled)"
if [[ -z "$dry" && -f imm_torch_ref.py ]] && python3 -c "import torch" 2>/dev/null; then
	timeout 180 python3 -c '
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

if [[ -n "${mnistpid:-}" ]] && wait "$mnistpid"; then
	secs="${MNIST_SECONDS:-150}"
	left=$((deadline - $(date +%s) - 45))
	((left < secs)) && secs=$left
	((secs < 20)) && secs=20
	echo "== MNIST: class-conditional ${MNIST_SIZE:-small} DiT on the GPU for ${secs}s (${MNIST_DEVICE:-cuda-tf32}), then eval"
	# the MNIST recipe of scripts/mnist.sh (docs/eval.md) at batch 256, until the time limit
	# (SIGINT writes a checkpoint) or MNIST_STEPS
	timeout -s INT "$secs" ./immtrain --quiet multimodal --data "$m/shards" --out "$m/run" --modalities image \
		--size "${MNIST_SIZE:-small}" --steps "${MNIST_STEPS:-1000000}" --device "${MNIST_DEVICE:-cuda-tf32}" --eval-every 0 --ckpt-every 2000 \
		--param identity --group-labels --cfg 3 ${MNIST_FLAGS:---batch 256 --image-patch 7 --lr 3e-3} >"$out/mnist-train.log" 2>&1
	echo "train exit status: $? (124/130: stopped by the time limit, as planned)"
	tail -3 "$out/mnist-train.log"
	timeout 90 ./immtrain --quiet eval --run "$m/run" --mnist-classifier "$m/classifier.safetensors" --n 256 --device "${MNIST_DEVICE:-cuda-tf32}" 2>&1 | tee "$out/mnist-eval.log" | tail -12
	cp "$m/run/eval.json" "$out/mnist-eval.json" 2>/dev/null
	cp "$m/run/summary.json" "$out/mnist-summary.json" 2>/dev/null
	cp "$m/run/metrics.jsonl" "$out/mnist-metrics.jsonl" 2>/dev/null
	ls -R "$m/run" >"$out/mnist-run-files.txt" 2>&1
	timeout 60 ./immtrain --quiet sample --run "$m/run" --steps 1,2,4,8 --n 10 --out "$m/sheet" --device "${MNIST_DEVICE:-cuda-tf32}" >"$out/mnist-sample.log" 2>&1
	find "$m/sheet" -name '*.png' -size -4M -exec cp {} "$out/" \; 2>/dev/null
fi

fi
if [[ -n "${GPU_CHECK_DEMO:-}" && -x immtrain ]]; then
	secs=$((deadline - $(date +%s) - 60))
	((secs < 30)) && secs=30
	echo "== immtrain multimodal --demo on the GPU for at most ${secs}s (GPU defaults), then eval"
	timeout -s INT "$secs" ./immtrain --quiet multimodal --demo --out /tmp/demo-gpu --device cuda-tf32 >"$out/demo-train.log" 2>&1
	echo "demo exit status: $? (124/130: stopped by the time limit)"
	tail -3 "$out/demo-train.log"
	timeout 50 ./immtrain --quiet eval --run /tmp/demo-gpu --n 64 --device cuda-tf32 2>&1 | tee "$out/demo-eval.log" | tail -16
	find /tmp/demo-gpu/samples -name grid.png | sort | tail -1 | xargs -r -I{} cp {} "$out/demo-grid.png"
fi

echo
echo "== table ($(head -2 "$out/card.txt" | tail -1))"
{
	printf "%-34s %-34s %10s %12s %12s %8s\n" op shape max-rel-err gpu-time GB/s-TFLOP/s %copy
	awk -F'\t' '/PARITY/ { sub(/.*PARITY\t/, ""); printf "%-34s %-34s %10s\n", $1, $2, $3 }' "$out/parity.log"
	awk '
	/^Benchmark/ {
		name = $1; sub(/^Benchmark/, "", name); sub(/-[0-9]+$/, "", name)
		ns = ""; rate = ""; mem = ""
		for (i = 2; i <= NF; i++) {
			if ($(i) == "GiB-peak") mem = sprintf(", %.1f GiB peak", $(i-1))
			if ($(i) == "GiB@256") mem = sprintf("%.1f GiB at b256", $(i-1)) mem
			if ($(i) == "G-rounded@256") mem = mem sprintf(", %.2f G bf16", $(i-1))
			if ($(i) == "ns/op") ns = $(i-1)
			if ($(i) == "MB/s") rate = sprintf("%.0f GB/s", $(i-1) / 1000)
			if ($(i) == "TFLOP/s") rate = sprintf("%.1f TFLOP/s", $(i-1))
			if ($(i) == "ms/step") rate = sprintf("%.2f ms/step", $(i-1))
		}
		rate = rate mem
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
