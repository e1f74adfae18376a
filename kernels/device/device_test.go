package device

import (
	"strings"
	"testing"

	"github.com/immkit/immkit/internal/cudadrv"
)

func TestOpen(t *testing.T) {
	_, gpuErr := cudadrv.Open()

	d, why, err := Open("cpu", 2)
	if err != nil || d.Name() != "cpu" || !strings.HasPrefix(why, "cpu: 2 workers") {
		t.Fatalf("Open(cpu) = %v, %q, %v", d, why, err)
	}

	d, why, err = Open("auto", 2)
	if err != nil {
		t.Fatalf("Open(auto): %v", err)
	}
	t.Logf("auto: %s", why)
	want := "cuda"
	if gpuErr != nil {
		want = "cpu"
		if !strings.Contains(why, "no usable GPU") || !strings.Contains(why, gpuErr.Error()) {
			t.Errorf("auto fell back without the reason: %q", why)
		}
	}
	if d.Name() != want || !strings.HasPrefix(why, want+": ") {
		t.Errorf("auto chose %s (%q), want %s", d.Name(), why, want)
	}

	d, why, err = Open("cuda", 2)
	if gpuErr != nil {
		if err == nil {
			t.Fatalf("Open(cuda) without a GPU succeeded: %q", why)
		}
		msg := err.Error()
		t.Logf("cuda: %s", msg)
		if strings.Contains(msg, "\n") || !strings.Contains(msg, "--device cuda") || !strings.Contains(msg, gpuErr.Error()) {
			t.Errorf("Open(cuda) error is not the one-line reason: %q", msg)
		}
	} else if err != nil || d.Name() != "cuda" {
		t.Errorf("Open(cuda) with a GPU: %v, %v", d, err)
	}

	if _, _, err := Open("cuda-tf32", 2); (err == nil) != (gpuErr == nil) {
		t.Errorf("Open(cuda-tf32) error %v with GPU error %v", err, gpuErr)
	}
	if _, _, err := Open("tpu", 2); err == nil || !strings.Contains(err.Error(), `"tpu"`) {
		t.Errorf("Open(tpu) error = %v", err)
	}
}
