package run

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immkit/immkit/imm"
	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels/cpu"
)

func src(rng *rand.Rand, rows int) ([]float32, []int32) {
	x := make([]float32, 2*rows)
	for i := range x {
		x[i] = float32(0.5 * rng.NormFloat64())
	}
	return x, nil
}

// Save keeps the newest checkpoints; LoadNewest falls back past a corrupted newest one
// and reports it, and fails naming every file when none is good.
func TestCheckpointFallback(t *testing.T) {
	c := Checkpoints{Dir: filepath.Join(t.TempDir(), "ckpt"), Keep: 2}
	tr, err := imm.NewTrainer(cpu.New[float32](1), imm.DefaultConfig(),
		imm.TrainConfig{Objective: "imm", Batch: 8, LR: 1e-3, Seed: 1}, nn.MLPConfig{Arch: "mlp", Dim: 2, Width: 8, Depth: 1, Freq: 4})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		tr.TrainStep(src)
		if _, err := Save(c, tr); err != nil {
			t.Fatal(err)
		}
	}
	list, _ := c.List()
	if len(list) != 2 || list[0] != c.Path(3) || list[1] != c.Path(2) {
		t.Fatalf("kept %v, want steps 3 and 2", list)
	}
	if b, _ := os.ReadFile(filepath.Join(c.Dir, "latest")); strings.TrimSpace(string(b)) != "step-000003.safetensors" {
		t.Fatalf("latest = %q", b)
	}
	raw, _ := os.ReadFile(c.Path(3))
	raw[len(raw)-1] ^= 0x40
	os.WriteFile(c.Path(3), raw, 0o644)
	var skipped []string
	got, path, err := LoadNewest(c, cpu.New[float32](1), func(p string, err error) { skipped = append(skipped, p) })
	if err != nil {
		t.Fatal(err)
	}
	if path != c.Path(2) || got.Step != 2 || len(skipped) != 1 || skipped[0] != c.Path(3) {
		t.Fatalf("loaded %s (step %d), skipped %v; want step 2 after skipping step 3", path, got.Step, skipped)
	}
	os.WriteFile(c.Path(2), raw[:100], 0o644)
	_, _, err = LoadNewest(c, cpu.New[float32](1), nil)
	if err == nil || !strings.Contains(err.Error(), c.Path(2)) || !strings.Contains(err.Error(), c.Path(3)) {
		t.Fatalf("err = %v, want both files named", err)
	}
	if _, _, err := LoadNewest(Checkpoints{Dir: t.TempDir()}, cpu.New[float32](1), nil); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("empty dir: %v", err)
	}
}

func TestMetricsRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.jsonl")
	l, err := AppendMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	nan := 0.0
	nan /= nan
	for i, r := range []Record{{Step: 1, Loss: 0.5, GradNorm: 1}, {Step: 2, Loss: nan, Skipped: true}, {Step: 3, Loss: 0.25}} {
		if err := l.Add(r); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"step": 4, "lo`) // torn line after a kill
	f.Close()
	rs, err := ReadMetrics(p)
	if err != nil || len(rs) != 3 || rs[1].NonFinite == "" || rs[1].Loss != 0 || rs[2].Loss != 0.25 {
		t.Fatalf("read %+v, %v", rs, err)
	}
	if err := LossPNG(filepath.Join(t.TempDir(), "loss.png"), rs, func(string) string { return "IMM" }); err != nil {
		t.Fatal(err)
	}
}

// TestLossPNGShortRuns plots runs of one step and of no usable step: gonum pads a
// single-value range below zero, where its log axis panicked (immtrain multimodal
// --steps 1 crashed at the end of training).
func TestLossPNGShortRuns(t *testing.T) {
	for name, rs := range map[string][]Record{
		"one step":     {{Step: 1, Loss: 0.05}},
		"equal losses": {{Step: 1, Loss: 0.05}, {Step: 2, Loss: 0.05}},
		"none usable":  {{Step: 1, Loss: 0, Skipped: true}},
		"empty":        nil,
	} {
		p := filepath.Join(t.TempDir(), "loss.png")
		if err := LossPNG(p, rs, func(string) string { return "IMM" }); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Fatalf("%s: no plot written (%v)", name, err)
		}
	}
}
