package mnist

import (
	"context"
	"errors"
	"image"
	"image/color"
	"image/draw"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/immkit/immkit/internal/safetensors"
	xdraw "golang.org/x/image/draw"
)

// TestGradient compares the analytic gradient of the mean cross-entropy with central
// finite differences, in float64, for every weight and bias of a small network.
func TestGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{7, 6, 5, 4}
	net := newMLP[float64](sizes)
	for l := range net.layers() {
		for i := range net.w[l] {
			net.w[l][i] = rng.NormFloat64() * 0.7
		}
		for i := range net.b[l] {
			net.b[l][i] = rng.NormFloat64() * 0.3
		}
	}
	const n = 5
	ac := net.newActs(n)
	for i := range ac.a[0] {
		ac.a[0][i] = rng.Float64()
	}
	labels := []uint8{0, 3, 1, 2, 3}
	gw := newMLP[float64](sizes)
	dz := net.newActs(n).a
	net.lossGrad(ac, labels, gw.w, gw.b, dz)
	const h = 1e-6
	worst := 0.0
	check := func(name string, p []float64, g []float64) {
		for i := range p {
			v := p[i]
			p[i] = v + h
			up := net.lossGrad(ac, labels, nil, nil, nil)
			p[i] = v - h
			down := net.lossGrad(ac, labels, nil, nil, nil)
			p[i] = v
			fd := (up - down) / (2 * h)
			err := math.Abs(fd-g[i]) / math.Max(1e-3, math.Abs(fd)+math.Abs(g[i]))
			worst = math.Max(worst, err)
			if err > 1e-6 {
				t.Errorf("%s[%d]: analytic %.9g, finite difference %.9g", name, i, g[i], fd)
			}
		}
	}
	for l := range net.layers() {
		check("w"+string(rune('0'+l)), net.w[l], gw.w[l])
		check("b"+string(rune('0'+l)), net.b[l], gw.b[l])
	}
	t.Logf("worst relative error %.2g", worst)
	// The loss itself against a direct float64 loop.
	var want float64
	x := slices.Clone(ac.a[0])
	for r := range n {
		in := x[r*sizes[0] : (r+1)*sizes[0]]
		for l := range net.layers() {
			out := make([]float64, sizes[l+1])
			for o := range out {
				out[o] = net.b[l][o]
				for i, v := range in {
					out[o] += net.w[l][o*sizes[l]+i] * v
				}
				if l+1 < net.layers() {
					out[o] = math.Max(out[o], 0)
				}
			}
			in = out
		}
		var s float64
		for _, v := range in {
			s += math.Exp(v)
		}
		want += (math.Log(s) - in[labels[r]]) / n
	}
	if got := net.lossGrad(ac, labels, nil, nil, nil); math.Abs(got-want) > 1e-12 {
		t.Errorf("loss %.15g, reference loop %.15g", got, want)
	}
}

var (
	quickOnce sync.Once
	quickClf  *Classifier
	quickErr  error
)

// quick trains a small classifier on the first 20000 training images (a few seconds).
func quick(t *testing.T) (*Classifier, *Set) {
	_, train, test := realSets(t)
	quickOnce.Do(func() {
		quickClf, quickErr = Train(context.Background(), train.Subset(20000),
			TrainOptions{Hidden: []int{128}, Epochs: 3, LR: 3e-3, Seed: 1})
	})
	if quickErr != nil {
		t.Fatal(quickErr)
	}
	return quickClf, test
}

// TestQuickAccuracy trains on a fifth of the training set for three epochs and checks the
// accuracy on the whole test set.
func TestQuickAccuracy(t *testing.T) {
	c, test := quick(t)
	acc, err := c.Accuracy(test)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("quick classifier (784-128-10, 20000 images, 3 epochs): test accuracy %.4f", acc)
	if acc < 0.93 {
		t.Errorf("test accuracy %.4f, want >= 0.93", acc)
	}
	// Predict one image at a time agrees with the batched PredictSet.
	pred, _ := c.PredictSet(test.Subset(300))
	for i, p := range pred {
		if q := c.Predict(test.Image(i)); q != p {
			t.Fatalf("image %d: Predict %d, PredictSet %d", i, q, p)
		}
	}
}

// TestFullAccuracy trains the default classifier on the whole training set (a few minutes;
// run with IMMKIT_MNIST_FULL=1, scripts/checks.d/mnist.sh does the same through the tool)
// and checks the 98% target on the test set.
func TestFullAccuracy(t *testing.T) {
	if os.Getenv("IMMKIT_MNIST_FULL") == "" {
		t.Skip("set IMMKIT_MNIST_FULL=1 to train the full classifier (a few minutes)")
	}
	_, train, test := realSets(t)
	o := DefaultTrainOptions()
	o.Progress = func(e int, loss float64) { t.Logf("epoch %d: loss %.4f", e, loss) }
	c, err := Train(context.Background(), train, o)
	if err != nil {
		t.Fatal(err)
	}
	acc, _ := c.Accuracy(test)
	t.Logf("default classifier: test accuracy %.4f", acc)
	if acc < 0.98 {
		t.Errorf("test accuracy %.4f, want >= 0.98", acc)
	}
}

func TestTrainDeterministic(t *testing.T) {
	_, train, _ := realSets(t)
	small := train.Subset(1000)
	o := TrainOptions{Hidden: []int{32}, Epochs: 1, Batch: 50, Seed: 7}
	a, err := Train(context.Background(), small, o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Train(context.Background(), small, o)
	o.Seed = 8
	c, _ := Train(context.Background(), small, o)
	for l := range a.Weights {
		if !slices.Equal(a.Weights[l], b.Weights[l]) || !slices.Equal(a.Biases[l], b.Biases[l]) {
			t.Errorf("layer %d differs between two runs with the same seed", l)
		}
	}
	if slices.Equal(a.Weights[0], c.Weights[0]) {
		t.Error("seeds 7 and 8 gave the same weights")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Train(ctx, small, o); !errors.Is(err, context.Canceled) {
		t.Errorf("Train with a cancelled context: %v", err)
	}
	for _, bad := range []TrainOptions{{Hidden: []int{0}}, {Epochs: -1}, {Shift: 14}, {LR: math.NaN()}} {
		if _, err := Train(context.Background(), small, bad); err == nil {
			t.Errorf("Train(%+v) accepted bad options", bad)
		}
	}
	if _, err := Train(context.Background(), &Set{Rows: 3, Cols: 3, Pixels: make([]byte, 9), Labels: []byte{1}}, o); err == nil {
		t.Error("Train accepted 3x3 images")
	}
}

func TestSaveLoad(t *testing.T) {
	c, test := quick(t)
	c.TestAccuracy = 0.9512
	path := filepath.Join(t.TempDir(), "clf.safetensors")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	d, err := LoadClassifier(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Sizes, c.Sizes) || d.TestAccuracy != c.TestAccuracy {
		t.Fatalf("loaded sizes %v accuracy %v, saved %v %v", d.Sizes, d.TestAccuracy, c.Sizes, c.TestAccuracy)
	}
	for l := range c.Weights {
		if !slices.Equal(d.Weights[l], c.Weights[l]) || !slices.Equal(d.Biases[l], c.Biases[l]) {
			t.Fatalf("layer %d differs after Save/Load", l)
		}
	}
	// The tensors are PyTorch-shaped: fc0.weight is [hidden, 784].
	f, _, _ := safetensors.ReadFile(path)
	if s := f.Tensors["fc0.weight"].Shape; len(s) != 2 || s[0] != c.Sizes[1] || s[1] != Size*Size {
		t.Errorf("fc0.weight shape %v", s)
	}

	bad := func(name string, tensors map[string]safetensors.Tensor, meta map[string]string, want string) {
		p := filepath.Join(t.TempDir(), name)
		if _, err := safetensors.WriteFile(p, tensors, meta); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadClassifier(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, want)
		}
	}
	meta := map[string]string{"format": FormatName}
	w := func(o, i int) safetensors.Tensor { return safetensors.FromFloat32(make([]float32, o*i), o, i) }
	v := func(o int) safetensors.Tensor { return safetensors.FromFloat32(make([]float32, o), o) }
	bad("format", map[string]safetensors.Tensor{"fc0.weight": w(10, 784), "fc0.bias": v(10)}, map[string]string{"format": "other"}, "format")
	bad("no bias", map[string]safetensors.Tensor{"fc0.weight": w(10, 784)}, meta, "fc0.bias")
	bad("chain", map[string]safetensors.Tensor{"fc0.weight": w(8, 784), "fc0.bias": v(8), "fc1.weight": w(10, 9), "fc1.bias": v(10)}, meta, "9 inputs")
	bad("outputs", map[string]safetensors.Tensor{"fc0.weight": w(8, 784), "fc0.bias": v(8)}, meta, "layer sizes")
	bad("inputs", map[string]safetensors.Tensor{"fc0.weight": w(10, 100), "fc0.bias": v(10)}, meta, "layer sizes")
	bad("extra", map[string]safetensors.Tensor{"fc0.weight": w(10, 784), "fc0.bias": v(10), "x": v(1)}, meta, "1 tensors besides")
	if _, err := LoadClassifier(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("LoadClassifier of a missing file succeeded")
	}
	_ = test
}

// TestPredictInvariance checks that Predict treats an image the same whatever its colour
// model, and nearly the same after resizing, as the decoded samples of a generator are
// (e.g. 32x32 RGB).
func TestPredictInvariance(t *testing.T) {
	c, test := quick(t)
	const n = 500
	var sameRGB, sameUp, same32, samePad, cropped, ok32 int
	for i := range n {
		g := test.Image(i)
		want := c.Predict(g)
		wantLogits := c.Logits(g)

		// RGBA, NRGBA and 16-bit grey copies of the same picture: identical logits.
		for _, m := range []draw.Image{image.NewRGBA(g.Rect), image.NewNRGBA(g.Rect), image.NewGray16(g.Rect), image.NewRGBA64(g.Rect)} {
			draw.Draw(m, g.Rect, g, image.Point{}, draw.Src)
			if got := c.Logits(m); !slices.Equal(got, wantLogits) {
				t.Fatalf("image %d as %T: logits %v, grey %v", i, m, got, wantLogits)
			}
		}
		// An RGB picture with the digit in a colour whose luma is the grey value.
		rgb := image.NewRGBA(g.Rect)
		for y := range Size {
			for x := range Size {
				v := g.GrayAt(x, y).Y
				rgb.Set(x, y, color.RGBA{v, v, v, 255})
			}
		}
		if c.Predict(rgb) == want {
			sameRGB++
		}
		// Twice the size, each pixel repeated (nearest neighbour), offset bounds.
		up := image.NewRGBA(image.Rect(5, -3, 5+2*Size, -3+2*Size))
		xdraw.NearestNeighbor.Scale(up, up.Rect, g, g.Rect, xdraw.Src, nil)
		if c.Predict(up) == want {
			sameUp++
		}
		// 32x32 RGB, as the pixels encoder writes MNIST for the generator, then Predict.
		p32 := image.NewRGBA(image.Rect(0, 0, 32, 32))
		xdraw.CatmullRom.Scale(p32, p32.Rect, g, g.Rect, xdraw.Src, nil)
		if p := c.Predict(p32); p == want {
			same32++
			if p == int(test.Labels[i]) {
				ok32++
			}
		}
		// A 28x24 crop without the two black rows at the top and the bottom: ToInput pads it
		// back to the original 28x28 picture exactly.
		if blankRows(g, 0, 1, 26, 27) {
			crop := g.SubImage(image.Rect(0, 2, Size, Size-2))
			if got := ToInput(crop); got.Rect.Dx() != Size || got.Rect.Dy() != Size || !slices.Equal(got.Pix, g.Pix) {
				t.Fatalf("image %d: ToInput(28x24 crop) is not the original picture", i)
			}
			cropped++
			if c.Predict(crop) == want {
				samePad++
			}
		}
	}
	t.Logf("agreement with the 28x28 grey prediction over %d test images: rgb %d, 2x nearest %d, 32x32 catmull-rom %d (correct %d), 28x24 crops %d of %d",
		n, sameRGB, sameUp, same32, ok32, samePad, cropped)
	if sameRGB != n || samePad != cropped || cropped < n/2 {
		t.Errorf("RGB copies: %d of %d agree; crops: %d of %d agree", sameRGB, n, samePad, cropped)
	}
	for _, tc := range []struct {
		name string
		got  int
		min  float64
	}{{"2x nearest", sameUp, 0.98}, {"32x32", same32, 0.97}} {
		if float64(tc.got) < tc.min*n {
			t.Errorf("%s: %d of %d predictions agree, want >= %.0f%%", tc.name, tc.got, n, 100*tc.min)
		}
	}
	// A 28x28 grey image is its own input, and an empty image is black.
	if got := ToInput(test.Image(3)); !slices.Equal(got.Pix, test.Image(3).Pix) {
		t.Error("ToInput changed a 28x28 grey image")
	}
	if got := ToInput(image.NewRGBA(image.Rectangle{})); got.Rect.Dx() != Size || slices.Max(got.Pix) != 0 {
		t.Error("ToInput of an empty image is not a black 28x28 image")
	}
}

// blankRows reports whether the given rows of g are black.
func blankRows(g *image.Gray, rows ...int) bool {
	for _, y := range rows {
		if slices.Max(g.Pix[y*g.Stride:y*g.Stride+Size]) != 0 {
			return false
		}
	}
	return true
}
