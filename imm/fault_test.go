package imm

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels/cpu"
)

// nanSource is ringSource with one coordinate replaced by value on the calls listed in bad
// (counted from 1).
func nanSource(value float32, bad map[int]bool) Source[float32] {
	calls := 0
	return func(rng *rand.Rand, rows int) ([]float32, []int32) {
		calls++
		x, l := ringSource(rng, rows)
		if bad[calls] {
			x[3] = value
		}
		return x, l
	}
}

func snapshot(tr *Trainer[float32]) [][]float32 { return weights(tr) }

func sameWeights(a, b [][]float32) bool {
	for i := range a {
		for j := range a[i] {
			if math.Float32bits(a[i][j]) != math.Float32bits(b[i][j]) {
				return false
			}
		}
	}
	return true
}

// A NaN or Inf in the data makes the loss non-finite: the step is skipped (weights, EMA,
// Adam moments and Adam's step count unchanged), counted, and training goes on.
func TestNonFiniteStepSkipped(t *testing.T) {
	mc := nn.MLPConfig{Arch: "mlp", Dim: 2, Width: 16, Depth: 2, Freq: 8}
	for _, v := range []float32{float32(math.NaN()), float32(math.Inf(1))} {
		tc := TrainConfig{Objective: "imm", Batch: 32, LR: 1e-3, Clip: 1, EMADecay: 0.9, Seed: 3, MaxBadSteps: 3}
		tr, err := NewTrainer(cpu.New[float32](2), DefaultConfig(), tc, mc)
		if err != nil {
			t.Fatal(err)
		}
		src := nanSource(v, map[int]bool{3: true, 4: true, 6: true})
		for step := 1; step <= 8; step++ {
			before, adam := snapshot(tr), tr.Opt.Step
			m, err := tr.TrainStep(src)
			if err != nil {
				t.Fatalf("%v: step %d: %v", v, step, err)
			}
			bad := step == 3 || step == 4 || step == 6
			if m.Skipped != bad || m.Step != step {
				t.Fatalf("%v: step %d: metrics %+v, want skipped=%v", v, step, m, bad)
			}
			if same := sameWeights(before, snapshot(tr)); same != bad {
				t.Fatalf("%v: step %d (bad=%v): weights unchanged = %v", v, step, bad, same)
			}
			if bad && tr.Opt.Step != adam {
				t.Fatalf("%v: step %d: Adam step moved from %d to %d on a skipped step", v, step, adam, tr.Opt.Step)
			}
		}
		if tr.Skipped != 3 || tr.BadRun != 0 {
			t.Fatalf("%v: skipped %d, bad run %d; want 3 and 0", v, tr.Skipped, tr.BadRun)
		}
	}
}

// MaxBadSteps consecutive non-finite steps stop training with a FaultError naming the
// step; the weights stay those of the last good step.
func TestNonFiniteRunStops(t *testing.T) {
	mc := nn.MLPConfig{Arch: "mlp", Dim: 2, Width: 16, Depth: 2, Freq: 8}
	tc := TrainConfig{Objective: "imm", Batch: 32, LR: 1e-3, Clip: 1, EMADecay: 0.9, Seed: 3, MaxBadSteps: 4}
	tr, _ := NewTrainer(cpu.New[float32](2), DefaultConfig(), tc, mc)
	bad := map[int]bool{}
	for i := 3; i < 20; i++ {
		bad[i] = true
	}
	src := nanSource(float32(math.NaN()), bad)
	var good [][]float32
	var err error
	for step := 1; step <= 20 && err == nil; step++ {
		_, err = tr.TrainStep(src)
		if step == 2 {
			good = snapshot(tr)
		}
	}
	var fe *FaultError
	if !errors.As(err, &fe) || fe.Step != 6 || fe.Consecutive != 4 {
		t.Fatalf("err = %v, want a FaultError at step 6 after 4 bad steps", err)
	}
	if !strings.Contains(err.Error(), "step 6") {
		t.Fatalf("message does not name the step: %v", err)
	}
	if !sameWeights(good, snapshot(tr)) {
		t.Fatal("weights changed after the last good step")
	}
}

// A checkpoint with a flipped byte or a truncated tail is rejected with its path named.
func TestCheckpointCorruptionDetected(t *testing.T) {
	mc := nn.MLPConfig{Arch: "mlp", Dim: 2, Width: 16, Depth: 1, Freq: 8}
	tr, _ := NewTrainer(cpu.New[float32](1), DefaultConfig(), TrainConfig{Objective: "imm", Batch: 16, LR: 1e-3, Seed: 1}, mc)
	tr.TrainStep(ringSource)
	dir := t.TempDir()
	path := filepath.Join(dir, "c.safetensors")
	if err := tr.Save(path); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if err := Verify(path); err != nil {
		t.Fatalf("good checkpoint: %v", err)
	}
	cases := map[string][]byte{
		"flip-data":   append([]byte(nil), raw...),
		"flip-header": append([]byte(nil), raw...),
		"truncated":   append([]byte(nil), raw[:len(raw)-7]...),
	}
	cases["flip-data"][len(raw)-5] ^= 0x10
	cases["flip-header"][20] ^= 0x01
	for name, b := range cases {
		p := filepath.Join(dir, name+".safetensors")
		os.WriteFile(p, b, 0o644)
		os.WriteFile(SumPath(p), mustRead(t, SumPath(path)), 0o644)
		_, err := Load(cpu.New[float32](1), p)
		if !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want ErrCheckpoint naming %s", name, err, p)
		}
		if err := Verify(p); !errors.Is(err, ErrCheckpoint) {
			t.Errorf("%s: Verify: %v", name, err)
		}
		// Without the recorded hash, the truncation is still caught by the size checks.
		os.Remove(SumPath(p))
		if _, err := Load(cpu.New[float32](1), p); name == "truncated" && !errors.Is(err, ErrCheckpoint) {
			t.Errorf("truncated without hash file: err = %v", err)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Checkpoints carry the backbone config and Extra metadata; a DiT trainer round-trips.
func TestCheckpointModelAndExtra(t *testing.T) {
	dc, err := nn.NewDiTConfig("tiny/1", 1, 4, 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	mc := ModelConfig{DiT: &dc}
	tc := TrainConfig{Objective: "imm", Batch: 8, LR: 1e-3, Seed: 2}
	tr, err := NewModelTrainer(cpu.New[float32](1), DefaultConfig(), tc, mc)
	if err != nil {
		t.Fatal(err)
	}
	src := func(rng *rand.Rand, rows int) ([]float32, []int32) {
		x := make([]float32, rows*16)
		l := make([]int32, rows)
		for i := range x {
			x[i] = float32(0.5 * rng.NormFloat64())
		}
		for i := range l {
			l[i] = int32(rng.IntN(3))
		}
		return x, l
	}
	for range 3 {
		if _, err := tr.TrainStep(src); err != nil {
			t.Fatal(err)
		}
	}
	tr.Extra["loader_state"] = `{"epoch":1}`
	p := filepath.Join(t.TempDir(), "dit.safetensors")
	if err := tr.Save(p); err != nil {
		t.Fatal(err)
	}
	got, err := Load(cpu.New[float32](1), p)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Model.Equal(mc) || got.Extra["loader_state"] != `{"epoch":1}` || got.Step != 3 {
		t.Fatalf("loaded model %+v extra %v step %d", got.Model, got.Extra, got.Step)
	}
	if !sameWeights(snapshot(tr), snapshot(got)) {
		t.Fatal("weights differ after the round trip")
	}
	tr.Extra["step"] = "1"
	if err := tr.Save(p); err == nil {
		t.Fatal("extra metadata overwriting the step accepted")
	}
}
