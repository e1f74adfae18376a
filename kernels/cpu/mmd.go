package cpu

import (
	"math"

	"github.com/immkit/immkit/kernels"
)

// LaplaceMMD computes the grouped Laplace-kernel MMD and its gradient with respect to yt;
// see kernels.Device. Distances and sums are accumulated in float64.
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
		acc := make([]float64, dim)
		nqs := make([]float64, len(segs))
		for g := lo; g < hi; g++ {
			w := float64(kws[g]) / float64(dim)
			base := g * m * dim
			row := func(s []T, j int) []T { return s[base+j*dim : base+j*dim+dim] }
			// kern returns k(a,b) = exp(-w sum_q ||a_q-b_q||) (a sum of at most 1e-8
			// counts as 1e-8), leaves a-b in diff and each segment's norm in nqs (0 for
			// a norm <= 1e-8), and returns whether the sum was clamped.
			kern := func(a, b []T) (float64, bool) {
				var n float64
				for q := 1; q < len(segs); q++ {
					lo, hi := segs[q-1], segs[q]
					var n2 float64
					for i := lo; i < hi; i++ {
						v := float64(a[i]) - float64(b[i])
						diff[i] = v
						n2 += v * v
					}
					nq := math.Sqrt(n2)
					if nq <= 1e-8 {
						nq = 0
					}
					nqs[q] = nq
					n += nq
				}
				if n <= 1e-8 {
					return math.Exp(-w * 1e-8), true
				}
				return math.Exp(-w * n), false
			}
			// add adds c times the unit vectors of k's last pair, segment by segment,
			// to acc: the gradient of k is -w k times them (a clamped segment or sum
			// adds zeros, which leave acc as it is, so it adds nothing).
			add := func(c float64) {
				for q := 1; q < len(segs); q++ {
					nq := nqs[q]
					if nq == 0 {
						continue
					}
					for i := segs[q-1]; i < segs[q]; i++ {
						acc[i] += c * (diff[i] / nq)
					}
				}
			}
			var stt, srr, str float64
			for j := 0; j < m; j++ {
				clear(acc)
				for l := 0; l < m; l++ {
					k, clamped := kern(row(ts, j), row(ts, l))
					stt += k
					if gs != nil && !clamped {
						add(2 * k * (-w))
					}
					k, clamped = kern(row(ts, j), row(rs, l))
					str += k
					if gs != nil && !clamped {
						add(-(2 * k * (-w)))
					}
					k, _ = kern(row(rs, j), row(rs, l))
					srr += k
				}
				if gs != nil {
					out := row(gs, j)
					s := float64(gws[g]) / float64(m*m)
					for i := range out {
						out[i] = T(s * acc[i])
					}
				}
			}
			ms[g] = T((stt + srr - 2*str) / float64(m*m))
		}
	})
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
