package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immkit/immkit/imm/mmdata/mmdatatest"
	"github.com/immkit/immkit/imm/run"
	"github.com/immkit/immkit/internal/cli"
	"github.com/spf13/pflag"
)

func TestMultimodalUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"multimodal", "--out", dir},                                  // no --data, no --demo
		{"multimodal", "--data", dir},                                 // no --out
		{"multimodal", "--data", dir, "--out", dir, "--size", "huge"}, // unknown size
		{"multimodal", "--data", dir, "--out", dir, "--batch", "7"},   // not a multiple of M (2)
		{"multimodal", "--data", dir, "--out", dir, "--lr-schedule", "linear"},
		{"sample", "--out", dir},
		{"eval"},
		{"eval", "--run", dir, "--n", "0"},
	} {
		_, errOut, code := cli.Run(newRootCmd, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage); stderr %q", args, code, errOut)
		}
	}
	_, errOut, code := cli.Run(newRootCmd, "sample", "--run", dir)
	if code != 1 || !strings.Contains(errOut, "not a run directory") {
		t.Errorf("sample of a non-run: exit %d, stderr %q", code, errOut)
	}
}

// The three commands end to end on a small shapes shard set: train 4 steps, sample with
// held images, evaluate.
func TestMultimodalSampleEval(t *testing.T) {
	dir := t.TempDir()
	f, err := mmdatatest.BuildShapes(context.Background(), filepath.Join(dir, "data"), mmdatatest.Options{Samples: 40, Seed: 5, ImageSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run")
	out, errOut, code := cli.Run(newRootCmd, "multimodal", "--data", f.Shards, "--artefacts", f.Encoded, "--out", run,
		"--batch", "8", "--steps", "4", "--ckpt-every", "2", "--eval-every", "0", "--sample-steps", "1,2", "--sample-n", "2", "--text-len", "8", "--device", "cpu", "--log-format", "json",
		"--lr", "2e-3", "--lr-schedule", "cosine", "--warmup", "2")
	if code != 0 {
		t.Fatalf("multimodal: exit %d: %s %s", code, out, errOut)
	}
	progress := 0
	for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
		var rec map[string]any
		if !strings.HasPrefix(line, "{") {
			continue // the device line
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("--log-format json gave a non-JSON line %q", line)
		}
		if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, "multimodal step ") {
			progress++
		}
	}
	if progress != 4 {
		t.Errorf("want 4 JSON progress records, got %d in %q", progress, errOut)
	}
	if !strings.Contains(out, "trained 4 steps") {
		t.Errorf("multimodal output: %q", out)
	}
	// the rates of warmup 2 then cosine to 0 at step 4: 1e-3, 2e-3, 1e-3, 0
	b, err := os.ReadFile(filepath.Join(run, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var lrs []float64
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec struct{ LR float64 }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		lrs = append(lrs, rec.LR)
	}
	want := []float64{1e-3, 2e-3, 1e-3, 0}
	if len(lrs) != len(want) {
		t.Fatalf("metrics.jsonl rates %v, want %v", lrs, want)
	}
	for i := range want {
		if math.Abs(lrs[i]-want[i]) > 1e-12 {
			t.Fatalf("metrics.jsonl rates %v, want %v", lrs, want)
		}
	}
	sheet := filepath.Join(dir, "sheet")
	out, errOut, code = cli.Run(newRootCmd, "sample", "--run", run, "--given", "image", "--steps", "1,2", "--n", "3", "--out", sheet, "--device", "cpu", "--quiet")
	if code != 0 {
		t.Fatalf("sample: exit %d: %s %s", code, out, errOut)
	}
	var caps map[string][]string
	b, err = os.ReadFile(filepath.Join(sheet, "captions.json"))
	if err == nil {
		err = json.Unmarshal(b, &caps)
	}
	if err != nil || len(caps["1"]) != 3 || len(caps["2"]) != 3 {
		t.Fatalf("captions.json: %v %v", caps, err)
	}
	for _, p := range []string{"grid.png", "given/grid.png", "steps-2/sample-2.wav"} {
		if _, err := os.Stat(filepath.Join(sheet, p)); err != nil {
			t.Error(err)
		}
	}
	out, errOut, code = cli.Run(newRootCmd, "eval", "--run", run, "--n", "4", "--steps", "1,2", "--device", "cpu", "--quiet")
	if code != 0 {
		t.Fatalf("eval: exit %d: %s %s", code, out, errOut)
	}
	if !strings.Contains(out, "| pair | attribute | 1 steps | 2 steps | real val data |") {
		t.Errorf("eval table missing: %q", out)
	}
	var res struct {
		Step   int                        `json:"step"`
		Shapes map[string]json.RawMessage `json:"shapes"`
	}
	b, err = os.ReadFile(filepath.Join(run, "eval.json"))
	if err == nil {
		err = json.Unmarshal(b, &res)
	}
	if err != nil || res.Step != 4 || len(res.Shapes) != 3 {
		t.Fatalf("eval.json: step %d, %d reports, %v", res.Step, len(res.Shapes), err)
	}
	// --given names a modality the run lacks: usage error.
	_, _, code = cli.Run(newRootCmd, "sample", "--run", run, "--given", "video", "--out", sheet, "--device", "cpu", "--quiet")
	if code != 2 {
		t.Errorf("--given video: exit %d, want 2", code)
	}
}

// TestDemoDefaults: --demo sets its recipe for the flags the user left alone, on the CPU
// and, scaled, on a GPU, and keeps the ones given.
func TestDemoDefaults(t *testing.T) {
	for _, gpu := range []bool{false, true} {
		o := &multimodalOpts{Options: run.DefaultOptions()}
		o.Data, o.Out = "shards", "run"
		f := pflag.NewFlagSet("multimodal", pflag.ContinueOnError)
		f.IntVar(&o.Train.Steps, "steps", o.Train.Steps, "")
		f.IntVar(&o.Train.Batch, "batch", o.Train.Batch, "")
		f.StringVar(&o.IMM.Param, "param", o.IMM.Param, "")
		if err := f.Parse([]string{"--steps", "77", "--param", "simple-edm"}); err != nil {
			t.Fatal(err)
		}
		demoDefaults(f, o, gpu)
		if o.Train.Steps != 77 || o.IMM.Param != "simple-edm" {
			t.Errorf("gpu %v: given flags changed: steps %d param %s", gpu, o.Train.Steps, o.IMM.Param)
		}
		if o.Layout.ImagePatch != 8 || o.Layout.AudioGroup != 20 || o.Layout.TextLen != 12 || o.CFG != 8 {
			t.Errorf("gpu %v: not the demo's recipe: patch %d audio group %d text len %d cfg %g", gpu, o.Layout.ImagePatch, o.Layout.AudioGroup, o.Layout.TextLen, o.CFG)
		}
		wantSize, wantBatch, wantLR, wantEval := "tiny", 32, 1e-2, 0
		if gpu {
			wantSize, wantBatch, wantLR, wantEval = "small", 256, 5e-3, 2000
		}
		if o.Size != wantSize || o.Train.Batch != wantBatch || o.Train.LR != wantLR || o.EvalEvery != wantEval {
			t.Errorf("gpu %v: size %s batch %d lr %g eval-every %d, want %s %d %g %d", gpu, o.Size, o.Train.Batch, o.Train.LR, o.EvalEvery, wantSize, wantBatch, wantLR, wantEval)
		}
		if err := o.Options.Validate(); err != nil {
			t.Errorf("gpu %v: demo options invalid: %v", gpu, err)
		}
	}
}
