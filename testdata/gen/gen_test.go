package gen_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	_ "image/jpeg"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/immkit/immkit/testdata/gen"
)

// generate writes a corpus into a fresh temporary directory.
func generate(t *testing.T, o gen.Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "corpus")
	if _, err := gen.Generate(context.Background(), dir, o); err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return dir
}

// treeHashes walks dir and returns, per slash path, the sha256 of a regular file or
// "symlink:"+target for a link.
func treeHashes(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			out[rel] = "symlink:" + target
			return err
		}
		b, err := os.ReadFile(p)
		sum := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(sum[:])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// manifestLine is the manifest schema as this test reads it, independently of gen.Spec.
type manifestLine struct {
	Key, Label, Color, Shape, Size, Position, Caption string
	CenterX                                           float64 `json:"center_x"`
	CenterY                                           float64 `json:"center_y"`
	Radius                                            float64
	ImageSize                                         int    `json:"image_size"`
	ImageFormat                                       string `json:"image_format"`
	Image, Text, Audio                                string
}

func readManifest(t *testing.T, dir string) []manifestLine {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "manifest.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []manifestLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m manifestLine
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("manifest line %d: %v", len(lines)+1, err)
		}
		lines = append(lines, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func TestSameSeedSameBytes(t *testing.T) {
	o := gen.Options{Seed: 7, Samples: 23, ImageFormat: gen.FormatMixed, Bad: true, Output: gen.OutputBoth, ShardSamples: 10, Workers: 1}
	a := treeHashes(t, generate(t, o))
	o.Workers = 3 // the worker count must not change the output
	b := treeHashes(t, generate(t, o))
	if want := 23*3 + 1 + 3 + len(gen.BadFiles); len(a) != want {
		t.Errorf("first run wrote %d files, want %d", len(a), want)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range a {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		if b[k] != a[k] {
			t.Errorf("%s: sha256 %s then %s", k, a[k], b[k])
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			t.Errorf("%s only in the second run", k)
		}
	}

	o.Seed = 8
	c := treeHashes(t, generate(t, o))
	same := 0
	for k, h := range c {
		if strings.HasSuffix(k, ".jpg") || strings.HasSuffix(k, ".png") || strings.HasSuffix(k, ".wav") {
			if !strings.HasPrefix(k, "bad/") && a[k] == h {
				same++
			}
		}
	}
	if same > 0 {
		t.Errorf("seeds 7 and 8 gave %d identical media files", same)
	}
	if a["manifest.jsonl"] == c["manifest.jsonl"] {
		t.Error("seeds 7 and 8 gave the same manifest")
	}
}

// hsv returns hue in degrees, saturation and value in [0, 1].
func hsv(r, g, b float64) (h, s, v float64) {
	mx := max(r, g, b)
	mn := min(r, g, b)
	v = mx / 255
	if mx == 0 {
		return 0, 0, 0
	}
	s = (mx - mn) / mx
	d := mx - mn
	if d == 0 {
		return 0, s, v
	}
	switch mx {
	case r:
		h = 60 * (g - b) / d
	case g:
		h = 60 * (2 + (b-r)/d)
	default:
		h = 60 * (4 + (r-g)/d)
	}
	if h < 0 {
		h += 360
	}
	return h, s, v
}

// colourName classifies a pixel by hue bands chosen from colour names, not from the
// generator's palette; "" is background (dark or greyish).
func colourName(r, g, b uint8) string {
	h, s, v := hsv(float64(r), float64(g), float64(b))
	switch {
	case v < 0.8:
		return ""
	case s < 0.15:
		return "white"
	case s < 0.5:
		return ""
	case h < 15 || h >= 345:
		return "red"
	case h < 45:
		return "orange"
	case h < 75:
		return "yellow"
	case h < 150:
		return "green"
	case h < 200:
		return "cyan"
	case h < 260:
		return "blue"
	}
	return "magenta"
}

// gridCell maps a position phrase to (row, col) from its words.
func gridCell(pos string) (row, col int) {
	row, col = 1, 1
	for _, w := range strings.Fields(pos) {
		switch w {
		case "upper":
			row = 0
		case "lower":
			row = 2
		case "left":
			col = 0
		case "right":
			col = 2
		}
	}
	return row, col
}

func decodeImage(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// shapeMask returns the pixels classified as colour name, their centroid and bounding box.
func shapeMask(img image.Image, name string) (n int, cx, cy float64, box image.Rectangle) {
	b := img.Bounds()
	first := true
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			if colourName(uint8(r>>8), uint8(g>>8), uint8(bb>>8)) != name {
				continue
			}
			n++
			cx += float64(x) + 0.5
			cy += float64(y) + 0.5
			p := image.Rect(x, y, x+1, y+1)
			if first {
				box, first = p, false
			} else {
				box = box.Union(p)
			}
		}
	}
	return n, cx / float64(n), cy / float64(n), box
}

func TestImages(t *testing.T) {
	for _, tc := range []struct {
		format string
		size   int
	}{{gen.FormatPNG, 64}, {gen.FormatJPEG, 64}, {gen.FormatJPEG, 150}} {
		t.Run(fmt.Sprintf("%s-%d", tc.format, tc.size), func(t *testing.T) {
			dir := generate(t, gen.Options{Seed: 3, Samples: 60, ImageSize: tc.size, ImageFormat: tc.format})
			lines := readManifest(t, dir)
			if len(lines) != 60 {
				t.Fatalf("manifest has %d lines, want 60", len(lines))
			}
			areas := map[string][]float64{}
			for _, m := range lines {
				wantExt := map[string]string{gen.FormatPNG: ".png", gen.FormatJPEG: ".jpg"}[tc.format]
				if filepath.Ext(m.Image) != wantExt {
					t.Fatalf("%s: image %s, want extension %s", m.Key, m.Image, wantExt)
				}
				img := decodeImage(t, filepath.Join(dir, m.Image))
				if b := img.Bounds(); b.Dx() != tc.size || b.Dy() != tc.size {
					t.Fatalf("%s: image is %v, want %dx%d", m.Key, b, tc.size, tc.size)
				}
				r, g, b, _ := img.At(int(m.CenterX), int(m.CenterY)).RGBA()
				if got := colourName(uint8(r>>8), uint8(g>>8), uint8(b>>8)); got != m.Color {
					t.Errorf("%s (%q): pixel at shape centre is %d,%d,%d = %q", m.Key, m.Caption, r>>8, g>>8, b>>8, got)
				}
				n, cx, cy, _ := shapeMask(img, m.Color)
				cell := float64(tc.size) / 3
				row, col := gridCell(m.Position)
				if gotRow, gotCol := int(cy/cell), int(cx/cell); n == 0 || gotRow != row || gotCol != col {
					t.Errorf("%s (%q): %d %s pixels with centroid (%.1f, %.1f) in cell (%d,%d), want cell (%d,%d)",
						m.Key, m.Caption, n, m.Color, cx, cy, gotRow, gotCol, row, col)
				}
				areas[m.Size] = append(areas[m.Size], float64(n)/(cell*cell))
			}
			// The documented scales 0.46 and 0.30 give an area ratio of 2.35; pixels on the
			// antialiased edge are not counted, which lowers it for small shapes.
			if mean(areas["large"]) < 1.5*mean(areas["small"]) {
				t.Errorf("large shapes cover %.3f of a cell, small %.3f: want large > 1.5x small", mean(areas["large"]), mean(areas["small"]))
			}
		})
	}
}

func mean(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// TestShapeFill checks each class by the fraction of its bounding box it fills, against
// values from the geometry in the package documentation: circle pi/4, square 1, triangle
// 1/2, cross (2*2*0.68 - 0.68^2)/4, star (10 * 0.5*0.45*sin 36°) / (2 sin 72° * (1 + sin 54°)).
func TestShapeFill(t *testing.T) {
	rad := math.Pi / 180
	want := map[string]float64{
		"circle":   math.Pi / 4,
		"square":   1,
		"triangle": 0.5,
		"cross":    (2*2*0.68 - 0.68*0.68) / 4,
		"star":     10 * 0.5 * 0.45 * math.Sin(36*rad) / (2 * math.Sin(72*rad) * (1 + math.Sin(54*rad))),
	}
	dir := generate(t, gen.Options{Seed: 5, Samples: 40, ImageSize: 300, ImageFormat: gen.FormatPNG})
	for _, m := range readManifest(t, dir) {
		img := decodeImage(t, filepath.Join(dir, m.Image))
		n, _, _, box := shapeMask(img, m.Color)
		fill := float64(n) / float64(box.Dx()*box.Dy())
		// Partly covered edge rows and columns cost up to ~1% each at this size; 0.045 still
		// tells the closest pair (triangle 0.5, cross 0.564) apart.
		if math.Abs(fill-want[m.Shape]) > 0.045 {
			t.Errorf("%s: %s fills %.3f of its %v box, want %.3f", m.Key, m.Shape, fill, box, want[m.Shape])
		}
	}
}

// TestPlainCenter checks the demo variant: with Background plain every pixel outside the
// shape's bounding square is one grey (the same in every such pixel of an image), and with
// Layout center every shape is in the centre cell and its caption says so.
func TestPlainCenter(t *testing.T) {
	dir := generate(t, gen.Options{Seed: 4, Samples: 30, ImageSize: 48, ImageFormat: gen.FormatPNG,
		Background: gen.BackgroundPlain, Layout: gen.LayoutCenter})
	for _, m := range readManifest(t, dir) {
		if m.Position != "center" || !strings.HasSuffix(m.Caption, "in the center") {
			t.Errorf("%s: position %q, caption %q: want the center", m.Key, m.Position, m.Caption)
		}
		img := decodeImage(t, filepath.Join(dir, m.Image))
		n, cx, cy, _ := shapeMask(img, m.Color)
		if cell := 48.0 / 3; n == 0 || int(cx/cell) != 1 || int(cy/cell) != 1 {
			t.Errorf("%s: %d %s pixels with centroid (%.1f, %.1f), want the centre cell", m.Key, n, m.Color, cx, cy)
		}
		var grey [3]uint32
		seen := false
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if math.Abs(float64(x)+0.5-m.CenterX) <= m.Radius+1 && math.Abs(float64(y)+0.5-m.CenterY) <= m.Radius+1 {
					continue
				}
				r, g, bb, _ := img.At(x, y).RGBA()
				if !seen {
					grey, seen = [3]uint32{r, g, bb}, true
				} else if [3]uint32{r, g, bb} != grey {
					t.Fatalf("%s: background pixel (%d,%d) is %v, pixel of the first is %v: want one grey", m.Key, x, y, [3]uint32{r, g, bb}, grey)
				}
			}
		}
	}
	if err := (gen.Options{Background: "stripes"}).Validate(); err == nil || !strings.Contains(err.Error(), "background") {
		t.Errorf("Validate(background stripes) = %v, want a background error", err)
	}
	if err := (gen.Options{Layout: "ring"}).Validate(); err == nil || !strings.Contains(err.Error(), "layout") {
		t.Errorf("Validate(layout ring) = %v, want a layout error", err)
	}
}
