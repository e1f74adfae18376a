package imm

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/internal/safetensors"
	"github.com/immkit/immkit/kernels/cpu"
)

// FuzzLoadCheckpoint feeds arbitrary bytes to the checkpoint reader (Load and Verify): it
// never panics, every refusal wraps ErrCheckpoint, and a checkpoint it accepts saves again to
// a file that loads and saves to the same bytes. Seeds: checkpoints of a small mlp and
// resmlp trainer after one step (testdata/fuzz/FuzzLoadCheckpoint holds more).
//
// Load builds the model that model_config declares before it compares the tensors with it,
// so a tiny file declaring a huge model would allocate that model; inputs whose configs
// hold a number above maxFuzzConfigNumber are skipped here (see docs/reliability.md).
func FuzzLoadCheckpoint(f *testing.F) {
	for _, mc := range []nn.MLPConfig{
		{Arch: "mlp", Dim: 2, Width: 8, Depth: 1, Freq: 4},
		{Arch: "resmlp", Dim: 3, Width: 8, Depth: 1, Freq: 4, Classes: 2},
	} {
		tr, err := NewTrainer(cpu.New[float32](1), DefaultConfig(), TrainConfig{Objective: "imm", Batch: 8, LR: 1e-3, Seed: 1}, mc)
		if err != nil {
			f.Fatal(err)
		}
		if mc.Classes == 0 {
			if _, err := tr.TrainStep(ringSource); err != nil {
				f.Fatal(err)
			}
		}
		p := filepath.Join(f.TempDir(), "seed.safetensors")
		if err := tr.Save(p); err != nil {
			f.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if tooLargeConfig(data) {
			t.Skip("config declares a model or batch above the fuzzing bound")
		}
		dir := t.TempDir()
		p := filepath.Join(dir, "c.safetensors")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		verr := Verify(p)
		if verr != nil && !errors.Is(verr, ErrCheckpoint) {
			t.Fatalf("Verify: %v does not wrap ErrCheckpoint", verr)
		}
		tr, err := Load(cpu.New[float32](1), p)
		if err != nil {
			if !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("Load: %v does not wrap ErrCheckpoint", err)
			}
			return
		}
		if verr != nil {
			t.Fatalf("Load accepted a file Verify refuses: %v", verr)
		}
		p2, p3 := filepath.Join(dir, "again.safetensors"), filepath.Join(dir, "third.safetensors")
		if err := tr.Save(p2); err != nil {
			t.Fatalf("save of a loaded checkpoint: %v", err)
		}
		tr2, err := Load(cpu.New[float32](1), p2)
		if err != nil {
			t.Fatalf("load of our own save: %v", err)
		}
		if err := tr2.Save(p3); err != nil {
			t.Fatal(err)
		}
		if a, b := mustRead(t, p2), mustRead(t, p3); !bytes.Equal(a, b) {
			t.Fatal("save -> load -> save changed the checkpoint bytes")
		}
	})
}

// maxFuzzConfigNumber bounds every number in the configs of a fuzzed checkpoint.
const maxFuzzConfigNumber = 4096

// tooLargeConfig reports whether the safetensors metadata of data holds a config with a
// number above maxFuzzConfigNumber (a model or batch too large to build while fuzzing).
func tooLargeConfig(data []byte) bool {
	st, err := safetensors.Decode(data)
	if err != nil {
		return false
	}
	var walk func(v any) bool
	walk = func(v any) bool {
		switch v := v.(type) {
		case float64:
			return v > maxFuzzConfigNumber || v < -maxFuzzConfigNumber
		case []any:
			for _, x := range v {
				if walk(x) {
					return true
				}
			}
		case map[string]any:
			for _, x := range v {
				if walk(x) {
					return true
				}
			}
		}
		return false
	}
	for _, k := range []string{"model_config", "train_config", "imm_config"} {
		var v any
		if json.Unmarshal([]byte(st.Metadata[k]), &v) == nil && walk(v) {
			return true
		}
	}
	return false
}
