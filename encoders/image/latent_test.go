package image

import (
	"crypto/sha256"
	"encoding/hex"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/disintegration/imaging"

	"github.com/immkit/immkit/testdata/gen"
)

// corpus decodes n pictures of the synthetic shapes corpus (testdata/gen), PNG, 64×64.
func corpus(t testing.TB, n int) []*image.NRGBA {
	t.Helper()
	o := gen.Options{Seed: 7, Samples: n, ImageFormat: gen.FormatPNG, ImageSize: 64, AudioSeconds: 0.01}
	var out []*image.NRGBA
	for i := range n {
		f, err := o.Render(i)
		if err != nil {
			t.Fatal(err)
		}
		d, err := (&Decoder{}).Decode(f.Image)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d.Image)
	}
	return out
}

func TestPixelsRoundTrip(t *testing.T) {
	img := photo(13, 7, 1)
	l := Pixels{}.Encode(img)
	if l.C != 3 || l.H != 7 || l.W != 13 {
		t.Fatalf("shape %s", l.Shape())
	}
	for _, p := range []image.Point{{0, 0}, {12, 6}, {5, 3}} {
		c := img.NRGBAAt(p.X, p.Y)
		for ch, v := range []uint8{c.R, c.G, c.B} {
			want := float64(v)*2/255 - 1
			if got := float64(l.Data[(ch*7+p.Y)*13+p.X]); math.Abs(got-want) > 1e-6 {
				t.Fatalf("latent at %v ch %d = %g, want %g", p, ch, got, want)
			}
		}
	}
	back, err := Pixels{}.Decode(l)
	if err != nil {
		t.Fatal(err)
	}
	if mean, maxd := diffStats(t, back, img); maxd != 0 {
		t.Fatalf("round trip differs: mean %g max %d", mean, maxd)
	}
	if _, err := (Pixels{}).Decode(Latent{C: 2, H: 1, W: 1, Data: []float32{0, 0}}); err == nil {
		t.Error("2-channel latent decoded")
	}
	if _, err := (Pixels{}).Decode(Latent{C: 3, H: 2, W: 2, Data: []float32{0}}); err == nil {
		t.Error("short latent decoded")
	}
}

// TestPixelsGray: the grey latent is color.GrayModel's luma of every pixel, a grey picture
// keeps its values exactly, and decoding gives the grey picture back.
func TestPixelsGray(t *testing.T) {
	const w, h = 64, 48 // enough pixels that the rounding of the luma is exercised
	img := photo(w, h, 2)
	l := Pixels{Gray: true}.Encode(img)
	if l.C != 1 || l.H != h || l.W != w {
		t.Fatalf("shape %s", l.Shape())
	}
	grey := image.NewNRGBA(img.Rect)
	for y := range h {
		for x := range w {
			want := color.GrayModel.Convert(img.NRGBAAt(x, y)).(color.Gray).Y
			if got := float64(l.Data[y*w+x]); math.Abs(got-(float64(want)*2/255-1)) > 1e-6 {
				t.Fatalf("latent at (%d,%d) = %g, want luma %d", x, y, got, want)
			}
			grey.SetNRGBA(x, y, color.NRGBA{want, want, want, 255})
		}
	}
	// A grey picture: the grey latent equals each RGB channel, and decodes back to it.
	lg, rgb := Pixels{Gray: true}.Encode(grey), Pixels{}.Encode(grey)
	for i, v := range lg.Data {
		if rgb.Data[i] != v || rgb.Data[len(lg.Data)+i] != v || rgb.Data[2*len(lg.Data)+i] != v {
			t.Fatalf("value %d: grey %g, rgb %g %g %g", i, v, rgb.Data[i], rgb.Data[len(lg.Data)+i], rgb.Data[2*len(lg.Data)+i])
		}
	}
	back, err := Pixels{Gray: true}.Decode(lg)
	if err != nil {
		t.Fatal(err)
	}
	if mean, maxd := diffStats(t, back, grey); maxd != 0 {
		t.Fatalf("grey round trip differs: mean %g max %d", mean, maxd)
	}
}

func TestComputeStats(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ls []Latent
	for range 5 {
		l := NewLatent(3, 4, 6)
		for i := range l.Data {
			l.Data[i] = float32(rng.NormFloat64()*float64(1+i/24) + float64(i/24))
		}
		ls = append(ls, l)
	}
	st, err := ComputeStats(ls)
	if err != nil {
		t.Fatal(err)
	}
	for c := range 3 { // two-pass float64 reference
		var vals []float64
		for _, l := range ls {
			for _, v := range l.Data[c*24 : (c+1)*24] {
				vals = append(vals, float64(v))
			}
		}
		var m, v float64
		for _, x := range vals {
			m += x
		}
		m /= float64(len(vals))
		for _, x := range vals {
			v += (x - m) * (x - m)
		}
		sd := math.Sqrt(v / float64(len(vals)))
		if math.Abs(float64(st.Mean[c])-m) > 1e-5 || math.Abs(float64(st.Std[c])-sd) > 1e-5 {
			t.Errorf("ch %d: mean %g std %g, want %g %g", c, st.Mean[c], st.Std[c], m, sd)
		}
	}
	l := ls[0]
	orig := append([]float32{}, l.Data...)
	if err := st.Normalize(l); err != nil {
		t.Fatal(err)
	}
	if err := st.Denormalize(l); err != nil {
		t.Fatal(err)
	}
	for i := range orig {
		if math.Abs(float64(orig[i]-l.Data[i])) > 1e-5 {
			t.Fatal("normalize/denormalize is not the identity")
		}
	}
}

func TestPatchPCA(t *testing.T) {
	imgs := corpus(t, 24)
	const p = 4
	dim := patchDim(p)

	full, rep, err := FitPatchPCA(imgs, p, dim, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("patch-pca p=%d d=%d (full): PSNR %.2f dB on %d patches", p, dim, rep.PSNR, rep.Patches)
	if rep.PSNR <= 60 {
		t.Errorf("full-dimension PSNR %.2f dB, want > 60", rep.PSNR)
	}
	// Independent check of the basis: orthonormal rows, and Cov·v = λ v for each axis with the
	// covariance recomputed here in float64.
	X, n, _ := samplePatches(imgs, p, 0, 1)
	mean := make([]float64, dim)
	for i := range n {
		for j := range dim {
			mean[j] += float64(X[i*dim+j]) / float64(n)
		}
	}
	cov := make([]float64, dim*dim)
	for i := range n {
		for a := range dim {
			da := float64(X[i*dim+a]) - mean[a]
			for b := range dim {
				cov[a*dim+b] += da * (float64(X[i*dim+b]) - mean[b]) / float64(n)
			}
		}
	}
	for k := range dim {
		ck := full.Components[k*dim : (k+1)*dim]
		for l := range dim {
			var dot float64
			for j := range dim {
				dot += float64(ck[j]) * float64(full.Components[l*dim+j])
			}
			want := 0.0
			if k == l {
				want = 1
			}
			if math.Abs(dot-want) > 1e-4 {
				t.Fatalf("components %d·%d = %g", k, l, dot)
			}
		}
		for a := range dim {
			var cv float64
			for b := range dim {
				cv += cov[a*dim+b] * float64(ck[b])
			}
			if math.Abs(cv-full.Variance[k]*float64(ck[a])) > 1e-4 {
				t.Fatalf("axis %d is not an eigenvector: (Cv)[%d] = %g, λv = %g", k, a, cv, full.Variance[k]*float64(ck[a]))
			}
		}
		if k > 0 && full.Variance[k] > full.Variance[k-1] {
			t.Fatalf("variances not decreasing at %d", k)
		}
	}

	// d = 1/4 of the dimension, against plain downsampling to the same number of floats
	// (64×64×3 → 32×32×3 = 16×16×12), upsampled back with the same antialiasing filter.
	d := dim / 4
	quarter, rep4, err := FitPatchPCA(imgs, p, d, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Mean squared error per patch on the fit sample (float, before 8-bit rounding) equals the
	// sum of the discarded eigenvalues.
	var resid, discarded float64
	for i := range n {
		x := X[i*dim : (i+1)*dim]
		rec := make([]float64, dim)
		for j := range rec {
			rec[j] = float64(quarter.Mean[j])
		}
		for k := range d {
			var z float64
			for j := range dim {
				z += float64(quarter.Components[k*dim+j]) * (float64(x[j]) - float64(quarter.Mean[j]))
			}
			for j := range dim {
				rec[j] += z * float64(quarter.Components[k*dim+j])
			}
		}
		for j := range dim {
			e := float64(x[j]) - rec[j]
			resid += e * e / float64(n)
		}
	}
	for k := d; k < dim; k++ {
		discarded += full.Variance[k]
	}
	if math.Abs(resid-discarded) > 1e-3*discarded+1e-6 {
		t.Errorf("residual %g, sum of discarded eigenvalues %g", resid, discarded)
	}
	var se, cnt float64
	for _, img := range imgs {
		small := imaging.Resize(img, 32, 32, imaging.Lanczos)
		back := imaging.Resize(small, 64, 64, imaging.Lanczos)
		s, c := sqErr(img, back)
		se, cnt = se+s, cnt+c
	}
	down := psnrFromMSE(se / cnt)
	t.Logf("patch-pca p=%d d=%d (1/4): PSNR %.2f dB (explained variance %.3f); downsample 2x + lanczos: %.2f dB",
		p, d, rep4.PSNR, rep4.Explained, down)
	if rep4.PSNR <= down {
		t.Errorf("patch-pca at 1/4 dimension %.2f dB does not beat downsampling %.2f dB", rep4.PSNR, down)
	}

	// Save / load: same latents, sha256 of the file bytes.
	path := filepath.Join(t.TempDir(), "pca.safetensors")
	sum, err := quarter.Save(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	h := sha256.Sum256(raw)
	if sum != hex.EncodeToString(h[:]) {
		t.Fatal("Save's sha256 differs from the file's")
	}
	loaded, sum2, err := LoadPatchPCA(path)
	if err != nil || sum2 != sum {
		t.Fatal(err, sum2)
	}
	a, _ := quarter.Encode(imgs[0])
	b, _ := loaded.Encode(imgs[0])
	for i := range a.Data {
		if a.Data[i] != b.Data[i] {
			t.Fatal("loaded basis encodes differently")
		}
	}
	if len(loaded.Stats.Mean) != d || a.C != d || a.H != 16 || a.W != 16 {
		t.Fatalf("latent %s, stats %d", a.Shape(), len(loaded.Stats.Mean))
	}
}

func TestVQMonotoneInK(t *testing.T) {
	imgs := corpus(t, 24)
	last := 0.0
	var q256 *VQ
	for _, K := range []int{16, 64, 256} {
		q, rep, err := FitVQ(imgs, 2, K, 15, 20000, 3)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("vq p=2 K=%d: PSNR %.2f dB on %d patches", K, rep.PSNR, rep.Patches)
		if rep.PSNR <= last {
			t.Errorf("K=%d: PSNR %.2f dB does not improve on %.2f", K, rep.PSNR, last)
		}
		last = rep.PSNR
		q256 = q
	}
	// Nearest code against a brute-force float64 search.
	rng := rand.New(rand.NewPCG(5, 6))
	dim := patchDim(2)
	for range 500 {
		v := make([]float32, dim)
		for j := range v {
			v[j] = float32(rng.Float64()*2 - 1)
		}
		got, _ := q256.nearest(v)
		best, bestD := -1, math.Inf(1)
		for k := range q256.K {
			var s float64
			for j := range v {
				d := float64(v[j]) - float64(q256.Codebook[k*dim+j])
				s += d * d
			}
			if s < bestD {
				best, bestD = k, s
			}
		}
		var gotD float64
		for j := range v {
			d := float64(v[j]) - float64(q256.Codebook[int(got)*dim+j])
			gotD += d * d
		}
		if int(got) != best && gotD > bestD+1e-5 {
			t.Fatalf("nearest = %d (%g), brute force %d (%g)", got, gotD, best, bestD)
		}
	}
	// Batch encode equals one-by-one, and tokens decode to the codes' patches.
	batch, err := q256.EncodeBatch(imgs)
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range imgs {
		one, _ := q256.Encode(img)
		if one.H != 32 || one.W != 32 {
			t.Fatalf("tokens %dx%d", one.W, one.H)
		}
		for j := range one.IDs {
			if one.IDs[j] != batch[i].IDs[j] {
				t.Fatal("EncodeBatch differs from Encode")
			}
		}
	}
	path := filepath.Join(t.TempDir(), "vq.safetensors")
	sum, err := q256.Save(path)
	if err != nil {
		t.Fatal(err)
	}
	loaded, sum2, err := LoadVQ(path)
	if err != nil || sum != sum2 || loaded.K != 256 || loaded.P != 2 {
		t.Fatal(err)
	}
	if _, err := loaded.Decode(Tokens{H: 1, W: 1, IDs: []int32{256}}); err == nil {
		t.Error("out-of-range token decoded")
	}
}

func TestVQPalette(t *testing.T) {
	// p = 1 on a picture of 5 colours with K = 5 recovers it exactly.
	cols := []color.NRGBA{{255, 0, 0, 255}, {0, 255, 0, 255}, {0, 0, 255, 255}, {250, 250, 250, 255}, {10, 10, 10, 255}}
	img := image.NewNRGBA(image.Rect(0, 0, 20, 10))
	for y := range 10 {
		for x := range 20 {
			img.SetNRGBA(x, y, cols[(x*7+y*3)%5])
		}
	}
	q, rep, err := FitVQ([]*image.NRGBA{img}, 1, 5, 20, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsInf(rep.PSNR, 1) {
		t.Errorf("palette reconstruction PSNR %.2f, want exact", rep.PSNR)
	}
	tok, _ := q.Encode(img)
	if len(tok.IDs) != 200 {
		t.Fatal(len(tok.IDs))
	}
}

func TestGrid(t *testing.T) {
	a := imaging.New(4, 3, color.NRGBA{255, 0, 0, 255})
	b := imaging.New(2, 2, color.NRGBA{0, 255, 0, 255})
	bg := color.NRGBA{9, 9, 9, 255}
	g, err := Grid([][]*image.NRGBA{{a, b, a}, {b}}, 1, bg)
	if err != nil {
		t.Fatal(err)
	}
	if g.Rect.Dx() != 1+3*5 || g.Rect.Dy() != 1+2*4 {
		t.Fatalf("grid %v", g.Rect)
	}
	for _, c := range []struct {
		x, y int
		want color.NRGBA
	}{{0, 0, bg}, {1, 1, a.NRGBAAt(0, 0)}, {4, 3, a.NRGBAAt(0, 0)}, {5, 1, bg}, {6, 1, b.NRGBAAt(0, 0)}, {8, 1, bg},
		{11, 3, a.NRGBAAt(0, 0)}, {1, 5, b.NRGBAAt(0, 0)}, {3, 5, bg}, {6, 5, bg}} {
		if got := g.NRGBAAt(c.x, c.y); got != c.want {
			t.Errorf("grid pixel (%d,%d) = %v, want %v", c.x, c.y, got, c.want)
		}
	}
	if _, err := Grid(nil, 1, bg); err == nil {
		t.Error("empty grid accepted")
	}
	path := filepath.Join(t.TempDir(), "g.png")
	if err := SavePNG(path, g); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	d, err := (&Decoder{}).Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, maxd := diffStats(t, d.Image, g); maxd != 0 {
		t.Error("PNG round trip differs")
	}
}

func TestOpenLatentDecoder(t *testing.T) {
	imgs := []*image.NRGBA{photo(16, 16, 1), photo(16, 16, 2)}
	m, _, err := FitPatchPCA(imgs, 4, 48, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "pca.safetensors")
	sum, err := m.Save(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := OpenLatentDecoder("patch-pca@1", path, sum)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := m.Encode(imgs[0])
	back, err := d.Decode(l)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := PSNR(imgs[0], back); p < 60 {
		t.Errorf("decoded through OpenLatentDecoder: PSNR %.1f", p)
	}
	if _, err := OpenLatentDecoder("patch-pca@1", path, strings.Repeat("0", 64)); err == nil {
		t.Error("sha256 mismatch accepted")
	}
	if d, err := OpenLatentDecoder("pixels@1", "", ""); err != nil || d == nil {
		t.Error(err)
	}
	for _, bad := range []string{"pixels@2", "vae@1", "patch-pca@1"} {
		if _, err := OpenLatentDecoder(bad, "", ""); err == nil {
			t.Errorf("%s without artefact accepted", bad)
		}
	}
}
