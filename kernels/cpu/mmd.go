package cpu

import (
	"math"

	"github.com/immkit/immkit/kernels"
)

// LaplaceMMD computes the grouped Laplace-kernel MMD and its gradient with respect to yt;
// see kernels.Device. Distances and sums are accumulated in float64.
//
// The kernel is symmetric and k(a, a) is exp(-w 1e-8) (a clamped distance) for a finite
// a, so each unordered pair of the yt rows and of the yr rows is evaluated once (its
// gradient goes to both rows, with opposite signs) and the pairs of a row with itself
// are not evaluated: m(m-1) + m^2 distances per group instead of 3 m^2. A row with a
// NaN or an infinity makes its group's MMD NaN, as evaluating k(a, a) would.
func (d *Device[T]) LaplaceMMD(mmd, grad, yt, yr, kw, gw kernels.Buffer, groups, m, dim int, segs []int) {
	segs, err := kernels.Segments(segs, dim)
	if err != nil {
		panic(err)
	}
	ms, gs, ts, rs, kws := d.s(mmd), d.s(grad), d.s(yt), d.s(yr), d.s(kw)
	var gws []T
	if gs != nil {
		gws = d.s(gw)
	}
	d.parallel(groups, 1, func(lo, hi int) {
		diff := make([]float64, dim)
		acc := make([]float64, m*dim) // the gradient sums of the group's m yt rows
		nqs := make([]float64, len(segs))
		for g := lo; g < hi; g++ {
			w := float64(kws[g]) / float64(dim)
			base := g * m * dim
			row := func(s []T, j int) []T { return s[base+j*dim : base+j*dim+dim] }
			// kern returns k(a,b) = exp(-w sum_q ||a_q-b_q||) (a sum of at most 1e-8
			// counts as 1e-8), leaves a-b in diff and each segment's norm in nqs (0 for
			// a norm <= 1e-8), and returns the sum of the norms (not finite when a or b
			// is not) and whether it was clamped.
			kern := func(a, b []T) (k, n float64, clamped bool) {
				for q := 1; q < len(segs); q++ {
					nq := math.Sqrt(diffSquares(diff, a, b, segs[q-1], segs[q]))
					if nq <= 1e-8 {
						nq = 0
					}
					nqs[q] = nq
					n += nq
				}
				if n <= 1e-8 {
					return math.Exp(-w * 1e-8), n, true
				}
				return math.Exp(-w * n), n, false
			}
			// add adds c times the unit vectors of k's last pair, segment by segment,
			// to row j's sum and subtracts them from row l's (l < 0: none): the gradient
			// of k is -w k times them (a clamped segment adds nothing).
			add := func(j, l int, c float64) {
				for q := 1; q < len(segs); q++ {
					if nqs[q] == 0 {
						continue
					}
					lo, hi := segs[q-1], segs[q]
					addScaled(acc[j*dim+lo:j*dim+hi], diff[lo:hi], c/nqs[q])
					if l >= 0 {
						addScaled(acc[l*dim+lo:l*dim+hi], diff[lo:hi], -c/nqs[q])
					}
				}
			}
			clear(acc)
			var stt, srr, str float64
			// a distance between a yt and a yr row is not finite exactly when one of
			// them is not, and every row is in one of them
			nonFinite := false
			for j := 0; j < m; j++ {
				for l := 0; l < m; l++ {
					k, n, clamped := kern(row(ts, j), row(rs, l))
					str += k
					nonFinite = nonFinite || math.IsNaN(n) || math.IsInf(n, 0)
					if gs != nil && !clamped {
						add(j, -1, -(2 * k * (-w)))
					}
				}
				for l := j + 1; l < m; l++ {
					k, _, clamped := kern(row(ts, j), row(ts, l))
					stt += 2 * k
					if gs != nil && !clamped {
						add(j, l, 2*k*(-w))
					}
					k, _, _ = kern(row(rs, j), row(rs, l))
					srr += 2 * k
				}
			}
			self := math.Exp(-w * 1e-8) // k(a, a)
			if nonFinite {
				self = math.NaN()
			}
			stt += float64(m) * self
			srr += float64(m) * self
			if gs != nil {
				s := float64(gws[g]) / float64(m*m)
				for j := 0; j < m; j++ {
					out, a := row(gs, j), acc[j*dim:(j+1)*dim]
					for i := range out {
						out[i] = T(s * a[i])
					}
				}
			}
			ms[g] = T((stt + srr - 2*str) / float64(m*m))
		}
	})
}

// diffSquares sets diff[i] = a[i]-b[i] for i in [lo, hi) (in float64) and returns the
// sum of their squares, in four interleaved partial sums.
func diffSquares[T kernels.Float](diff []float64, a, b []T, lo, hi int) float64 {
	var s0, s1, s2, s3 float64
	i := lo
	for ; i+4 <= hi; i += 4 {
		d, x, y := diff[i:i+4:i+4], a[i:i+4:i+4], b[i:i+4:i+4]
		v0, v1, v2, v3 := float64(x[0])-float64(y[0]), float64(x[1])-float64(y[1]), float64(x[2])-float64(y[2]), float64(x[3])-float64(y[3])
		d[0], d[1], d[2], d[3] = v0, v1, v2, v3
		s0 += v0 * v0
		s1 += v1 * v1
		s2 += v2 * v2
		s3 += v3 * v3
	}
	for ; i < hi; i++ {
		v := float64(a[i]) - float64(b[i])
		diff[i] = v
		s0 += v * v
	}
	return (s0 + s1) + (s2 + s3)
}

// addScaled sets acc[i] += c*x[i].
func addScaled(acc, x []float64, c float64) {
	x = x[:len(acc)]
	for i := range acc {
		acc[i] += c * x[i]
	}
}

// philox4x32 is Philox4x32-10 (Salmon et al., SC'11) on counter ctr with key.
func philox4x32(ctr [4]uint32, key [2]uint32) [4]uint32 {
	ks := philoxSchedule(key[0], key[1])
	c0, c1, c2, c3 := ks.block(ctr[0], ctr[1], ctr[2], ctr[3])
	return [4]uint32{c0, c1, c2, c3}
}

// philoxKeys is the key schedule of Philox4x32-10: the key of round r is (k0 + r w0,
// k1 + r w1), the Weyl sequence of the key, at [2r] and [2r+1].
type philoxKeys [20]uint32

func philoxSchedule(k0, k1 uint32) *philoxKeys {
	var ks philoxKeys
	for r := 0; r < 20; r += 2 {
		ks[r], ks[r+1] = k0, k1
		k0 += 0x9E3779B9
		k1 += 0xBB67AE85
	}
	return &ks
}

// block is Philox4x32-10 on the counter (c0, c1, c2, c3): unrolled and on scalars, which
// the compiler keeps in registers (arrays of more than one element stay in memory).
func (ks *philoxKeys) block(c0, c1, c2, c3 uint32) (uint32, uint32, uint32, uint32) {
	c0, c1, c2, c3 = philoxRound(c0, c1, c2, c3, ks[0], ks[1])
	c0, c1, c2, c3 = philoxRound(c0, c1, c2, c3, ks[2], ks[3])
	c0, c1, c2, c3 = philoxRound(c0, c1, c2, c3, ks[4], ks[5])
	c0, c1, c2, c3 = philoxRound(c0, c1, c2, c3, ks[6], ks[7])
	c0, c1, c2, c3 = philoxRound(c0, c1, c2, c3, ks[8], ks[9])
	c0, c1, c2, c3 = philoxRound(c0, c1, c2, c3, ks[10], ks[11])
	c0, c1, c2, c3 = philoxRound(c0, c1, c2, c3, ks[12], ks[13])
	c0, c1, c2, c3 = philoxRound(c0, c1, c2, c3, ks[14], ks[15])
	c0, c1, c2, c3 = philoxRound(c0, c1, c2, c3, ks[16], ks[17])
	return philoxRound(c0, c1, c2, c3, ks[18], ks[19])
}

func philoxRound(c0, c1, c2, c3, k0, k1 uint32) (uint32, uint32, uint32, uint32) {
	p0 := uint64(0xD2511F53) * uint64(c0)
	p1 := uint64(0xCD9E8D57) * uint64(c2)
	return uint32(p1>>32) ^ c1 ^ k0, uint32(p1), uint32(p0>>32) ^ c3 ^ k1, uint32(p0)
}

// Philox returns the four words of block number block of the stream with the given key:
// the 128-bit counter is (block low, block high, 0, 0). Exported so that other backends
// can test against it.
func Philox(key, block uint64) [4]uint32 {
	return philox4x32([4]uint32{uint32(block), uint32(block >> 32), 0, 0}, [2]uint32{uint32(key), uint32(key >> 32)})
}

// RandUniform fills dst with U[0,1) draws.
func (d *Device[T]) RandUniform(dst kernels.Buffer, key, counter uint64) {
	ds := d.s(dst)
	ks := philoxSchedule(uint32(key), uint32(key>>32))
	d.parallel((len(ds)+3)/4, 1024, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			blk := counter + uint64(b)
			w0, w1, w2, w3 := ks.block(uint32(blk), uint32(blk>>32), 0, 0)
			const s = 1.0 / 4294967296.0
			store4(ds, b, [4]T{T(float64(w0) * s), T(float64(w1) * s), T(float64(w2) * s), T(float64(w3) * s)})
		}
	})
}

// RandNormal fills dst with N(0, std^2) draws: words (u0,u1) and (u2,u3) of each block
// give two pairs by Box-Muller, z = sqrt(-2 ln u) cos(2 pi v), sqrt(-2 ln u) sin(2 pi v)
// with u = (w+1)/2^32 in (0,1] and v = w/2^32 (boxMuller), and z*std is rounded to T.
func (d *Device[T]) RandNormal(dst kernels.Buffer, key, counter uint64, std T) {
	ds := d.s(dst)
	ks := philoxSchedule(uint32(key), uint32(key>>32))
	sd := float64(std)
	d.parallel((len(ds)+3)/4, 1024, func(lo, hi int) {
		// The words of block b+1 are drawn before block b is transformed, so that the
		// integer work of the one overlaps the floating-point work of the other.
		blk := counter + uint64(lo)
		w0, w1, w2, w3 := ks.block(uint32(blk), uint32(blk>>32), 0, 0)
		for b := lo; b < hi; b++ {
			blk++
			n0, n1, n2, n3 := ks.block(uint32(blk), uint32(blk>>32), 0, 0)
			z0, z1, z2, z3 := boxMuller(w0, w1, w2, w3)
			store4(ds, b, [4]T{T(z0 * sd), T(z1 * sd), T(z2 * sd), T(z3 * sd)})
			w0, w1, w2, w3 = n0, n1, n2, n3
		}
	})
}

// store4 writes block b of a Philox op: z to ds[4b:4b+4], cut at the end of ds.
func store4[T kernels.Float](ds []T, b int, z [4]T) {
	if 4*b+4 <= len(ds) {
		*(*[4]T)(ds[4*b:]) = z
	} else {
		copy(ds[4*b:], z[:])
	}
}
