package toy

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immkit/immkit/imm"
	"github.com/immkit/immkit/kernels/cpu"
)

// bruteEnergy is the energy distance written as three plain double loops.
func bruteEnergy(x, y []float64) float64 {
	d := func(a, b []float64, i, j int) float64 {
		return math.Hypot(a[2*i]-b[2*j], a[2*i+1]-b[2*j+1])
	}
	nx, ny := len(x)/2, len(y)/2
	var xy, xx, yy float64
	for i := 0; i < nx; i++ {
		for j := 0; j < ny; j++ {
			xy += d(x, y, i, j)
		}
	}
	for i := 0; i < nx; i++ {
		for j := 0; j < nx; j++ {
			if i != j {
				xx += d(x, x, i, j)
			}
		}
	}
	for i := 0; i < ny; i++ {
		for j := 0; j < ny; j++ {
			if i != j {
				yy += d(y, y, i, j)
			}
		}
	}
	return xy/float64(nx*ny) - 0.5*xx/float64(nx*(nx-1)) - 0.5*yy/float64(ny*(ny-1))
}

func TestEnergyDistance(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float64, 2*150)
	y := make([]float64, 2*170)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	for i := range y {
		y[i] = 0.8*rng.NormFloat64() + 0.3
	}
	for _, w := range []int{1, 3} {
		got, want := EnergyDistance(x, y, 2, w), bruteEnergy(x, y)
		if math.Abs(got-want) > 1e-12 {
			t.Fatalf("workers %d: energy distance %v, brute force %v", w, got, want)
		}
	}
	if e := EnergyDistance(x, y, 2, 2); e < 0.01 {
		t.Fatalf("energy distance between different distributions %v, want clearly positive", e)
	}
}

func TestDatasetsScaled(t *testing.T) {
	for _, name := range Names() {
		ds, err := NewDataset(name, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		x := ds.Sample(rand.New(rand.NewPCG(9, 9)), 50000)
		var m [2]float64
		for i, v := range x {
			m[i%2] += v / 50000
		}
		var v2 float64
		for i, v := range x {
			v2 += (v - m[i%2]) * (v - m[i%2]) / 100000
		}
		if math.Abs(m[0]) > 0.02 || math.Abs(m[1]) > 0.02 || math.Abs(math.Sqrt(v2)-0.5) > 0.01 {
			t.Errorf("%s: mean %v std %v, want 0 and 0.5", name, m, math.Sqrt(v2))
		}
	}
	if _, err := NewDataset("spiral", 0.5); err == nil || !strings.Contains(err.Error(), "unknown dataset") {
		t.Fatalf("unknown dataset: err = %v", err)
	}
}

func TestNPYHeader(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.npy")
	if err := writeNPY(p, []float64{1, 2, 3, 4, 5, 6}, 2); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if !bytes.HasPrefix(b, []byte("\x93NUMPY\x01\x00")) {
		t.Fatalf("bad magic %q", b[:8])
	}
	hl := int(b[8]) | int(b[9])<<8
	if (10+hl)%64 != 0 || b[10+hl-1] != '\n' {
		t.Fatalf("header length %d not aligned to 64 or not newline-terminated", hl)
	}
	if h := string(b[10 : 10+hl]); !strings.Contains(h, "'shape': (3, 2)") || !strings.Contains(h, "'<f4'") {
		t.Fatalf("header %q", h)
	}
	if len(b) != 10+hl+6*4 {
		t.Fatalf("file length %d", len(b))
	}
}

func smallOptions(out string) Options {
	o := DefaultOptions()
	o.Out, o.Width, o.Depth, o.Freq, o.Batch, o.Steps, o.EvalN = out, 16, 1, 8, 64, 24, 200
	o.IMMSteps, o.FMSteps, o.SaveEvery, o.Workers = []int{1, 2}, []int{1, 4}, 8, 2
	return o
}

// TestRunAndResume runs a tiny toy training, checks its outputs, then interrupts a second
// run, resumes it, and compares the final weights with the uninterrupted run.
func TestRunAndResume(t *testing.T) {
	dir := t.TempDir()
	full := smallOptions(filepath.Join(dir, "full"))
	sum, err := Run(context.Background(), full)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"metrics.jsonl", "loss.png", "grid.png", "summary.json", "data.npy",
		"samples_imm_1.png", "samples_imm_2.npy", "samples_fm_4.png", "imm.safetensors", "fm.safetensors"} {
		if st, err := os.Stat(filepath.Join(full.Out, f)); err != nil || st.Size() == 0 {
			t.Errorf("output %s missing or empty: %v", f, err)
		}
	}
	var disk Summary
	b, _ := os.ReadFile(filepath.Join(full.Out, "summary.json"))
	if err := json.Unmarshal(b, &disk); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []string{"imm", "fm"} {
		for k, v := range sum.Results[obj].Energy {
			if disk.Results[obj].Energy[k] != v || !(v > 0) {
				t.Errorf("%s energy[%s]: summary.json %v, returned %v", obj, k, disk.Results[obj].Energy[k], v)
			}
		}
	}
	lines := bytes.Count(mustRead(t, filepath.Join(full.Out, "metrics.jsonl")), []byte("\n"))
	if lines != 2*full.Steps {
		t.Errorf("metrics.jsonl has %d lines, want %d", lines, 2*full.Steps)
	}

	// Interrupt after the first checkpoint of imm, then resume.
	part := smallOptions(filepath.Join(dir, "part"))
	part.Objectives = []string{"imm"}
	full2 := smallOptions(filepath.Join(dir, "full2"))
	full2.Objectives = []string{"imm"}
	if _, err := Run(context.Background(), full2); err != nil {
		t.Fatal(err)
	}
	// The first progress line (step 2) cancels the run, which saves a checkpoint and fails.
	ctx, cancel := context.WithCancel(context.Background())
	part.Log = cancelWriter(cancel)
	if _, err := Run(ctx, part); err == nil || !strings.Contains(err.Error(), "interrupted at step") {
		t.Fatalf("interrupted run: err = %v", err)
	}
	part.Log, part.Resume = nil, true
	if _, err := Run(context.Background(), part); err != nil {
		t.Fatal(err)
	}
	a, err := imm.Load(cpu.New[float32](1), filepath.Join(full2.Out, "imm.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := imm.Load(cpu.New[float32](1), filepath.Join(part.Out, "imm.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Step != c.Step {
		t.Fatalf("steps %d and %d", a.Step, c.Step)
	}
	for i, p := range a.Net.Reg.Params {
		x, y := cpu.Data[float32](p.W), cpu.Data[float32](c.Net.Reg.Params[i].W)
		for j := range x {
			if x[j] != y[j] {
				t.Fatalf("%s[%d]: resumed %v, uninterrupted %v", p.Name, j, y[j], x[j])
			}
		}
	}
	lines = bytes.Count(mustRead(t, filepath.Join(part.Out, "metrics.jsonl")), []byte("\n"))
	if lines != full2.Steps {
		t.Errorf("resumed metrics.jsonl has %d lines, want %d", lines, full2.Steps)
	}
}

type cancelWriter context.CancelFunc

func (c cancelWriter) Write(p []byte) (int, error) { c(); return len(p), nil }

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOptionsValidate(t *testing.T) {
	bad := []func(*Options){
		func(o *Options) { o.Dataset = "mnist" },
		func(o *Options) { o.Objectives = []string{"gan"} },
		func(o *Options) { o.Objectives = nil },
		func(o *Options) { o.IMMSteps = []int{0} },
		func(o *Options) { o.EvalN = 1 },
	}
	for i, f := range bad {
		o := DefaultOptions()
		f(&o)
		if o.Validate() == nil {
			t.Errorf("case %d accepted", i)
		}
	}
	o := smallOptions(t.TempDir())
	o.Batch = 30 // not a multiple of M = 4
	if _, err := Run(context.Background(), o); err == nil {
		t.Error("batch 30 with M = 4 accepted")
	}
}
