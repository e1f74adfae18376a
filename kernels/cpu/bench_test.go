package cpu

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/immkit/immkit/kernels"
)

// BenchmarkGemmShapes times the weight-gradient products of the demo's tiny model (MLP
// 64 -> 256 over 1056 tokens): dW = X^T dY in both orientations, and the forward product
// for scale, and the MLP products of the MNIST tiny DiT (batch 64 x 16 tokens), in float32
// on GOMAXPROCS workers. Peer: scripts/gemm-peer.py (numpy) on the same shapes.
func BenchmarkGemmShapes(b *testing.B) {
	for _, c := range []struct {
		m, n, k int
		ta, tb  bool
	}{
		{64, 256, 1056, true, false}, {256, 64, 1056, true, false}, {1056, 256, 64, false, false}, // the demo's MLP
		{1024, 256, 64, false, true}, {1024, 64, 256, false, true}, {256, 64, 1024, true, false}, // the MNIST tiny DiT's fc1, fc2, fc1 weight gradient
	} {
		d := New[float32](runtime.GOMAXPROCS(0))
		a, bb, cc := d.Alloc(c.m*c.k), d.Alloc(c.k*c.n), d.Alloc(c.m*c.n)
		d.RandNormal(a, 1, 0, 1)
		d.RandNormal(bb, 2, 0, 1)
		lda, ldb := c.k, c.n
		if c.ta {
			lda = c.m
		}
		if c.tb {
			ldb = c.k
		}
		b.Run(fmt.Sprintf("%dx%dx%d/ta=%v/tb=%v", c.m, c.n, c.k, c.ta, c.tb), func(b *testing.B) {
			for range b.N {
				d.Gemm(c.ta, c.tb, c.m, c.n, c.k, 1, a, lda, bb, ldb, 0, cc, c.n)
			}
			b.ReportMetric(float64(2*c.m*c.n*c.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkGemm races Device.Gemm (gonum, row-split over workers) against the naive
// triple loop on the shapes of the toy MLP (batch x width x width), in float32.
func BenchmarkGemm(b *testing.B) {
	for _, sh := range [][3]int{{512, 128, 128}, {1024, 256, 256}} {
		m, n, k := sh[0], sh[1], sh[2]
		d := New[float32](runtime.GOMAXPROCS(0))
		a, bb, c := d.Alloc(m*k), d.Alloc(k*n), d.Alloc(m*n)
		d.RandNormal(a, 1, 0, 1)
		d.RandNormal(bb, 2, 0, 1)
		flops := float64(2 * m * n * k)
		b.Run(fmt.Sprintf("device/%dx%dx%d", m, n, k), func(b *testing.B) {
			for range b.N {
				d.Gemm(false, true, m, n, k, 1, a, k, bb, k, 0, c, n)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("naive/%dx%dx%d", m, n, k), func(b *testing.B) {
			as, bs, cs := Data[float32](a), Data[float32](bb), Data[float32](c)
			for range b.N {
				for i := 0; i < m; i++ {
					for j := 0; j < n; j++ {
						var s float32
						for l := 0; l < k; l++ {
							s += as[i*k+l] * bs[j*k+l]
						}
						cs[i*n+j] = s
					}
				}
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkOptimizer times one optimiser step over the parameters of the toy MLP's
// mlp64 size (3.2 M, hidden 1024 x 4) in float32: AdamW then EMA (two passes) against the
// fused AdamWEMA (one pass).
func BenchmarkOptimizer(b *testing.B) {
	n := 3_200_000
	d := New[float32](runtime.GOMAXPROCS(0))
	p, g, m, v, avg := d.Alloc(n), d.Alloc(n), d.Alloc(n), d.Alloc(n), d.Alloc(n)
	d.RandNormal(p, 1, 0, 1)
	d.RandNormal(g, 2, 0, 1)
	d.Copy(avg, p)
	o := kernels.AdamW{LR: 1e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	b.Run("AdamW+EMA", func(b *testing.B) {
		b.SetBytes(int64(40 * n))
		for i := range b.N {
			d.AdamW(p, g, m, v, o, i+1, 1)
			d.EMA(avg, p, 0.999)
		}
	})
	b.Run("AdamWEMA", func(b *testing.B) {
		b.SetBytes(int64(32 * n))
		for i := range b.N {
			d.AdamWEMA(p, g, m, v, avg, o, i+1, 1, 0.999)
		}
	})
}

// BenchmarkSumRows is the column sums of a bias or position-embedding gradient: wide
// matrices of few rows (32 x 1600*64; the multimodal demo's per-token weight-gradient
// partials, 5 x 1600*64), a DiT-like bias gradient, and a tall one.
func BenchmarkSumRows(b *testing.B) {
	d := New[float32](runtime.GOMAXPROCS(0))
	for _, s := range []struct{ rows, cols int }{{32, 102400}, {5, 102400}, {1056, 256}, {70001, 33}} {
		x, dst := d.Alloc(s.rows*s.cols), d.Alloc(s.cols)
		d.RandNormal(x, 1, 0, 1)
		b.Run(fmt.Sprintf("%dx%d", s.rows, s.cols), func(b *testing.B) {
			b.SetBytes(int64(4 * s.rows * s.cols))
			for range b.N {
				d.SumRows(dst, x, s.rows, s.cols, 0)
			}
		})
	}
}

// BenchmarkGemmBatchedShapes times the per-sequence products of the multimodal demo
// (batch 32, 33 tokens of width 64, particles of 11264 values): a segment's input and
// output projections, whose weight every sequence shares (strideB 0), their weight
// gradient per sequence, and one head's attention scores (33 x 33 x 16), in float32 on
// GOMAXPROCS workers.
func BenchmarkGemmBatchedShapes(b *testing.B) {
	const batch, l, w, part = 32, 33, 64, 11264
	for _, c := range []struct {
		name                string
		m, n, k             int
		ta, tb              bool
		lda, sa, ldb, sb    int
		ldc, sc, lenA, lenB int
	}{
		{"segment-in", 5, w, 1600, false, true, 1600, part, 1600, 0, w, l * w, batch * part, w * 1600},
		{"segment-out", 5, 1600, w, false, true, w, l * w, w, 0, 1600, part, batch * l * w, 1600 * w},
		{"segment-dx", 5, w, 1600, false, false, 1600, part, w, 0, w, l * w, batch * part, 1600 * w},
		{"segment-dW", 1600, w, 5, true, false, 1600, part, w, l * w, w, 1600 * w, batch * part, batch * l * w},
		{"attention-scores", l, l, 16, false, true, 3 * w, l * 3 * w, 3 * w, l * 3 * w, l, 4 * l * l, batch * l * 3 * w, batch * l * 3 * w},
		{"attention-pv", l, 16, l, false, false, l, 4 * l * l, 3 * w, l * 3 * w, w, l * w, batch * 4 * l * l, batch * l * 3 * w},
	} {
		d := New[float32](runtime.GOMAXPROCS(0))
		a, bb := d.Alloc(c.lenA), d.Alloc(c.lenB)
		cc := d.Alloc(batch * c.sc)
		d.RandNormal(a, 1, 0, 1)
		d.RandNormal(bb, 2, 0, 1)
		b.Run(fmt.Sprintf("%s/%dx(%dx%dx%d)", c.name, batch, c.m, c.n, c.k), func(b *testing.B) {
			for range b.N {
				d.GemmBatched(c.ta, c.tb, c.m, c.n, c.k, 1, a, c.lda, c.sa, bb, c.ldb, c.sb, 0, cc, c.ldc, c.sc, batch)
			}
			b.ReportMetric(float64(2*batch*c.m*c.n*c.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkAttention times the demo's attention (batch 32, 33 tokens, 4 heads of 16) and
// its parts: the forward and backward ops, and the row softmax and its gradient over the
// 32*4*33 score rows, in float32 on GOMAXPROCS workers.
func BenchmarkAttention(b *testing.B) {
	const batch, l, heads, hd = 32, 33, 4, 16
	d := New[float32](runtime.GOMAXPROCS(0))
	D := heads * hd
	qkv, o, do, dqkv := d.Alloc(batch*l*3*D), d.Alloc(batch*l*D), d.Alloc(batch*l*D), d.Alloc(batch*l*3*D)
	ws := d.Alloc(d.AttentionWorkspace(batch, l, heads, hd))
	d.RandNormal(qkv, 1, 0, 1)
	d.RandNormal(do, 2, 0, 1)
	rows := batch * heads * l
	s, p, dp := d.Alloc(rows*l), d.Alloc(rows*l), d.Alloc(rows*l)
	d.RandNormal(s, 3, 0, 2)
	d.RandNormal(dp, 4, 0, 1)
	d.Softmax(p, s, rows, l)
	b.Run("forward", func(b *testing.B) {
		for range b.N {
			d.Attention(o, ws, qkv, batch, l, heads, hd)
		}
	})
	b.Run("backward", func(b *testing.B) {
		for range b.N {
			d.AttentionGrad(dqkv, do, o, ws, qkv, batch, l, heads, hd)
		}
	})
	b.Run("softmax", func(b *testing.B) {
		for range b.N {
			d.Softmax(p, s, rows, l)
		}
	})
	b.Run("softmax-grad", func(b *testing.B) {
		for range b.N {
			d.SoftmaxGrad(s, dp, p, rows, l, 0)
		}
	})
}

// BenchmarkLaplaceMMD times the demo's loss and gradient: 16 groups of 2 particles of
// 11264 values in three segments (image, audio, text), in float32 on GOMAXPROCS workers.
func BenchmarkLaplaceMMD(b *testing.B) {
	const groups, m, dim = 16, 2, 11264
	segs := []int{0, 3072, 11072, dim}
	d := New[float32](runtime.GOMAXPROCS(0))
	yt, yr, grad := d.Alloc(groups*m*dim), d.Alloc(groups*m*dim), d.Alloc(groups*m*dim)
	d.RandNormal(yt, 1, 0, 1)
	d.RandNormal(yr, 2, 0, 1)
	kw, gw, mmd := d.Alloc(groups), d.Alloc(groups), d.Alloc(groups)
	d.Fill(kw, 1)
	d.Fill(gw, 1)
	for range b.N {
		d.LaplaceMMD(mmd, grad, yt, yr, kw, gw, groups, m, dim, segs)
	}
}
