package image

import (
	"fmt"
	"image"
	"math"
	"strconv"

	"gonum.org/v1/gonum/mat"

	"github.com/immkit/immkit/internal/safetensors"
)

// PatchPCA is a continuous latent: each p×p patch vector (see patch.go; dim 3p²) is centred
// and projected on the first D principal axes of the patches of a fitted sample. A picture
// of H×W becomes a D×(H/p)×(W/p) Latent; Decode back-projects, exact when D = 3p².
type PatchPCA struct {
	P, D int
	// Mean is the mean patch vector, len 3p².
	Mean []float32
	// Components holds the principal axes as rows, by decreasing variance:
	// axis k is Components[k*3p² : (k+1)*3p²], unit length. D rows.
	Components []float32
	// Variance is the variance along every axis (all 3p² eigenvalues of the patch
	// covariance, decreasing), for reports.
	Variance []float64
	// Stats are per-channel statistics of the latents of the fitted sample.
	Stats LatentStats
}

// FitReport summarises a fit.
type FitReport struct {
	Patches   int     // patch vectors the fit used
	PSNR      float64 // dB, reconstruction of the fitted pictures (Decode(Encode(x)) vs x)
	Explained float64 // PCA: fraction of the variance kept by the D components
}

// Name and Version identify the encoder in manifests ("patch-pca@1").
func (*PatchPCA) Name() string    { return "patch-pca" }
func (*PatchPCA) Version() string { return "1" }

// FitPatchPCA fits a basis of d components on p×p patches of imgs (at most maxPatches of
// them, sampled with seed; 0 = all) and reports the reconstruction PSNR on imgs.
func FitPatchPCA(imgs []*image.NRGBA, p, d, maxPatches int, seed uint64) (*PatchPCA, FitReport, error) {
	dim := patchDim(p)
	if p <= 0 || d <= 0 || d > dim {
		return nil, FitReport{}, fmt.Errorf("image: patch-pca needs p >= 1 and 1 <= d <= 3p² = %d, got p=%d d=%d", dim, p, d)
	}
	X, n, err := samplePatches(imgs, p, maxPatches, seed)
	if err != nil {
		return nil, FitReport{}, err
	}
	mean := make([]float64, dim)
	for i := range n {
		for j := range dim {
			mean[j] += float64(X[i*dim+j])
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	xc := mat.NewDense(n, dim, nil)
	for i := range n {
		for j := range dim {
			xc.Set(i, j, float64(X[i*dim+j])-mean[j])
		}
	}
	var cov mat.SymDense
	cov.SymOuterK(1/float64(n), xc.T())
	var eig mat.EigenSym
	if !eig.Factorize(&cov, true) {
		return nil, FitReport{}, fmt.Errorf("image: patch-pca: eigendecomposition failed")
	}
	vals := eig.Values(nil) // ascending
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	m := &PatchPCA{P: p, D: d, Mean: make([]float32, dim), Components: make([]float32, d*dim), Variance: make([]float64, dim)}
	for j := range dim {
		m.Mean[j] = float32(mean[j])
	}
	var total, kept float64
	for k := range dim {
		src := dim - 1 - k
		v := math.Max(vals[src], 0)
		m.Variance[k] = v
		total += v
		if k < d {
			kept += v
			for j := range dim {
				m.Components[k*dim+j] = float32(vecs.At(j, src))
			}
		}
	}
	rep := FitReport{Patches: n, Explained: 1}
	if total > 0 {
		rep.Explained = kept / total
	}
	latents := make([]Latent, len(imgs))
	var se, cnt float64
	for i, img := range imgs {
		if latents[i], err = m.Encode(img); err != nil {
			return nil, FitReport{}, err
		}
		back, err := m.Decode(latents[i])
		if err != nil {
			return nil, FitReport{}, err
		}
		s, c := sqErr(img, back)
		se, cnt = se+s, cnt+c
	}
	rep.PSNR = psnrFromMSE(se / cnt)
	if m.Stats, err = ComputeStats(latents); err != nil {
		return nil, FitReport{}, err
	}
	return m, rep, nil
}

func sqErr(a, b *image.NRGBA) (se, n float64) {
	w, h := a.Rect.Dx(), a.Rect.Dy()
	for y := range h {
		for x := range w {
			i, j := y*a.Stride+x*4, y*b.Stride+x*4
			for c := range 3 {
				d := float64(a.Pix[i+c]) - float64(b.Pix[j+c])
				se += d * d
			}
		}
	}
	return se, float64(3 * w * h)
}

func psnrFromMSE(mse float64) float64 {
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/mse)
}

// Encode projects every patch: latent channel k at (py, px) = Components[k]·(patch - Mean).
func (m *PatchPCA) Encode(img *image.NRGBA) (Latent, error) {
	if err := checkPatchable(img, m.P); err != nil {
		return Latent{}, err
	}
	dim := patchDim(m.P)
	h, w := img.Rect.Dy()/m.P, img.Rect.Dx()/m.P
	l := NewLatent(m.D, h, w)
	v := make([]float32, dim)
	for py := range h {
		for px := range w {
			extractPatch(img, m.P, px, py, v)
			for j := range v {
				v[j] -= m.Mean[j]
			}
			for k := range m.D {
				var s float32
				for j, a := range m.Components[k*dim : (k+1)*dim] {
					s += a * v[j]
				}
				l.Data[(k*h+py)*w+px] = s
			}
		}
	}
	return l, nil
}

// Decode back-projects: patch = Mean + Σ_k latent[k]·Components[k].
func (m *PatchPCA) Decode(l Latent) (*image.NRGBA, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if l.C != m.D {
		return nil, fmt.Errorf("image: patch-pca latent has %d channels, basis has %d", l.C, m.D)
	}
	dim := patchDim(m.P)
	img := image.NewNRGBA(image.Rect(0, 0, l.W*m.P, l.H*m.P))
	v := make([]float32, dim)
	for py := range l.H {
		for px := range l.W {
			copy(v, m.Mean)
			for k := range m.D {
				z := l.Data[(k*l.H+py)*l.W+px]
				for j, a := range m.Components[k*dim : (k+1)*dim] {
					v[j] += z * a
				}
			}
			placePatch(img, m.P, px, py, v)
		}
	}
	return img, nil
}

// Save writes the basis as safetensors (mean [3p²], components [D, 3p²], variance [3p²],
// latent_mean [D], latent_std [D]; metadata encoder, version, patch, dim) and returns its sha256.
func (m *PatchPCA) Save(path string) (string, error) {
	dim := patchDim(m.P)
	variance := make([]float32, len(m.Variance))
	for i, v := range m.Variance {
		variance[i] = float32(v)
	}
	return safetensors.WriteFile(path, map[string]safetensors.Tensor{
		"mean":        safetensors.FromFloat32(m.Mean, dim),
		"components":  safetensors.FromFloat32(m.Components, m.D, dim),
		"variance":    safetensors.FromFloat32(variance, len(variance)),
		"latent_mean": safetensors.FromFloat32(m.Stats.Mean, len(m.Stats.Mean)),
		"latent_std":  safetensors.FromFloat32(m.Stats.Std, len(m.Stats.Std)),
	}, map[string]string{"encoder": m.Name(), "version": m.Version(), "patch": strconv.Itoa(m.P), "dim": strconv.Itoa(m.D)})
}

// LoadPatchPCA reads a basis written by Save and returns it with the file's sha256.
func LoadPatchPCA(path string) (*PatchPCA, string, error) {
	f, sum, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	if f.Metadata["encoder"] != "patch-pca" {
		return nil, "", fmt.Errorf("image: %s is not a patch-pca basis (encoder %q)", path, f.Metadata["encoder"])
	}
	p, err1 := strconv.Atoi(f.Metadata["patch"])
	d, err2 := strconv.Atoi(f.Metadata["dim"])
	dim := patchDim(p)
	if err1 != nil || err2 != nil || p <= 0 || p > 64 || d <= 0 || d > dim {
		return nil, "", fmt.Errorf("image: %s: bad patch/dim metadata %q/%q", path, f.Metadata["patch"], f.Metadata["dim"])
	}
	m := &PatchPCA{P: p, D: d}
	get := func(name string, n int) ([]float32, error) {
		t, ok := f.Tensors[name]
		if !ok {
			return nil, fmt.Errorf("image: %s: tensor %q missing", path, name)
		}
		v, err := t.Float32s()
		if err == nil && len(v) != n {
			err = fmt.Errorf("image: %s: tensor %q has %d values, want %d", path, name, len(v), n)
		}
		return v, err
	}
	var variance []float32
	for _, g := range []struct {
		dst  *[]float32
		name string
		n    int
	}{{&m.Mean, "mean", dim}, {&m.Components, "components", d * dim}, {&variance, "variance", dim},
		{&m.Stats.Mean, "latent_mean", d}, {&m.Stats.Std, "latent_std", d}} {
		if *g.dst, err = get(g.name, g.n); err != nil {
			return nil, "", err
		}
	}
	m.Variance = make([]float64, dim)
	for i, v := range variance {
		m.Variance[i] = float64(v)
	}
	return m, sum, nil
}
