package audio

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/immkit/immkit/internal/safetensors"
)

// Codebook is a residual vector quantiser of mel frames: Stack consecutive frames are
// concatenated into one vector of Dim() = NMels*Stack values (frame j, channel m at
// j*NMels+m) and quantised by Stages codebooks in turn, each coding the residual of the
// previous ones.
type Codebook struct {
	NMels  int
	Stack  int
	K      int // codes per stage
	Stages int
	// Centroids[s] holds stage s's K code vectors: code k, element d at [k*Dim()+d].
	Centroids [][]float32
}

// Dim is the length of a code vector.
func (cb *Codebook) Dim() int { return cb.NMels * cb.Stack }

// VQOptions controls FitCodebook.
type VQOptions struct {
	K          int    // codes per stage (default 256)
	Stack      int    // frames per vector (default 1)
	Stages     int    // residual stages (default 1)
	Iters      int    // Lloyd iterations per stage after k-means++ seeding (default 20)
	MaxVectors int    // random sample of training vectors (default 50000)
	Seed       uint64 // seeds k-means++ and the sample
}

// FitCodebook fits a codebook by k-means++ seeding and Lloyd iterations on the stacked
// frames of mels (all with the same NMels), stage by stage on the residuals.
func FitCodebook(mels []*Mel, o VQOptions) (*Codebook, error) {
	if o.K == 0 {
		o.K = 256
	}
	if o.Stack == 0 {
		o.Stack = 1
	}
	if o.Stages == 0 {
		o.Stages = 1
	}
	if o.Iters == 0 {
		o.Iters = 20
	}
	if o.MaxVectors == 0 {
		o.MaxVectors = 50000
	}
	if o.K < 1 || o.Stack < 1 || o.Stages < 1 || o.Iters < 0 || o.MaxVectors < 1 {
		return nil, fmt.Errorf("audio: vq: invalid options %+v", o)
	}
	if len(mels) == 0 {
		return nil, errors.New("audio: vq: no mels to fit")
	}
	cb := &Codebook{NMels: mels[0].NMels, Stack: o.Stack, K: o.K, Stages: o.Stages}
	dim := cb.Dim()
	var vecs [][]float64
	for i, m := range mels {
		if m.NMels != cb.NMels {
			return nil, fmt.Errorf("audio: vq: mel %d has %d channels, want %d", i, m.NMels, cb.NMels)
		}
		vecs = append(vecs, cb.stacked(m)...)
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x5851f42d4c957f2d))
	if len(vecs) > o.MaxVectors {
		r.Shuffle(len(vecs), func(i, j int) { vecs[i], vecs[j] = vecs[j], vecs[i] })
		vecs = vecs[:o.MaxVectors]
	}
	if len(vecs) < o.K {
		return nil, fmt.Errorf("audio: vq: %d training vectors for %d codes", len(vecs), o.K)
	}
	assign := make([]int, len(vecs))
	for s := 0; s < o.Stages; s++ {
		cent := kmeansPP(vecs, o.K, r)
		for it := 0; it < o.Iters; it++ {
			changed := lloydStep(vecs, cent, assign, r, it == 0)
			if !changed {
				break
			}
		}
		c32 := make([]float32, o.K*dim)
		for k, c := range cent {
			for d, v := range c {
				c32[k*dim+d] = float32(v)
			}
		}
		cb.Centroids = append(cb.Centroids, c32)
		for _, v := range vecs {
			k := nearest(v, cent)
			for d := range v {
				v[d] -= float64(c32[k*dim+d])
			}
		}
	}
	return cb, nil
}

// stacked returns the stacked frame vectors of m; the last group repeats the final
// frame when Frames is not a multiple of Stack.
func (cb *Codebook) stacked(m *Mel) [][]float64 {
	groups := (m.Frames + cb.Stack - 1) / cb.Stack
	out := make([][]float64, groups)
	for g := range out {
		v := make([]float64, cb.Dim())
		for j := 0; j < cb.Stack; j++ {
			f := min(g*cb.Stack+j, m.Frames-1)
			for c := 0; c < cb.NMels; c++ {
				v[j*cb.NMels+c] = float64(m.Data[c*m.Frames+f])
			}
		}
		out[g] = v
	}
	return out
}

func sqDist(a, b []float64) float64 {
	var s float64
	b = b[:len(a)]
	for i, v := range a {
		d := v - b[i]
		s += d * d
	}
	return s
}

func nearest(v []float64, cent [][]float64) int {
	best, bd := 0, math.Inf(1)
	for k, c := range cent {
		if d := sqDist(v, c); d < bd {
			best, bd = k, d
		}
	}
	return best
}

// kmeansPP picks k seeds: the first uniformly, each next with probability proportional
// to its squared distance to the nearest seed so far (Arthur and Vassilvitskii).
func kmeansPP(vecs [][]float64, k int, r *rand.Rand) [][]float64 {
	cent := [][]float64{append([]float64(nil), vecs[r.IntN(len(vecs))]...)}
	d2 := make([]float64, len(vecs))
	for i, v := range vecs {
		d2[i] = sqDist(v, cent[0])
	}
	for len(cent) < k {
		var total float64
		for _, d := range d2 {
			total += d
		}
		pick := r.IntN(len(vecs))
		if total > 0 {
			u := r.Float64() * total
			for i, d := range d2 {
				u -= d
				if u <= 0 {
					pick = i
					break
				}
			}
		}
		c := append([]float64(nil), vecs[pick]...)
		cent = append(cent, c)
		for i, v := range vecs {
			d2[i] = math.Min(d2[i], sqDist(v, c))
		}
	}
	return cent
}

// lloydStep assigns each vector to its nearest centroid and moves centroids to their
// means; an empty cluster takes the vector farthest from its centroid.
func lloydStep(vecs, cent [][]float64, assign []int, r *rand.Rand, first bool) bool {
	changed := first
	far, farD := 0, -1.0
	for i, v := range vecs {
		k := nearest(v, cent)
		if k != assign[i] {
			changed = true
		}
		assign[i] = k
		if d := sqDist(v, cent[k]); d > farD {
			far, farD = i, d
		}
	}
	dim := len(cent[0])
	sums := make([][]float64, len(cent))
	counts := make([]int, len(cent))
	for k := range sums {
		sums[k] = make([]float64, dim)
	}
	for i, v := range vecs {
		k := assign[i]
		counts[k]++
		for d, x := range v {
			sums[k][d] += x
		}
	}
	for k := range cent {
		if counts[k] == 0 {
			copy(cent[k], vecs[far])
			far = r.IntN(len(vecs))
			changed = true
			continue
		}
		for d := range cent[k] {
			cent[k][d] = sums[k][d] / float64(counts[k])
		}
	}
	return changed
}

// Encode returns the tokens of m: group g (Stack frames), stage s at [g*Stages+s], each in
// 0..K-1.
func (cb *Codebook) Encode(m *Mel) ([]int32, error) {
	if m.NMels != cb.NMels {
		return nil, fmt.Errorf("audio: vq: mel has %d channels, codebook %d", m.NMels, cb.NMels)
	}
	cents := cb.float64Centroids()
	vecs := cb.stacked(m)
	out := make([]int32, 0, len(vecs)*cb.Stages)
	for _, v := range vecs {
		for s := 0; s < cb.Stages; s++ {
			k := nearest(v, cents[s])
			out = append(out, int32(k))
			for d := range v {
				v[d] -= cents[s][k][d]
			}
		}
	}
	return out, nil
}

func (cb *Codebook) float64Centroids() [][][]float64 {
	dim := cb.Dim()
	out := make([][][]float64, cb.Stages)
	for s, c := range cb.Centroids {
		out[s] = make([][]float64, cb.K)
		for k := range out[s] {
			v := make([]float64, dim)
			for d := range v {
				v[d] = float64(c[k*dim+d])
			}
			out[s][k] = v
		}
	}
	return out
}

// Decode sums the stage codes of each group and unstacks them into a mel of
// len(tokens)/Stages*Stack frames (cfg is recorded as its Config).
func (cb *Codebook) Decode(tokens []int32, cfg MelConfig) (*Mel, error) {
	if len(tokens)%cb.Stages != 0 {
		return nil, fmt.Errorf("audio: vq: %d tokens are not a multiple of %d stages", len(tokens), cb.Stages)
	}
	groups := len(tokens) / cb.Stages
	frames := groups * cb.Stack
	dim := cb.Dim()
	out := make([]float32, cb.NMels*frames)
	v := make([]float64, dim)
	for g := 0; g < groups; g++ {
		clear(v)
		for s := 0; s < cb.Stages; s++ {
			k := int(tokens[g*cb.Stages+s])
			if k < 0 || k >= cb.K {
				return nil, fmt.Errorf("audio: vq: token %d out of range 0..%d", k, cb.K-1)
			}
			for d := range v {
				v[d] += float64(cb.Centroids[s][k*dim+d])
			}
		}
		for j := 0; j < cb.Stack; j++ {
			for c := 0; c < cb.NMels; c++ {
				out[c*frames+g*cb.Stack+j] = float32(v[j*cb.NMels+c])
			}
		}
	}
	return &Mel{Data: out, NMels: cb.NMels, Frames: frames, Config: cfg}, nil
}

// Save writes the codebook as safetensors: tensors "codebook.S" (F32, shape [K, Dim]) and
// __metadata__ {format: immkit-audio-vq, n_mels, stack, k, stages}. It returns the hex
// sha256 of the bytes written.
func (cb *Codebook) Save(w io.Writer) (string, error) {
	if len(cb.Centroids) != cb.Stages {
		return "", fmt.Errorf("audio: vq: %d stages with %d codebooks", cb.Stages, len(cb.Centroids))
	}
	tensors := make(map[string]safetensors.Tensor, cb.Stages)
	for s, c := range cb.Centroids {
		if len(c) != cb.K*cb.Dim() {
			return "", fmt.Errorf("audio: vq: stage %d has %d values, want %d", s, len(c), cb.K*cb.Dim())
		}
		tensors["codebook."+strconv.Itoa(s)] = safetensors.FromFloat32(c, cb.K, cb.Dim())
	}
	meta := map[string]string{
		"format": "immkit-audio-vq", "n_mels": strconv.Itoa(cb.NMels), "stack": strconv.Itoa(cb.Stack),
		"k": strconv.Itoa(cb.K), "stages": strconv.Itoa(cb.Stages),
	}
	h := sha256.New()
	if err := safetensors.Encode(io.MultiWriter(w, h), tensors, meta); err != nil {
		return "", fmt.Errorf("audio: vq: save: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// LoadCodebook reads a codebook written by Save.
func LoadCodebook(data []byte) (*Codebook, error) {
	f, err := safetensors.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("audio: vq: %w", err)
	}
	if f.Metadata["format"] != "immkit-audio-vq" {
		return nil, errors.New("audio: vq: not an immkit-audio-vq safetensors file")
	}
	cb := &Codebook{}
	for _, m := range []struct {
		key string
		dst *int
	}{{"n_mels", &cb.NMels}, {"stack", &cb.Stack}, {"k", &cb.K}, {"stages", &cb.Stages}} {
		v, err := strconv.Atoi(f.Metadata[m.key])
		if err != nil || v < 1 || v > 1<<20 {
			return nil, fmt.Errorf("audio: vq: metadata %s = %q", m.key, f.Metadata[m.key])
		}
		*m.dst = v
	}
	if len(f.Tensors) != cb.Stages {
		return nil, fmt.Errorf("audio: vq: %d tensors for %d stages", len(f.Tensors), cb.Stages)
	}
	for s := 0; s < cb.Stages; s++ {
		name := "codebook." + strconv.Itoa(s)
		t, ok := f.Tensors[name]
		if !ok {
			return nil, fmt.Errorf("audio: vq: tensor %s missing", name)
		}
		if t.DType != safetensors.F32 || len(t.Shape) != 2 || t.Shape[0] != cb.K || t.Shape[1] != cb.Dim() {
			return nil, fmt.Errorf("audio: vq: tensor %s has dtype %s shape %v, want F32 [%d %d]", name, t.DType, t.Shape, cb.K, cb.Dim())
		}
		c, err := t.Float32s()
		if err != nil {
			return nil, fmt.Errorf("audio: vq: tensor %s: %w", name, err)
		}
		cb.Centroids = append(cb.Centroids, c)
	}
	return cb, nil
}
