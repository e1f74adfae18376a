// Package device picks the compute backend for a --device flag: "cpu" (kernels/cpu),
// "cuda" (kernels/cuda, an NVIDIA GPU reached by dlopen, so the same binary runs where
// there is none; FP32 GEMMs), "cuda-tf32" (the same with TF32 tensor-core GEMMs),
// "cuda-bf16" (GEMM operands rounded to bf16, bf16 tensor cores, FP32 accumulation) or
// "auto" (the GPU with FP32 GEMMs when a usable one is present, else the CPU).
//
// A command wires it in with one line:
//
//	dev, why, err := device.Open(opts.Device, opts.Workers)
//
// and prints why (which backend was chosen and the reason) on its log.
package device

import (
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/immkit/immkit/kernels"
	"github.com/immkit/immkit/kernels/cpu"
	"github.com/immkit/immkit/kernels/cuda"
	"github.com/immkit/immkit/kernels/prof"
)

// Reporter is what Open returns when the environment variable IMMKIT_PROFILE is set
// (to anything but "" or "0"): the device wrapped by kernels/prof, which times every op
// and the host time between ops. Commands print the report at the end.
type Reporter interface {
	Report(w io.Writer, top int)
	Reset()
}

func profiled(d kernels.Device[float32], sync func() error) kernels.Device[float32] {
	if v := os.Getenv("IMMKIT_PROFILE"); v == "" || v == "0" {
		return d
	}
	return prof.Wrap(d, sync)
}

// Names are the values Open accepts.
var Names = []string{"auto", "cpu", "cuda", "cuda-tf32", "cuda-bf16"}

// Open returns the backend named by name (one of Names; "" means auto) and a
// one-line description of what was chosen and why. "cuda" without a usable GPU is an
// error whose one line says why (e.g. no libcuda.so.1, with the directories searched);
// "auto" then falls back to the CPU and says so in the description. A CPU device gets
// cpuWorkers goroutines (GOMAXPROCS when <= 0), the --workers of the command.
func Open(name string, cpuWorkers int) (kernels.Device[float32], string, error) {
	if cpuWorkers <= 0 {
		cpuWorkers = runtime.GOMAXPROCS(0)
	}
	switch name {
	case "cpu":
		return profiled(cpu.New[float32](cpuWorkers), nil), fmt.Sprintf("cpu: %d workers (requested --device cpu)", cpuWorkers), nil
	case "cuda", "cuda-tf32", "cuda-bf16":
		d, err := cuda.New(cuda.Options{TF32: name == "cuda-tf32", BF16: name == "cuda-bf16"})
		if err != nil {
			return nil, "", fmt.Errorf("device: --device %s: %w", name, err)
		}
		return profiled(d, d.Sync), "cuda: " + d.Describe() + " (requested --device " + name + ")", nil
	case "auto", "":
		d, err := cuda.New(cuda.Options{})
		if err == nil {
			return profiled(d, d.Sync), "cuda: " + d.Describe() + " (--device auto found a GPU)", nil
		}
		return profiled(cpu.New[float32](cpuWorkers), nil), fmt.Sprintf("cpu: %d workers (--device auto: no usable GPU: %v)", cpuWorkers, err), nil
	}
	return nil, "", fmt.Errorf("device: unknown device %q (want auto, cpu, cuda, cuda-tf32 or cuda-bf16)", name)
}
