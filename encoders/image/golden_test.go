package image

import (
	"bytes"
	"flag"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden PNGs in testdata/golden")

// TestResizeGolden is a regression guard: a fixed picture through each resize mode must
// match the committed PNGs (within 2 levels, for floating-point differences across
// architectures). Correctness itself is checked against the float64 reference and Pillow;
// regenerate with -update only after those pass.
func TestResizeGolden(t *testing.T) {
	src := photo(300, 200, 5)
	for _, mode := range []Mode{CenterCrop, KeepRatio, Pad} {
		out, err := Resizer{Width: 64, Height: 64, Mode: mode, Background: color.NRGBA{20, 40, 60, 255}}.Resize(src)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "golden", string(mode)+".png")
		if *update {
			var b bytes.Buffer
			if err := png.Encode(&b, out); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestResizeGolden -update)", err)
		}
		want, err := (&Decoder{}).Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		if mean, maxd := diffStats(t, out, want.Image); maxd > 2 {
			t.Errorf("%s: differs from %s: mean %.3f max %d", mode, path, mean, maxd)
		}
	}
}
