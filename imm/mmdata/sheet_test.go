package mmdata_test

import (
	"encoding/json"
	"image"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/immkit/immkit/encoders/audio"
	"github.com/immkit/immkit/imm/mmdata"
	"github.com/immkit/immkit/shards"
)

// TestWriteSheet decodes real particles for two "step counts", writes the sheet and reads
// it back: grid.png has rows x columns tiles holding the pictures, every WAV has the
// right header and samples, captions.json holds the captions.
func TestWriteSheet(t *testing.T) {
	f := shapes(t)
	l, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded, GriffinLimIters: 4})
	if err != nil {
		t.Fatal(err)
	}
	bs := batches(t, l, f.Shards, shards.SplitTrain)
	steps := []int{1, 4}
	var media []*mmdata.Media
	const cols = 3
	for k := range steps {
		b := bs[k]
		D := l.Dim()
		x, mask := make([]float32, b.Len()*D), make([]float32, b.Len()*D)
		if _, err := l.Assemble(b, x, mask); err != nil {
			t.Fatal(err)
		}
		md, err := l.Decode(x[:cols*D], cols)
		if err != nil {
			t.Fatal(err)
		}
		media = append(media, md)
	}
	dir := filepath.Join(t.TempDir(), "sheet")
	if err := mmdata.WriteSheet(dir, steps, media); err != nil {
		t.Fatal(err)
	}
	grid := readPNG(t, filepath.Join(dir, "grid.png"))
	pad, tile := mmdata.SheetPad, 32
	if w, h := grid.Rect.Dx(), grid.Rect.Dy(); w != pad+cols*(tile+pad) || h != pad+len(steps)*(tile+pad) {
		t.Fatalf("grid %dx%d, want %d columns and %d rows of %d px tiles", w, h, cols, len(steps), tile)
	}
	for r := range steps {
		for c := range cols {
			want := media[r].Images[c]
			x0, y0 := pad+c*(tile+pad), pad+r*(tile+pad)
			for y := range tile {
				for x := range tile {
					g := grid.NRGBAAt(x0+x, y0+y)
					w := want.RGBAAt(x, y)
					if g.R != w.R || g.G != w.G || g.B != w.B {
						t.Fatalf("tile (%d,%d) pixel (%d,%d) = %v, want %v", r, c, x, y, g, w)
					}
				}
			}
		}
	}
	for r, n := range steps {
		for c := range cols {
			p := filepath.Join(dir, "steps-"+strconv.Itoa(n), "sample-"+strconv.Itoa(c)+".wav")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
				t.Fatalf("%s: header %q", p, b[:12])
			}
			a, err := audio.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			w := media[r].Audio[c]
			if a.Rate != 16000 || a.Channels != 1 || len(a.Samples) != len(w) || len(w) != 99*160 {
				t.Fatalf("%s: %d Hz, %d channels, %d samples; want 16000, 1, %d", p, a.Rate, a.Channels, len(a.Samples), len(w))
			}
			var peak float64
			for _, v := range w {
				peak = max(peak, math.Abs(float64(v)))
			}
			scale := 1.0
			if peak > 0.9 {
				scale = 0.9 / peak
			}
			for j, v := range w {
				if d := math.Abs(float64(a.Samples[j]) - scale*float64(v)); d > 1.0/32768+1e-6 {
					t.Fatalf("%s: sample %d = %v, want %v (16-bit)", p, j, a.Samples[j], scale*float64(v))
				}
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "captions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var caps map[string][]string
	if err := json.Unmarshal(b, &caps); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"1": media[0].Captions, "4": media[1].Captions}
	if !reflect.DeepEqual(caps, want) {
		t.Fatalf("captions.json %v, want %v", caps, want)
	}
	for _, c := range media[0].Captions {
		if !strings.Contains(c, " ") {
			t.Fatalf("caption %q", c)
		}
	}
	// bad arguments
	if err := mmdata.WriteSheet(dir, []int{1, 1}, media); err == nil {
		t.Error("repeated step counts accepted")
	}
	if err := mmdata.WriteSheet(dir, []int{1}, media); err == nil {
		t.Error("one step count for two media accepted")
	}
	// a sheet without pictures has no grid
	dir2 := t.TempDir()
	if err := mmdata.WriteSheet(dir2, []int{2}, []*mmdata.Media{{Captions: []string{"a"}, Images: []*image.RGBA{nil}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir2, "grid.png")); !os.IsNotExist(err) {
		t.Errorf("grid.png without pictures: %v", err)
	}
}
