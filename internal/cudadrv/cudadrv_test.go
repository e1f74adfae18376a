package cudadrv

import (
	"errors"
	"strings"
	"testing"
)

// TestOpenReport checks what Open says: on a machine without a driver the error names
// libcuda.so.1 and every directory searched; with a driver it names the device.
func TestOpenReport(t *testing.T) {
	c, err := Open()
	if err == nil {
		if c.Name == "" || c.TotalMem <= 0 || c.Capability < 30 {
			t.Fatalf("driver loaded but device looks wrong: %+v", c)
		}
		t.Logf("CUDA device %s (cc %d, driver %d, %d MiB) via %s and %s; cuBLASLt: %q (%v)", c.Name, c.Capability, c.Driver, c.TotalMem>>20, c.DriverLib, c.CUBLASLib, c.LtLib, c.Lt())
		return
	}
	msg := err.Error()
	t.Logf("no GPU: %s", msg)
	if !errors.Is(err, ErrNoDriver) && !errors.Is(err, ErrNoDevice) && !errors.Is(err, ErrNoCUBLAS) {
		t.Fatalf("error %q wraps none of ErrNoDriver, ErrNoDevice, ErrNoCUBLAS", msg)
	}
	if errors.Is(err, ErrNoDriver) && strings.Contains(msg, "cannot load") {
		for _, want := range append([]string{"libcuda.so.1"}, SearchDirs()...) {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not name %q", msg, want)
			}
		}
	}
	if strings.Count(msg, "\n") != 0 {
		t.Errorf("error is not one line: %q", msg)
	}
}

// TestLoadMissing checks the message for a library that is nowhere (whether or not this
// machine has a driver): it names the library, every directory searched, and the
// IMMKIT_CUDA_LIB_DIR directory first.
func TestLoadMissing(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("IMMKIT_CUDA_LIB_DIR", dir)
	_, err := loadCUDA([]string{"libimmkit-absent.so.1"})
	if err == nil || !errors.Is(err, ErrNoDriver) {
		t.Fatalf("loading an absent library: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"libimmkit-absent.so.1", dir, "(loader path)", "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	if strings.Index(msg, dir) > strings.Index(msg, "(loader path)") {
		t.Errorf("IMMKIT_CUDA_LIB_DIR is not searched first: %q", msg)
	}
}
