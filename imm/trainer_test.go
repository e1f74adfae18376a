package imm

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels/cpu"
)

func ringSource(rng *rand.Rand, rows int) ([]float32, []int32) {
	x := make([]float32, 2*rows)
	for i := 0; i < rows; i++ {
		k := float64(rng.IntN(4))
		x[2*i] = float32(0.5*k - 0.75 + 0.05*rng.NormFloat64())
		x[2*i+1] = float32(0.05 * rng.NormFloat64())
	}
	return x, nil
}

func weights(tr *Trainer[float32]) [][]float32 {
	var out [][]float32
	for i, p := range tr.Net.Reg.Params {
		for _, b := range [][]float32{cpu.Data[float32](p.W), cpu.Data[float32](tr.EMA.Avg[i]), cpu.Data[float32](tr.Opt.M[i]), cpu.Data[float32](tr.Opt.V[i])} {
			out = append(out, append([]float32(nil), b...))
		}
	}
	return out
}

// TestLRSchedule: the rate of every update is the warmup-then-cosine formula (computed
// here in float64 from its definition), and it is the rate the optimiser used: a trainer
// with a constant rate set to the same value before each step ends with the same bits.
func TestLRSchedule(t *testing.T) {
	const lr, steps, warm = 1e-2, 12, 4
	ref := func(s int) float64 {
		if s < warm {
			return lr * float64(s) / warm
		}
		return lr * 0.5 * (1 + math.Cos(math.Pi*float64(s-warm)/float64(steps-warm)))
	}
	mc := nn.MLPConfig{Arch: "mlp", Dim: 2, Width: 16, Depth: 2, Freq: 8}
	tc := TrainConfig{Objective: "imm", Batch: 32, Steps: steps, LR: lr, Clip: 1, EMADecay: 0.9, Seed: 3, LRSchedule: "cosine", Warmup: warm}
	sched, err := NewTrainer(cpu.New[float32](1), DefaultConfig(), tc, mc)
	if err != nil {
		t.Fatal(err)
	}
	tc.LRSchedule, tc.Warmup = "", 0
	manual, _ := NewTrainer(cpu.New[float32](1), DefaultConfig(), tc, mc)
	for s := 1; s <= steps; s++ {
		m, err := sched.TrainStep(ringSource)
		if err != nil {
			t.Fatal(err)
		}
		if want := ref(s); math.Abs(m.LR-want) > 1e-15 {
			t.Fatalf("step %d: lr %v, want %v", s, m.LR, want)
		}
		manual.Train.LR, manual.Opt.Opt.LR = ref(s), ref(s)
		if _, err := manual.TrainStep(ringSource); err != nil {
			t.Fatal(err)
		}
		a, b := weights(sched), weights(manual)
		for i := range a {
			for j := range a[i] {
				if a[i][j] != b[i][j] {
					t.Fatalf("step %d: tensor %d element %d: scheduled %v, constant %v", s, i, j, a[i][j], b[i][j])
				}
			}
		}
	}
	if last := sched.Train.LRAt(steps); last != 0 {
		t.Errorf("cosine ends at %v, want 0", last)
	}
	for _, bad := range []TrainConfig{{LRSchedule: "linear"}, {Warmup: -1}} {
		bad.Objective, bad.Batch, bad.LR = "imm", 32, 1e-3
		if err := bad.Validate(DefaultConfig()); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestResumeBitForBit stops a run at step 7, saves, loads and finishes it, and compares
// every weight, EMA and optimiser value with an uninterrupted 15-step run.
func TestResumeBitForBit(t *testing.T) {
	for _, obj := range []string{"imm", "fm", "imm+cosine"} {
		mc := nn.MLPConfig{Arch: "mlp", Dim: 2, Width: 16, Depth: 2, Freq: 8}
		tc := TrainConfig{Objective: obj, Batch: 32, Steps: 15, LR: 1e-3, Clip: 1, EMADecay: 0.9, Seed: 7}
		if obj == "imm+cosine" { // the learning rate at the resumed steps comes from the step
			tc.Objective, tc.LRSchedule, tc.Warmup = "imm", "cosine", 5
		}
		full, err := NewTrainer(cpu.New[float32](2), DefaultConfig(), tc, mc)
		if err != nil {
			t.Fatal(err)
		}
		for range 15 {
			if _, err := full.TrainStep(ringSource); err != nil {
				t.Fatal(err)
			}
		}
		part, _ := NewTrainer(cpu.New[float32](2), DefaultConfig(), tc, mc)
		for range 7 {
			if _, err := part.TrainStep(ringSource); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(t.TempDir(), "ckpt.safetensors")
		if err := part.Save(path); err != nil {
			t.Fatal(err)
		}
		part.TrainStep(ringSource) // the loaded copy must not depend on what happens after Save
		res, err := Load(cpu.New[float32](2), path)
		if err != nil {
			t.Fatal(err)
		}
		if res.Step != 7 {
			t.Fatalf("resumed at step %d, want 7", res.Step)
		}
		for res.Step < 15 {
			if _, err := res.TrainStep(ringSource); err != nil {
				t.Fatal(err)
			}
		}
		a, b := weights(full), weights(res)
		changed := false
		for i := range a {
			for j := range a[i] {
				if a[i][j] != b[i][j] {
					t.Fatalf("%s: tensor %d element %d: resumed %v, uninterrupted %v", obj, i, j, b[i][j], a[i][j])
				}
			}
		}
		init, _ := NewTrainer(cpu.New[float32](2), DefaultConfig(), tc, mc)
		for j, v := range weights(init)[0] {
			changed = changed || v != a[0][j]
		}
		if !changed {
			t.Fatalf("%s: training did not change the weights", obj)
		}
	}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.safetensors")
	os.WriteFile(bad, []byte("not a checkpoint"), 0o644)
	if _, err := Load(cpu.New[float32](1), bad); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("garbage as a checkpoint: err = %v, want ErrCheckpoint", err)
	}
	tr, _ := NewTrainer(cpu.New[float64](1), DefaultConfig(), TrainConfig{Objective: "imm", Batch: 8, LR: 1e-3, Seed: 1},
		nn.MLPConfig{Arch: "mlp", Dim: 2, Width: 4, Depth: 1, Freq: 4})
	p := filepath.Join(dir, "f64.safetensors")
	if err := tr.Save(p); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(cpu.New[float32](1), p); err == nil {
		t.Fatal("float64 checkpoint loaded into a float32 trainer")
	}
	if _, err := Load(cpu.New[float64](1), p); err != nil {
		t.Fatal(err)
	}
	if _, err := NewTrainer(cpu.New[float32](1), DefaultConfig(), TrainConfig{Objective: "imm", Batch: 10, LR: 1e-3},
		nn.MLPConfig{Arch: "mlp", Dim: 2, Width: 4, Depth: 1, Freq: 4}); err == nil {
		t.Fatal("batch 10 with M = 4 accepted")
	}
}

// With GroupLabels, Update refuses a batch whose groups mix labels, and label dropout
// drops whole groups: every group of the dropped labels is all null or keeps all its
// labels, at about the configured rate.
func TestGroupLabels(t *testing.T) {
	cfg := DefaultConfig()
	cfg.M, cfg.LabelDrop = 4, 0.3
	tc := TrainConfig{Objective: "imm", Batch: 8, Steps: 2, LR: 1e-3, EMADecay: 0.99, Seed: 1, GroupLabels: true}
	mc := ModelConfig{MLP: &nn.MLPConfig{Arch: "mlp", Dim: 2, Width: 16, Depth: 1, Freq: 8, Classes: 3}}
	tr, err := NewModelTrainer(cpu.New[float32](1), cfg, tc, mc)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := ringSource(rand.New(rand.NewPCG(1, 2)), 8)
	if _, err := tr.Update(Batch[float32]{X: x, Labels: []int32{0, 0, 0, 0, 1, 1, 2, 1}}); err == nil {
		t.Fatal("a group of labels 1, 1, 2, 1 accepted with GroupLabels")
	}
	if _, err := tr.Update(Batch[float32]{X: x, Labels: []int32{0, 0, 0, 0, 2, 2, 2, 2}}); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	labels := make([]int32, 4000)
	for i := range labels {
		labels[i] = int32(i / 4 % 3)
	}
	out := DropGroupLabels(labels, 4, 3, 0.3, rng)
	dropped := 0
	for g := 0; g < len(out); g += 4 {
		n := 0
		for _, l := range out[g : g+4] {
			if l == 3 {
				n++
			}
		}
		switch n {
		case 4:
			dropped++
		case 0:
			for i, l := range out[g : g+4] {
				if l != labels[g+i] {
					t.Fatalf("label %d changed to %d without being dropped", labels[g+i], l)
				}
			}
		default:
			t.Fatalf("group %d: %d of 4 labels dropped", g/4, n)
		}
	}
	if rate := float64(dropped) / 1000; rate < 0.25 || rate > 0.35 {
		t.Fatalf("dropped %v of the groups, want about 0.3", rate)
	}
}

// A checkpoint overwritten in place, with the writer killed after the new file's rename
// and before its hash's: the file loads (it is the new one), because the old hash was
// removed first (the crash test found `immtrain toy --resume` refusing such a file).
func TestSaveKilledBeforeHash(t *testing.T) {
	tr, err := NewTrainer(cpu.New[float32](1), DefaultConfig(), TrainConfig{Objective: "imm", Batch: 8, LR: 1e-3, Seed: 1},
		nn.MLPConfig{Arch: "mlp", Dim: 2, Width: 4, Depth: 1, Freq: 4})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "toy.safetensors")
	if err := tr.Save(p); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.TrainStep(ringSource); err != nil {
		t.Fatal(err)
	}
	killed := errors.New("killed")
	saveHook = func() error { return killed }
	err = tr.Save(p)
	saveHook = nil
	if !errors.Is(err, killed) {
		t.Fatalf("Save with the hook: err = %v", err)
	}
	got, err := Load(cpu.New[float32](1), p)
	if err != nil {
		t.Fatalf("the new checkpoint, without its hash yet: %v", err)
	}
	if got.Step != 1 {
		t.Fatalf("loaded step %d, want 1 (the new checkpoint)", got.Step)
	}
	if err := Verify(p); err != nil {
		t.Fatal(err)
	}
	// and a completed Save writes the hash again, which a flipped byte then fails
	if err := tr.Save(p); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p)
	raw[len(raw)-1] ^= 1
	os.WriteFile(p, raw, 0o644)
	if _, err := Load(cpu.New[float32](1), p); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("flipped byte: err = %v", err)
	}
}
