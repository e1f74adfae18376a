package audio

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
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
	type entry struct {
		Dtype   string  `json:"dtype"`
		Shape   []int   `json:"shape"`
		Offsets []int64 `json:"data_offsets"`
	}
	header := map[string]any{"__metadata__": map[string]string{
		"format": "immkit-audio-vq", "n_mels": strconv.Itoa(cb.NMels), "stack": strconv.Itoa(cb.Stack),
		"k": strconv.Itoa(cb.K), "stages": strconv.Itoa(cb.Stages),
	}}
	var off int64
	for s, c := range cb.Centroids {
		if len(c) != cb.K*cb.Dim() {
			return "", fmt.Errorf("audio: vq: stage %d has %d values, want %d", s, len(c), cb.K*cb.Dim())
		}
		n := int64(4 * len(c))
		header["codebook."+strconv.Itoa(s)] = entry{"F32", []int{cb.K, cb.Dim()}, []int64{off, off + n}}
		off += n
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	var buf bytes.Buffer
	binary.Write(&buf, binary.LittleEndian, uint64(len(hj)))
	buf.Write(hj)
	for _, c := range cb.Centroids {
		for _, v := range c {
			binary.Write(&buf, binary.LittleEndian, math.Float32bits(v))
		}
	}
	sum := sha256.Sum256(buf.Bytes())
	if _, err := w.Write(buf.Bytes()); err != nil {
		return "", err
	}
	return hex.EncodeToString(sum[:]), nil
}

// LoadCodebook reads a codebook written by Save.
func LoadCodebook(data []byte) (*Codebook, error) {
	if len(data) < 8 {
		return nil, errors.New("audio: vq: safetensors file too short")
	}
	hl := binary.LittleEndian.Uint64(data)
	if hl > uint64(len(data)-8) {
		return nil, fmt.Errorf("audio: vq: safetensors header of %d bytes in a %d-byte file", hl, len(data))
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(data[8:8+hl], &header); err != nil {
		return nil, fmt.Errorf("audio: vq: safetensors header: %w", err)
	}
	body := data[8+hl:]
	var md map[string]string
	if err := json.Unmarshal(header["__metadata__"], &md); err != nil || md["format"] != "immkit-audio-vq" {
		return nil, errors.New("audio: vq: not an immkit-audio-vq safetensors file")
	}
	cb := &Codebook{}
	for _, f := range []struct {
		key string
		dst *int
	}{{"n_mels", &cb.NMels}, {"stack", &cb.Stack}, {"k", &cb.K}, {"stages", &cb.Stages}} {
		v, err := strconv.Atoi(md[f.key])
		if err != nil || v < 1 || v > 1<<20 {
			return nil, fmt.Errorf("audio: vq: metadata %s = %q", f.key, md[f.key])
		}
		*f.dst = v
	}
	var names []string
	for k := range header {
		if k != "__metadata__" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	if len(names) != cb.Stages {
		return nil, fmt.Errorf("audio: vq: %d tensors for %d stages", len(names), cb.Stages)
	}
	for s := 0; s < cb.Stages; s++ {
		var e struct {
			Dtype   string  `json:"dtype"`
			Shape   []int   `json:"shape"`
			Offsets []int64 `json:"data_offsets"`
		}
		raw, ok := header["codebook."+strconv.Itoa(s)]
		if !ok {
			return nil, fmt.Errorf("audio: vq: tensor codebook.%d missing", s)
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("audio: vq: tensor codebook.%d: %w", s, err)
		}
		n := int64(cb.K) * int64(cb.Dim())
		if e.Dtype != "F32" || len(e.Shape) != 2 || e.Shape[0] != cb.K || e.Shape[1] != cb.Dim() ||
			len(e.Offsets) != 2 || e.Offsets[0] < 0 || e.Offsets[1]-e.Offsets[0] != 4*n || e.Offsets[1] > int64(len(body)) {
			return nil, fmt.Errorf("audio: vq: tensor codebook.%d has dtype %s shape %v offsets %v", s, e.Dtype, e.Shape, e.Offsets)
		}
		c := make([]float32, n)
		b := body[e.Offsets[0]:e.Offsets[1]]
		for i := range c {
			c[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		cb.Centroids = append(cb.Centroids, c)
	}
	return cb, nil
}
