package encoders_test

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/immkit/immkit/encoders"
	"github.com/immkit/immkit/internal/testenv"
	"github.com/immkit/immkit/pipeline"
)

// TestKillResume builds immdata, SIGKILLs `immdata encode` at random moments, reruns it with
// --resume until it finishes, and checks the parts equal those of an uninterrupted run.
func TestKillResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it several times")
	}
	goBin := testenv.LookPath(t, "go", "install Go")
	bin := filepath.Join(t.TempDir(), "immdata")
	build := exec.Command(goBin, "build", "-o", bin, "github.com/immkit/immkit/cmd/immdata")
	build.Dir = testenv.RepoRoot(t)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	_, in, _ := corpus(t, 120)
	c := encoders.Config{Seed: 1}.Defaults()
	ref := filepath.Join(t.TempDir(), "ref")
	encode(t, in, ref, c, pipeline.Partition{}, 2)
	want := partBytes(t, ref)

	// fit once per output with the CLI, so that kills land in the encoding; time one
	// uninterrupted CLI encode to choose kill moments
	fit := func(out string) {
		if b, err := exec.Command(bin, "fit", in, "-o", out, "--seed", "1").CombinedOutput(); err != nil {
			t.Fatalf("fit: %v\n%s", err, b)
		}
	}
	timed := filepath.Join(t.TempDir(), "timed")
	fit(timed)
	start := time.Now()
	if b, err := exec.Command(bin, "encode", in, "-o", timed, "--seed", "1", "--quiet").CombinedOutput(); err != nil {
		t.Fatalf("encode: %v\n%s", err, b)
	}
	full := time.Since(start)
	sameFiles(t, "CLI run", want, partBytes(t, timed))

	rng := rand.New(rand.NewPCG(42, 1))
	partial := 0
	for trial := 0; trial < 3 || (partial == 0 && trial < 8); trial++ {
		out := filepath.Join(t.TempDir(), "out")
		fit(out)
		kills := 0
		for attempt := 0; ; attempt++ {
			if attempt > 20 {
				t.Fatalf("trial %d: no finished run after 20 attempts", trial)
			}
			args := []string{"encode", in, "-o", out, "--seed", "1", "--quiet", "--fit=false"}
			if attempt > 0 {
				args = append(args, "--resume")
			}
			cmd := exec.Command(bin, args...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			if kills < 3 {
				d := time.Duration((0.2 + 0.8*rng.Float64()) * float64(full))
				select {
				case err = <-done:
				case <-time.After(d):
					_ = cmd.Process.Signal(syscall.SIGKILL)
					<-done
					kills++
					if b, err := os.ReadFile(filepath.Join(out, "progress", "worker-0.json")); err == nil {
						partial++
						t.Logf("trial %d: killed after %v; progress file %d bytes", trial, d, len(b))
					}
					continue
				}
			} else {
				err = <-done
			}
			if err != nil {
				t.Fatalf("trial %d attempt %d: %v", trial, attempt, err)
			}
			break
		}
		sameFiles(t, "killed and resumed", want, partBytes(t, out))
		if _, err := os.Stat(filepath.Join(out, encoders.StateFile)); err != nil {
			t.Fatal(err)
		}
	}
	if partial == 0 {
		t.Fatal("no kill landed after the first committed part: the test did not exercise resume")
	}
	t.Logf("uninterrupted CLI run %v; %d kills left committed parts behind", full, partial)
}
