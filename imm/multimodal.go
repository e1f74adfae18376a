package imm

import (
	"errors"
	"fmt"
	"math"

	"github.com/immkit/immkit/kernels"
)

// Multimodal runs the IMM objective on multimodal particles (DESIGN.md section 5): every
// modality of a sample is a fixed-length segment of continuous vectors, the segments are
// concatenated into one particle of Obj.Dim values (see nn.Multimodal for the layout),
// and one grouped Laplace-MMD covers the whole particle with padding masked out.
//
// A mask is a host slice of rows*Dim values, 1 for a real coordinate of particle i and
// 0 for padding (or for a coordinate held as conditioning, see Hold). Masked coordinates
// are zeroed in both y_t and y_r before the MMD, so they add nothing to any distance,
// and each group's kernel uses the effective dimension D_g = the number of coordinates
// unmasked in at least one particle of the group, instead of Dim: the kernel weight
// passed to Device.LaplaceMMD (which divides by Dim) is w~ Dim / D_g. The gradient is
// masked the same way. Data and noise at padded coordinates should be 0 (MaskNoise), so
// the network sees zeros there.
type Multimodal[T kernels.Float] struct {
	Obj *Objective[T]
	// Segments are the LaplaceMMD segment bounds (Device.LaplaceMMD): nil for one
	// Euclidean norm over the particle, the modality bounds for Config.Kernel "modality".
	Segments []int

	mask, present, ytm, yrm, grad, dg, kw, gw, mmd, tmp kernels.Buffer
}

// NewMultimodal wraps an objective whose network takes multimodal particles.
func NewMultimodal[T kernels.Float](obj *Objective[T]) *Multimodal[T] {
	return &Multimodal[T]{Obj: obj}
}

// SegmentBounds returns the LaplaceMMD segment bounds of Config.Kernel for the model:
// the offsets of a multimodal model's segments under "modality", nil otherwise (one
// segment).
func SegmentBounds(cfg Config, mc ModelConfig) []int {
	if cfg.Kernel != "modality" || mc.Multimodal == nil || len(mc.Multimodal.Segments) < 2 {
		return nil
	}
	b := []int{0}
	for _, sg := range mc.Multimodal.Segments {
		b = append(b, b[len(b)-1]+sg.Tokens*sg.Features)
	}
	return b
}

// uploadMask checks a host mask of rows particles and writes it to the device buffer
// *dst (mm.mask or mm.present), grown as needed.
func (mm *Multimodal[T]) uploadMask(dst *kernels.Buffer, mask []T, rows int) (kernels.Buffer, error) {
	D := mm.Obj.Dim
	if len(mask) != rows*D {
		return nil, fmt.Errorf("imm: mask has %d values for %d particles of dim %d", len(mask), rows, D)
	}
	for i, v := range mask {
		if v != 0 && v != 1 {
			return nil, fmt.Errorf("imm: mask value %v at particle %d coordinate %d is not 0 or 1", v, i/D, i%D)
		}
	}
	b := mm.Obj.grow(dst, rows*D)
	mm.Obj.Dev.Write(b, mask)
	return b, nil
}

// EffectiveDims returns D_g for each group of m particles: the number of coordinates
// unmasked in at least one particle of the group.
func EffectiveDims[T kernels.Float](mask []T, groups, m, dim int) []int {
	out := make([]int, groups)
	for g := range groups {
		for i := range dim {
			for j := range m {
				if mask[(g*m+j)*dim+i] != 0 {
					out[g]++
					break
				}
			}
		}
	}
	return out
}

// MaskNoise zeroes e where mask is 0 (mask as in Multimodal, rows*Dim values).
func (mm *Multimodal[T]) MaskNoise(e kernels.Buffer, mask []T, rows int) error {
	_, err := mm.maskNoise(e, mask, rows)
	return err
}

// maskNoise is MaskNoise that also returns the mask it wrote to the device (mm.mask),
// for loss.
func (mm *Multimodal[T]) maskNoise(e kernels.Buffer, mask []T, rows int) (kernels.Buffer, error) {
	mk, err := mm.uploadMask(&mm.mask, mask, rows)
	if err != nil {
		return nil, err
	}
	mm.Obj.Dev.Mul(e, e, mk, 0)
	return mk, nil
}

// Hold makes the coordinates where present is 1 conditioning: it sets e = x there, which
// on the OT-FM path (a_t + s_t = 1) gives x_t = x and x_r = DDIM(x_t, x, r, t) = x, so
// present segments enter both branches at their clean values, as in SampleHeld. Exclude
// them from the loss mask. present has rows*Dim values in {0, 1}.
func (mm *Multimodal[T]) Hold(e, x kernels.Buffer, present []T, rows int) error {
	if mm.Obj.Cfg.Schedule != "ot-fm" {
		return errors.New("imm: holding present segments clean in training needs the ot-fm schedule")
	}
	pk, err := mm.uploadMask(&mm.present, present, rows)
	if err != nil {
		return err
	}
	d, n := mm.Obj.Dev, rows*mm.Obj.Dim
	tmp := mm.Obj.grow(&mm.tmp, n)
	d.Mul(tmp, x, pk, 0)  // p*x
	d.Mul(tmp, e, pk, -1) // p*e - p*x
	d.Axpby(-1, tmp, 1, e)
	return nil
}

// Loss is Objective.Loss with the mask of rows = groups*M particles applied as described
// on Multimodal. yr comes from Obj.Target with the same x, e, draws and labels.
func (mm *Multimodal[T]) Loss(x, e kernels.Buffer, mask []T, dr Draws, labels []int32, yr kernels.Buffer, backward bool) (float64, error) {
	o := mm.Obj
	rows, err := o.check(x, e, dr, labels)
	if err != nil {
		return 0, err
	}
	mk, err := mm.uploadMask(&mm.mask, mask, rows)
	if err != nil {
		return 0, err
	}
	return mm.loss(x, e, mask, mk, dr, labels, yr, rows, backward)
}

// loss is Loss with the mask already checked and written to mk (Trainer.Update writes
// it once for MaskNoise and the loss).
func (mm *Multimodal[T]) loss(x, e kernels.Buffer, mask []T, mk kernels.Buffer, dr Draws, labels []int32, yr kernels.Buffer, rows int, backward bool) (float64, error) {
	o := mm.Obj
	m, groups, D := o.Cfg.M, len(dr.T), o.Dim
	deff := EffectiveDims(mask, groups, m, D)
	for g, n := range deff {
		if n == 0 {
			return 0, fmt.Errorf("imm: group %d has no unmasked coordinate", g)
		}
	}
	xt := o.interpolate(x, e, dr, rows)
	sf, tf := func(i int) float64 { return dr.S[i/m] }, func(i int) float64 { return dr.T[i/m] }
	g, err := o.G(xt, sf, tf, labels, 0, 1, rows)
	if err != nil {
		return 0, err
	}
	skip := o.upload(3, rows, func(i int) float64 { k, _ := o.Cfg.Skip(sf(i), tf(i)); return k })
	cout := o.upload(4, rows, func(i int) float64 { _, c := o.Cfg.Skip(sf(i), tf(i)); return c })
	yt := o.grow(&mm.ytm, rows*D)
	o.Dev.RowComb(yt, skip, xt, cout, g, rows, D)
	o.Dev.Mul(yt, yt, mk, 0)
	yrm := o.grow(&mm.yrm, rows*D)
	o.Dev.Mul(yrm, yr, mk, 0)

	kw := o.upload(5, groups, func(i int) float64 {
		return o.Cfg.KernelWeight(dr.S[i], dr.T[i]) * float64(D) / float64(deff[i])
	})
	w := make([]float64, groups)
	hw := make([]T, groups)
	for i := range w {
		w[i] = o.Cfg.Weight(dr.S[i], dr.T[i])
		hw[i] = T(w[i] / float64(groups))
	}
	gw := o.grow(&mm.gw, groups)
	o.Dev.Write(gw, hw)
	mmd := o.grow(&mm.mmd, groups)
	var grad kernels.Buffer
	if backward {
		grad = o.grow(&mm.grad, rows*D)
	}
	o.Dev.LaplaceMMD(mmd, grad, yt, yrm, kw, gw, groups, m, D, mm.Segments)
	hm := make([]T, groups)
	o.Dev.Read(hm, mmd)
	var loss float64
	for i := range hm {
		loss += w[i] * float64(hm[i]) / float64(groups)
	}
	if backward {
		o.Dev.Mul(grad, grad, mk, 0)
		dg := o.grow(&mm.dg, rows*D)
		o.Dev.RowComb(dg, cout, grad, nil, nil, rows, D)
		o.Net.Backward(dg)
	}
	return loss, nil
}

// SampleHeld generates the coordinates where present is 0 given the clean values at the
// coordinates where it is 1: x (rows x Dim, x_T drawn by the caller) is sampled in place
// with the pushforward sampler, and before the first step and after every step the
// present coordinates are reset to clean. Guidance and labels come from sp.
func (mm *Multimodal[T]) SampleHeld(x, clean kernels.Buffer, present []T, rows int, sp Sampler) error {
	if sp.Kind != "" && sp.Kind != "pushforward" {
		return fmt.Errorf("imm: held-segment sampling supports the pushforward sampler, got %q", sp.Kind)
	}
	o := mm.Obj
	grid := sp.Grid
	if len(grid) == 0 {
		if sp.Steps < 1 {
			return fmt.Errorf("imm: need at least one sampling step, got %d", sp.Steps)
		}
		grid = o.Cfg.Grid(sp.Steps)
	}
	pk, err := mm.uploadMask(&mm.present, present, rows)
	if err != nil {
		return err
	}
	d, n := o.Dev, rows*o.Dim
	tmp := o.grow(&mm.tmp, n)
	reset := func() { // x = x - p*x + p*clean
		d.Mul(tmp, x, pk, 0)      // p*x
		d.Mul(tmp, clean, pk, -1) // p*clean - p*x
		d.Axpby(1, tmp, 1, x)
	}
	reset()
	for i := len(grid) - 1; i >= 1; i-- {
		step := sp
		step.Kind, step.Grid, step.Steps = "pushforward", []float64{grid[i-1], grid[i]}, 0
		if err := o.Sample(x, rows, step); err != nil {
			return err
		}
		reset()
	}
	return nil
}

// TextTable is a frozen token embedding table for the text segment: Vec[id*Dim+j] is
// coordinate j of token id, for id < Vocab, scaled so that the root mean square of all
// entries is sigma_d. Generated vectors are decoded to the nearest row (L2).
type TextTable[T kernels.Float] struct {
	Vocab, Dim int
	Vec        []T
}

// NewTextTable copies vec (vocab x dim) and scales it to root mean square sigmaD.
func NewTextTable[T kernels.Float](vec []T, vocab, dim int, sigmaD float64) (*TextTable[T], error) {
	if vocab < 1 || dim < 1 || len(vec) != vocab*dim {
		return nil, fmt.Errorf("imm: text table of %d values is not %d x %d", len(vec), vocab, dim)
	}
	var ss float64
	for _, v := range vec {
		ss += float64(v) * float64(v)
	}
	if !(ss > 0) || math.IsInf(ss, 0) {
		return nil, fmt.Errorf("imm: text table has sum of squares %v; want a finite positive value", ss)
	}
	s := sigmaD / math.Sqrt(ss/float64(len(vec)))
	t := &TextTable[T]{Vocab: vocab, Dim: dim, Vec: make([]T, len(vec))}
	for i, v := range vec {
		t.Vec[i] = T(float64(v) * s)
	}
	return t, nil
}

// Encode writes the embeddings of ids to dst (len(ids)*Dim values).
func (t *TextTable[T]) Encode(dst []T, ids []int32) error {
	if len(dst) != len(ids)*t.Dim {
		return fmt.Errorf("imm: %d values for %d tokens of dim %d", len(dst), len(ids), t.Dim)
	}
	for i, id := range ids {
		if id < 0 || int(id) >= t.Vocab {
			return fmt.Errorf("imm: token %d at position %d outside vocabulary of %d", id, i, t.Vocab)
		}
		copy(dst[i*t.Dim:(i+1)*t.Dim], t.Vec[int(id)*t.Dim:(int(id)+1)*t.Dim])
	}
	return nil
}

// Decode returns, for each Dim-vector of vecs, the id of the nearest table row (smallest
// id on ties).
func (t *TextTable[T]) Decode(vecs []T) ([]int32, error) {
	if len(vecs)%t.Dim != 0 {
		return nil, fmt.Errorf("imm: %d values are not whole tokens of dim %d", len(vecs), t.Dim)
	}
	out := make([]int32, len(vecs)/t.Dim)
	for i := range out {
		v := vecs[i*t.Dim : (i+1)*t.Dim]
		best := math.Inf(1)
		for id := 0; id < t.Vocab; id++ {
			var d2 float64
			for j, e := range t.Vec[id*t.Dim : (id+1)*t.Dim] {
				x := float64(v[j]) - float64(e)
				d2 += x * x
			}
			if d2 < best {
				best, out[i] = d2, int32(id)
			}
		}
	}
	return out, nil
}
