package main

import (
	"strings"
	"testing"

	"github.com/immkit/immkit/internal/cli"
	"github.com/immkit/immkit/internal/cudadrv"
)

func TestHelpListsCommands(t *testing.T) {
	out, _, code := cli.Run(newRootCmd, "--help")
	if code != 0 {
		t.Fatalf("--help exited %d", code)
	}
	for _, name := range []string{"toy", "multimodal", "sample", "eval", "version"} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == name {
				found = true
			}
		}
		if !found {
			t.Errorf("immtrain --help does not list %q with a description:\n%s", name, out)
		}
	}
}

// Without a usable GPU, --device cuda must fail at once with a one-line reason.
func TestToyDeviceCudaWithoutGPU(t *testing.T) {
	if _, err := cudadrv.Open(); err == nil {
		t.Skip("a CUDA device is present: this test is about machines without one")
	}
	_, errOut, code := cli.Run(newRootCmd, "toy", "--device", "cuda", "--out", t.TempDir(), "--steps", "1")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, errOut)
	}
	if lines := strings.Count(strings.TrimSpace(errOut), "\n") + 1; lines != 1 || !strings.Contains(errOut, "cuda") {
		t.Errorf("want one line naming cuda, got %d lines: %q", lines, errOut)
	}
}
