package imm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/kernels/cpu"
)

// FuzzLoadCheckpoint feeds arbitrary bytes to the checkpoint reader (Load and Verify): it
// never panics, every refusal wraps ErrCheckpoint, and a checkpoint it accepts saves again to
// a file that loads and saves to the same bytes. Seeds: checkpoints of a small mlp and
// resmlp trainer after one step, and of a DiT and a multimodal trainer;
// testdata/fuzz/FuzzLoadCheckpoint holds 3 KB files declaring huge models and batches.
// Nothing is skipped: Load compares the tensors with the parameters model_config implies
// before it allocates the model, and bounds the batch buffers by MaxLoadBatchElems, so a
// small file declaring a huge model costs no more than its bytes.
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
	dc, err := nn.NewDiTConfig("tiny/1", 1, 2, 2, 2)
	if err != nil {
		f.Fatal(err)
	}
	for _, mc := range []ModelConfig{
		{DiT: &dc},
		{Multimodal: &nn.MultimodalConfig{Segments: []nn.Segment{{Name: "image", Tokens: 2, Features: 2}, {Name: "text", Tokens: 1, Features: 3}},
			Width: 4, Depth: 1, Heads: 1, MLPRatio: 1, Freq: 2}},
	} {
		tr, err := NewModelTrainer(cpu.New[float32](1), DefaultConfig(), TrainConfig{Objective: "imm", Batch: 4, LR: 1e-3, Seed: 1}, mc)
		if err != nil {
			f.Fatal(err)
		}
		p := filepath.Join(f.TempDir(), "seed.safetensors")
		if err := tr.Save(p); err != nil {
			f.Fatal(err)
		}
		f.Add(mustReadF(f, p))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
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

func mustReadF(f *testing.F, p string) []byte {
	f.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
