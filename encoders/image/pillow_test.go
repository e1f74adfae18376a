package image

import (
	"bytes"
	"fmt"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/immkit/immkit/internal/testenv"
)

// TestResizeMatchesPillow compares our center-crop and keep-ratio resizes with Pillow's
// resize of the same crop box (LANCZOS and BILINEAR, Pillow's antialiasing convention), run
// in the same test.
func TestResizeMatchesPillow(t *testing.T) {
	py := testenv.LookPath(t, "/usr/bin/python3", "scripts/deps.d/image.sh (apt-get install python3-pil)")
	dir := t.TempDir()
	src := photo(300, 200, 21)
	var buf bytes.Buffer
	if err := png.Encode(&buf, src); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "src.png"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	type tc struct {
		r      Resizer
		pillow string
	}
	var cases []tc
	script := "from PIL import Image\nim = Image.open(%q).convert('RGB')\n"
	script = fmt.Sprintf(script, filepath.Join(dir, "src.png"))
	for _, f := range []struct{ ours, pil string }{{"lanczos", "LANCZOS"}, {"linear", "BILINEAR"}} {
		for _, r := range []Resizer{
			{Width: 64, Height: 64, Mode: CenterCrop, Filter: f.ours},
			{Width: 96, Height: 48, Mode: CenterCrop, Filter: f.ours},
			{Width: 64, Height: 64, Mode: KeepRatio, Filter: f.ours},
			{Width: 500, Height: 500, Mode: CenterCrop, Filter: f.ours},
		} {
			g := r.Geometry(300, 200)
			name := filepath.Join(dir, fmt.Sprintf("out%d.png", len(cases)))
			script += fmt.Sprintf("im.resize((%d, %d), Image.%s, box=(%d, %d, %d, %d)).save(%q)\n",
				g.Size.X, g.Size.Y, f.pil, g.Crop.Min.X, g.Crop.Min.Y, g.Crop.Max.X, g.Crop.Max.Y, name)
			cases = append(cases, tc{r, name})
		}
	}
	if out, err := exec.Command(py, "-c", script).CombinedOutput(); err != nil {
		testenv.Missing(t, "Pillow ("+string(out)+")", "scripts/deps.d/image.sh (apt-get install python3-pil)")
	}
	for _, c := range cases {
		ours, err := c.r.Resize(src)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(c.pillow)
		if err != nil {
			t.Fatal(err)
		}
		pi, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		ref := toOpaque(pi, color.NRGBA{})
		mean, maxd := diffStats(t, ours, ref)
		t.Logf("%s %dx%d %s: vs Pillow mean %.3f max %d", c.r.Mode, c.r.Width, c.r.Height, c.r.Filter, mean, maxd)
		if mean > 0.6 || maxd > 4 {
			t.Errorf("%s %dx%d %s: mean abs diff %.3f max %d vs Pillow (tolerance 0.6, 4)", c.r.Mode, c.r.Width, c.r.Height, c.r.Filter, mean, maxd)
		}
	}
}
