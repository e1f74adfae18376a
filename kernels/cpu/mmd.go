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
		for g := lo; g < hi; g++ {
			w := float64(kws[g]) / float64(dim)
			base := g * m * dim
			row := func(s []T, j int) []T { return s[base+j*dim : base+j*dim+dim] }
			// kern returns k(a,b) and leaves in diff, per segment, (a_q-b_q)/||a_q-b_q||
			// (zero for a segment of norm <= 1e-8, and everywhere when the sum is clamped).
			kern := func(a, b []T) float64 {
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
						clear(diff[lo:hi])
						continue
					}
					for i := lo; i < hi; i++ {
						diff[i] /= nq
					}
					n += nq
				}
				if n <= 1e-8 {
					clear(diff)
					return math.Exp(-w * 1e-8)
				}
				return math.Exp(-w * n)
			}
			var stt, srr, str float64
			for j := 0; j < m; j++ {
				clear(acc)
				for l := 0; l < m; l++ {
					k := kern(row(ts, j), row(ts, l))
					stt += k
					for i := range acc {
						acc[i] += 2 * k * (-w) * diff[i]
					}
					k = kern(row(ts, j), row(rs, l))
					str += k
					for i := range acc {
						acc[i] -= 2 * k * (-w) * diff[i]
					}
					srr += kern(row(rs, j), row(rs, l))
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
	const (
		m0 = 0xD2511F53
		m1 = 0xCD9E8D57
		w0 = 0x9E3779B9
		w1 = 0xBB67AE85
	)
	for r := 0; r < 10; r++ {
		p0 := uint64(m0) * uint64(ctr[0])
		p1 := uint64(m1) * uint64(ctr[2])
		ctr = [4]uint32{
			uint32(p1>>32) ^ ctr[1] ^ key[0], uint32(p1),
			uint32(p0>>32) ^ ctr[3] ^ key[1], uint32(p0),
		}
		key[0] += w0
		key[1] += w1
	}
	return ctr
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
	nb := (len(ds) + 3) / 4
	d.parallel(nb, 1024, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			w := Philox(key, counter+uint64(b))
			for q := 0; q < 4 && 4*b+q < len(ds); q++ {
				ds[4*b+q] = T(float64(w[q]) * (1.0 / 4294967296.0))
			}
		}
	})
}

// RandNormal fills dst with N(0, std^2) draws: words (u0,u1) and (u2,u3) of each block
// give two pairs by Box-Muller, z = sqrt(-2 ln u) cos(2 pi v), sqrt(-2 ln u) sin(2 pi v)
// with u = (w+1)/2^32 in (0,1] and v = w/2^32.
func (d *Device[T]) RandNormal(dst kernels.Buffer, key, counter uint64, std T) {
	ds := d.s(dst)
	nb := (len(ds) + 3) / 4
	d.parallel(nb, 1024, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			w := Philox(key, counter+uint64(b))
			var z [4]float64
			for p := 0; p < 2; p++ {
				u := (float64(w[2*p]) + 1) / 4294967296.0
				v := float64(w[2*p+1]) / 4294967296.0
				r := math.Sqrt(-2 * math.Log(u))
				z[2*p] = r * math.Cos(2*math.Pi*v)
				z[2*p+1] = r * math.Sin(2*math.Pi*v)
			}
			for q := 0; q < 4 && 4*b+q < len(ds); q++ {
				ds[4*b+q] = T(z[q] * float64(std))
			}
		}
	})
}
