package imm

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/internal/safetensors"
	"github.com/immkit/immkit/kernels/cpu"
)

// smallCheckpoint saves a float32 trainer of mc after no step and returns its decoded file.
func smallCheckpoint(t *testing.T, mc ModelConfig) *safetensors.File {
	t.Helper()
	tr, err := NewModelTrainer(cpu.New[float32](1), DefaultConfig(), TrainConfig{Objective: "imm", Batch: 8, LR: 1e-3, Seed: 1}, mc)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "small.safetensors")
	if err := tr.Save(p); err != nil {
		t.Fatal(err)
	}
	st, _, err := safetensors.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// rewrite writes the tensors and metadata of st, with the metadata keys in meta replaced,
// to a new file (without a .sha256 next to it) and returns its path.
func rewrite(t *testing.T, st *safetensors.File, tensors map[string]safetensors.Tensor, meta map[string]string) string {
	t.Helper()
	if tensors == nil {
		tensors = st.Tensors
	}
	m := map[string]string{}
	for k, v := range st.Metadata {
		m[k] = v
	}
	for k, v := range meta {
		m[k] = v
	}
	p := filepath.Join(t.TempDir(), "hostile.safetensors")
	if _, err := safetensors.WriteFile(p, tensors, m); err != nil {
		t.Fatal(err)
	}
	return p
}

// A small file whose model_config or train_config declares a huge model or batch is
// refused before the model is allocated: the error wraps ErrCheckpoint, names the file and
// says what is wrong, and Load allocates less than 64 MiB in all (TotalAlloc, an upper
// bound of the heap's peak growth). Before the check, each of these allocated the model
// the config declares (e.g. 5 x 10^10 float32 for the width-10^6 resmlp) or panicked.
func TestLoadHostileConfigAllocatesLittle(t *testing.T) {
	st := smallCheckpoint(t, MLPModel(nn.MLPConfig{Arch: "resmlp", Dim: 2, Width: 8, Depth: 1, Freq: 4}))
	cases := []struct {
		name, key, value, want string
	}{
		{"resmlp width 1e6 depth 1e4", "model_config",
			`{"mlp":{"arch":"resmlp","dim":2,"width":1000000,"depth":10000,"freq":4}}`,
			"more parameters than the file's"},
		{"mlp width 1e9", "model_config",
			`{"mlp":{"arch":"mlp","dim":2,"width":1000000000,"depth":3,"freq":4}}`,
			"more parameters than the file's"},
		{"resmlp width 8 depth 1e9 (every tensor of block.0 matches)", "model_config",
			`{"mlp":{"arch":"resmlp","dim":2,"width":8,"depth":1000000000,"freq":4}}`,
			"missing tensor model.block.1.shift.weight"},
		{"dit 2^20 x 2^20 image, depth 1e6", "model_config",
			`{"dit":{"channels":3,"height":1048576,"width_px":1048576,"patch":1,"width":1024,"depth":1000000,"heads":8}}`,
			"more parameters than the file's"},
		{"dit width 2^62 (patch.weight has 2^63 elements)", "model_config",
			`{"dit":{"channels":2,"height":2,"width_px":2,"patch":1,"width":4611686018427387904,"depth":2,"heads":1}}`,
			"parameter patch.weight has shape"},
		{"multimodal width 65536 depth 1e6", "model_config",
			`{"multimodal":{"segments":[{"name":"image","tokens":1000000,"features":1000000}],"width":65536,"depth":1000000,"heads":1}}`,
			"more parameters than the file's"},
		{"batch 2^40", "train_config",
			`{"objective":"imm","batch":1099511627776,"steps":0,"lr":0.001,"weight_decay":0,"clip":0,"ema_decay":0,"seed":1}`,
			"MaxLoadBatchElems"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := rewrite(t, st, nil, map[string]string{tc.key: tc.value})
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			tr, err := Load(cpu.New[float32](1), p)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("a %d-byte file declaring %s loaded (%d parameters)", fi.Size(), tc.name, tr.Net.Reg.Count())
			}
			if !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrCheckpoint naming %s and saying %q", err, p, tc.want)
			}
			grew := after.TotalAlloc - before.TotalAlloc
			if grew > 64<<20 {
				t.Fatalf("Load of a %d-byte file allocated %d bytes before refusing it", fi.Size(), grew)
			}
			t.Logf("%d-byte file, %d bytes allocated: %v", fi.Size(), grew, err)
		})
	}
}

// A checkpoint whose tensors differ from what its model_config implies in one place is
// refused with an error naming that tensor: a wrong shape with the same element count
// (which the element-count check before accepted), a wrong size, a missing tensor, an
// extra one, and the wrong dtype for the trainer.
func TestLoadNamesMismatchedTensor(t *testing.T) {
	for _, mc := range []ModelConfig{
		MLPModel(nn.MLPConfig{Arch: "mlp", Dim: 2, Width: 8, Depth: 1, Freq: 4, Classes: 3}),
		func() ModelConfig {
			dc, err := nn.NewDiTConfig("tiny/1", 1, 4, 4, 0)
			if err != nil {
				t.Fatal(err)
			}
			return ModelConfig{DiT: &dc}
		}(),
		{Multimodal: &nn.MultimodalConfig{Segments: []nn.Segment{{Name: "image", Tokens: 4, Features: 3}, {Name: "text", Tokens: 2, Features: 5}},
			Width: 8, Depth: 1, Heads: 2, MLPRatio: 2, Freq: 4}},
	} {
		t.Run(mc.Kind(), func(t *testing.T) {
			st := smallCheckpoint(t, mc)
			// The unmodified tensors load (the rewrite itself changes nothing).
			if _, err := Load(cpu.New[float32](1), rewrite(t, st, nil, nil)); err != nil {
				t.Fatalf("unmodified checkpoint: %v", err)
			}
			// A 2-D tensor of the file, to reshape.
			var target string
			for name, v := range st.Tensors {
				if strings.HasPrefix(name, "ema.") && len(v.Shape) == 2 && v.Shape[0] != v.Shape[1] && (target == "" || name < target) {
					target = name
				}
			}
			if target == "" {
				t.Fatal("no non-square 2-D tensor to reshape")
			}
			edit := func(f func(m map[string]safetensors.Tensor)) map[string]safetensors.Tensor {
				m := map[string]safetensors.Tensor{}
				for k, v := range st.Tensors {
					m[k] = v
				}
				f(m)
				return m
			}
			v := st.Tensors[target]
			cases := []struct {
				name    string
				tensors map[string]safetensors.Tensor
				want    string
			}{
				{"transposed", edit(func(m map[string]safetensors.Tensor) {
					m[target] = safetensors.Tensor{DType: v.DType, Shape: []int{v.Shape[1], v.Shape[0]}, Data: v.Data}
				}), "tensor " + target + " is F32 "},
				{"one row short", edit(func(m map[string]safetensors.Tensor) {
					m[target] = safetensors.Tensor{DType: v.DType, Shape: []int{v.Shape[0] - 1, v.Shape[1]}, Data: v.Data[:(v.Shape[0]-1)*v.Shape[1]*4]}
				}), "tensor " + target + " is F32 "},
				{"missing", edit(func(m map[string]safetensors.Tensor) { delete(m, target) }), "missing tensor " + target},
				{"extra", edit(func(m map[string]safetensors.Tensor) {
					m["ema.zz_unexpected"] = safetensors.FromFloat32([]float32{1, 2}, 2)
				}), "unexpected tensor ema.zz_unexpected"},
			}
			for _, c := range cases {
				p := rewrite(t, st, c.tensors, nil)
				_, err := Load(cpu.New[float32](1), p)
				if !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("%s %s: err = %v, want ErrCheckpoint naming the file and %q", c.name, target, err, c.want)
				}
			}
			// The float32 checkpoint in a float64 trainer: the first parameter is named.
			_, err := Load(cpu.New[float64](1), rewrite(t, st, nil, nil))
			if !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), "is F32") || !strings.Contains(err.Error(), "want F64") {
				t.Fatalf("float32 file into a float64 trainer: err = %v", err)
			}
		})
	}
}
