package run

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/immkit/immkit/imm/mmdata/mmdatatest"
	"github.com/immkit/immkit/internal/safetensors"
	"github.com/immkit/immkit/kernels/cpu"
	"github.com/immkit/immkit/testdata/gen"
)

// onceFixture builds a shapes shard set once per test binary.
type onceFixture struct {
	once sync.Once
	f    *mmdatatest.Fixture
	err  error
	opt  mmdatatest.Options
}

func (o *onceFixture) get(t *testing.T) *mmdatatest.Fixture {
	t.Helper()
	o.once.Do(func() {
		dir, err := os.MkdirTemp("", "immkit-run-test")
		if err != nil {
			o.err = err
			return
		}
		o.f, o.err = mmdatatest.BuildShapes(context.Background(), dir, o.opt)
	})
	if o.err != nil {
		t.Fatal(o.err)
	}
	return o.f
}

// the package's fixtures: 40 samples, 24 px, colour-shape labels; and 64 samples
// labelled by colour only (8 labels), so that a small batch holds several per label
var (
	shapes40    = &onceFixture{opt: mmdatatest.Options{Samples: 40, Seed: 3, ImageSize: 24}}
	colorShapes = &onceFixture{opt: mmdatatest.Options{Samples: 64, Seed: 5, ImageSize: 24, LabelBy: gen.LabelColor}}
)

func shapesFixture(t *testing.T) *mmdatatest.Fixture { return shapes40.get(t) }

func testOptions(t *testing.T, out string, steps int) Options {
	f := shapesFixture(t)
	o := DefaultOptions()
	o.Data, o.Artefacts, o.Out = f.Shards, f.Encoded, out
	o.Train.Batch, o.Train.Steps = 8, steps
	o.CkptEvery, o.EvalEvery = 2, 0
	o.SampleSteps, o.SampleN = []int{1, 2}, 2
	o.HoldProb = 0.5
	o.Layout.TextLen = 8
	o.Device = cpu.New[float32](2)
	return o
}

func finalTensors(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	list, err := Checkpoints{Dir: filepath.Join(dir, "ckpt")}.List()
	if err != nil || len(list) == 0 {
		t.Fatalf("no checkpoint in %s: %v", dir, err)
	}
	f, _, err := safetensors.ReadFile(list[0])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for name, ts := range f.Tensors {
		out[name] = ts.Data
	}
	return out
}

// A run interrupted at step 3 (context cancelled, as by SIGINT) and resumed ends with the
// same weights, EMA and Adam moments, bit for bit, and the same metrics, as an
// uninterrupted run; then the run is extended by --resume with more steps.
func TestMultimodalInterruptResume(t *testing.T) {
	const steps = 6
	full := t.TempDir()
	if _, err := Train(context.Background(), testOptions(t, full, steps)); err != nil {
		t.Fatal(err)
	}
	part := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	o := testOptions(t, part, steps)
	o.OnStep = func(step int) {
		if step == 3 {
			cancel()
		}
	}
	_, err := Train(ctx, o)
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: err = %v", err)
	}
	if _, err := os.Stat(Checkpoints{Dir: filepath.Join(part, "ckpt")}.Path(3)); err != nil {
		t.Fatalf("no checkpoint written on interrupt: %v", err)
	}
	o = testOptions(t, part, steps)
	o.Resume = true
	sum, err := Train(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Steps != steps {
		t.Fatalf("resumed run ended at step %d", sum.Steps)
	}
	sameRun(t, full, part, steps)
	for _, p := range []string{"loss.png", "config.json", "summary.json", "samples/step-000006/grid.png", "samples/step-000006/captions.json", "samples/step-000006/steps-2/sample-1.wav"} {
		if st, err := os.Stat(filepath.Join(part, p)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", p, err)
		}
	}
	// A fresh run into a directory with checkpoints is refused; --resume with SetSteps
	// extends it, without SetSteps it keeps the run's step count.
	if _, err := Train(context.Background(), testOptions(t, part, steps)); err == nil {
		t.Fatal("training over an existing run without --resume accepted")
	}
	o = testOptions(t, part, steps+2)
	o.Resume, o.SetSteps = true, true
	if sum, err = Train(context.Background(), o); err != nil || sum.Steps != steps+2 {
		t.Fatalf("extended run: %+v, %v", sum, err)
	}
	o = testOptions(t, part, 100)
	o.Resume = true
	if sum, err = Train(context.Background(), o); err != nil || sum.Steps != steps+2 {
		t.Fatalf("resume without SetSteps: %+v, %v", sum, err)
	}
}

// The newest checkpoint damaged: --resume falls back to the previous one and says so.
func TestMultimodalResumeFallback(t *testing.T) {
	dir := t.TempDir()
	if _, err := Train(context.Background(), testOptions(t, dir, 4)); err != nil {
		t.Fatal(err)
	}
	ck := Checkpoints{Dir: filepath.Join(dir, "ckpt")}
	raw, _ := os.ReadFile(ck.Path(4))
	os.WriteFile(ck.Path(4), raw[:len(raw)/2], 0o644)
	var log logBuf
	o := testOptions(t, dir, 4)
	o.Resume, o.Log = true, &log
	sum, err := Train(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Steps != 4 || !contains(log.String(), ck.Path(4)) {
		t.Fatalf("steps %d, log %q", sum.Steps, log.String())
	}
}

// sameRun fails unless the runs in dirs a and b end with the same tensors, byte for
// byte, and the same metrics (step and loss), steps lines each.
func sameRun(t *testing.T, full, part string, steps int) {
	t.Helper()
	a, b := finalTensors(t, full), finalTensors(t, part)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("%d and %d tensors", len(a), len(b))
	}
	for name, v := range a {
		if string(v) != string(b[name]) {
			t.Fatalf("tensor %s differs between the uninterrupted and the resumed run", name)
		}
	}
	ma, _ := ReadMetrics(filepath.Join(full, "metrics.jsonl"))
	mb, _ := ReadMetrics(filepath.Join(part, "metrics.jsonl"))
	if len(ma) != steps || len(mb) != steps {
		t.Fatalf("metrics lines %d and %d, want %d", len(ma), len(mb), steps)
	}
	for i := range ma {
		if ma[i].Loss != mb[i].Loss || ma[i].Step != mb[i].Step {
			t.Fatalf("metrics line %d: %+v vs %+v", i, ma[i], mb[i])
		}
	}
}

type logBuf struct {
	mu sync.Mutex
	b  []byte
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *logBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return string(l.b) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }
