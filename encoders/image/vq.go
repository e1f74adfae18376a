package image

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/immkit/immkit/internal/safetensors"
)

// Tokens are the discrete codes of a picture, one per p×p patch, row-major:
// IDs[y*W + x] is the code of the patch at patch-grid position (x, y).
type Tokens struct {
	H, W int
	IDs  []int32
}

// VQ is a codebook of K patch vectors (see patch.go; dim 3p², values in [-1, 1]) fitted by
// k-means++ and Lloyd iterations. Encode gives each patch the index of its nearest code
// (squared Euclidean distance); Decode paints the codes' patches. With p = 1 the codebook is
// a colour palette (iGPT-style).
type VQ struct {
	P, K int
	// Codebook holds the codes as rows: code k is Codebook[k*3p² : (k+1)*3p²].
	Codebook []float32
	norms    []float32 // |code k|², filled lazily
	once     sync.Once
}

// Name and Version identify the encoder in manifests ("vq@1").
func (*VQ) Name() string    { return "vq" }
func (*VQ) Version() string { return "1" }

// FitVQ fits K codes on p×p patches of imgs (at most maxPatches, sampled with seed; 0 = all)
// with k-means++ seeding and at most iters Lloyd iterations, and reports the reconstruction
// PSNR on imgs.
func FitVQ(imgs []*image.NRGBA, p, K, iters, maxPatches int, seed uint64) (*VQ, FitReport, error) {
	if p <= 0 || K < 1 || K > 1<<20 || iters < 0 {
		return nil, FitReport{}, fmt.Errorf("image: vq needs p >= 1, 1 <= K <= 2^20, iters >= 0; got p=%d K=%d iters=%d", p, K, iters)
	}
	X, n, err := samplePatches(imgs, p, maxPatches, seed)
	if err != nil {
		return nil, FitReport{}, err
	}
	if n < K {
		return nil, FitReport{}, fmt.Errorf("image: vq with K=%d codes needs at least K patches, have %d", K, n)
	}
	dim := patchDim(p)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	q := &VQ{P: p, K: K, Codebook: make([]float32, K*dim)}

	// k-means++ seeding: each next code is a sample point drawn with probability ∝ its
	// squared distance to the nearest code chosen so far.
	dist := make([]float64, n)
	first := rng.IntN(n)
	copy(q.Codebook[:dim], X[first*dim:(first+1)*dim])
	for i := range n {
		dist[i] = sqDist(X[i*dim:(i+1)*dim], q.Codebook[:dim])
	}
	for k := 1; k < K; k++ {
		var total float64
		for _, d := range dist {
			total += d
		}
		pick := rng.IntN(n)
		if total > 0 {
			r := rng.Float64() * total
			for i, d := range dist {
				r -= d
				if r < 0 {
					pick = i
					break
				}
			}
		}
		code := q.Codebook[k*dim : (k+1)*dim]
		copy(code, X[pick*dim:(pick+1)*dim])
		parallelRange(n, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				dist[i] = math.Min(dist[i], sqDist(X[i*dim:(i+1)*dim], code))
			}
		})
	}

	// Lloyd iterations.
	assign := make([]int32, n)
	for it := 0; it < iters; it++ {
		q.norms = nil
		q.once = sync.Once{}
		changed := 0
		var mu sync.Mutex
		parallelRange(n, func(lo, hi int) {
			c := 0
			for i := lo; i < hi; i++ {
				k, d := q.nearest(X[i*dim : (i+1)*dim])
				dist[i] = d
				if k != assign[i] || it == 0 {
					c++
				}
				assign[i] = k
			}
			mu.Lock()
			changed += c
			mu.Unlock()
		})
		if changed == 0 {
			break
		}
		sums := make([]float64, K*dim)
		counts := make([]int, K)
		for i := range n {
			k := int(assign[i])
			counts[k]++
			for j, v := range X[i*dim : (i+1)*dim] {
				sums[k*dim+j] += float64(v)
			}
		}
		for k := range K {
			code := q.Codebook[k*dim : (k+1)*dim]
			if counts[k] == 0 { // empty cluster: move it to the worst-served point
				far := 0
				for i := range n {
					if dist[i] > dist[far] {
						far = i
					}
				}
				copy(code, X[far*dim:(far+1)*dim])
				dist[far] = 0
				continue
			}
			for j := range code {
				code[j] = float32(sums[k*dim+j] / float64(counts[k]))
			}
		}
	}
	q.norms = nil
	q.once = sync.Once{}

	rep := FitReport{Patches: n}
	var se, cnt float64
	for _, img := range imgs {
		t, err := q.Encode(img)
		if err != nil {
			return nil, FitReport{}, err
		}
		back, err := q.Decode(t)
		if err != nil {
			return nil, FitReport{}, err
		}
		s, c := sqErr(img, back)
		se, cnt = se+s, cnt+c
	}
	rep.PSNR = psnrFromMSE(se / cnt)
	return q, rep, nil
}

func sqDist(a, b []float32) float64 {
	var s float32
	for j, v := range a {
		d := v - b[j]
		s += d * d
	}
	return float64(s)
}

// parallelRange splits [0, n) into GOMAXPROCS contiguous chunks and waits for all.
func parallelRange(n int, f func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), max(1, n/256))
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*n/workers, (w+1)*n/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

// nearest returns the index of the code closest to v and the squared distance, using
// |v-c|² = |v|² - 2 v·c + |c|²; ties go to the lower index.
func (q *VQ) nearest(v []float32) (int32, float64) {
	q.once.Do(func() {
		if q.norms != nil {
			return
		}
		dim := patchDim(q.P)
		q.norms = make([]float32, q.K)
		for k := range q.K {
			for _, c := range q.Codebook[k*dim : (k+1)*dim] {
				q.norms[k] += c * c
			}
		}
	})
	dim := len(v)
	best, bestD := int32(0), float32(math.Inf(1))
	for k := range q.K {
		code := q.Codebook[k*dim : (k+1)*dim : (k+1)*dim]
		var dot float32
		for j, x := range v {
			dot += x * code[j]
		}
		if d := q.norms[k] - 2*dot; d < bestD {
			best, bestD = int32(k), d
		}
	}
	var vv float32
	for _, x := range v {
		vv += x * x
	}
	return best, math.Max(float64(bestD+vv), 0)
}

// Encode gives every p×p patch of img its nearest code.
func (q *VQ) Encode(img *image.NRGBA) (Tokens, error) {
	if err := checkPatchable(img, q.P); err != nil {
		return Tokens{}, err
	}
	h, w := img.Rect.Dy()/q.P, img.Rect.Dx()/q.P
	t := Tokens{H: h, W: w, IDs: make([]int32, h*w)}
	v := make([]float32, patchDim(q.P))
	for py := range h {
		for px := range w {
			extractPatch(img, q.P, px, py, v)
			t.IDs[py*w+px], _ = q.nearest(v)
		}
	}
	return t, nil
}

// EncodeBatch encodes pictures on GOMAXPROCS goroutines; out[i] belongs to imgs[i].
func (q *VQ) EncodeBatch(imgs []*image.NRGBA) ([]Tokens, error) {
	out := make([]Tokens, len(imgs))
	errs := make([]error, len(imgs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(imgs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(imgs); i = int(next.Add(1) - 1) {
				out[i], errs[i] = q.Encode(imgs[i])
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("picture %d: %w", i, err)
		}
	}
	return out, nil
}

// Decode paints each token's code patch.
func (q *VQ) Decode(t Tokens) (*image.NRGBA, error) {
	if t.H <= 0 || t.W <= 0 || len(t.IDs) != t.H*t.W {
		return nil, fmt.Errorf("image: %d tokens for a %dx%d grid", len(t.IDs), t.W, t.H)
	}
	dim := patchDim(q.P)
	img := image.NewNRGBA(image.Rect(0, 0, t.W*q.P, t.H*q.P))
	for py := range t.H {
		for px := range t.W {
			id := t.IDs[py*t.W+px]
			if id < 0 || int(id) >= q.K {
				return nil, fmt.Errorf("image: token %d outside codebook of %d", id, q.K)
			}
			placePatch(img, q.P, px, py, q.Codebook[int(id)*dim:(int(id)+1)*dim])
		}
	}
	return img, nil
}

// Save writes the codebook as safetensors (codebook [K, 3p²]; metadata encoder, version,
// patch, codes) and returns its sha256.
func (q *VQ) Save(path string) (string, error) {
	return safetensors.WriteFile(path, map[string]safetensors.Tensor{
		"codebook": safetensors.FromFloat32(q.Codebook, q.K, patchDim(q.P)),
	}, map[string]string{"encoder": q.Name(), "version": q.Version(), "patch": strconv.Itoa(q.P), "codes": strconv.Itoa(q.K)})
}

// LoadVQ reads a codebook written by Save and returns it with the file's sha256.
func LoadVQ(path string) (*VQ, string, error) {
	f, sum, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	if f.Metadata["encoder"] != "vq" {
		return nil, "", fmt.Errorf("image: %s is not a vq codebook (encoder %q)", path, f.Metadata["encoder"])
	}
	p, err1 := strconv.Atoi(f.Metadata["patch"])
	k, err2 := strconv.Atoi(f.Metadata["codes"])
	if err1 != nil || err2 != nil || p <= 0 || p > 64 || k <= 0 {
		return nil, "", fmt.Errorf("image: %s: bad patch/codes metadata", path)
	}
	t, ok := f.Tensors["codebook"]
	if !ok {
		return nil, "", fmt.Errorf("image: %s: tensor \"codebook\" missing", path)
	}
	cb, err := t.Float32s()
	if err != nil {
		return nil, "", err
	}
	if len(cb) != k*patchDim(p) {
		return nil, "", fmt.Errorf("image: %s: codebook has %d values, want %d", path, len(cb), k*patchDim(p))
	}
	return &VQ{P: p, K: k, Codebook: cb}, sum, nil
}
