// Package cpu is the reference implementation of kernels.Device: plain Go slices,
// goroutine-parallel over fixed chunks, matrix products through gonum's BLAS.
//
// Every op is the loop in its kernels.Device doc comment. Work is split into chunks that
// depend only on the shape (never on timing), and every output element is computed by
// one goroutine in a fixed order, so results are identical run to run for a given worker
// count; reductions (Sum, SumSquares, SumRows) use a fixed chunking that does not depend
// on the worker count either.
package cpu

import (
	"fmt"
	"math"
	"sync"

	"github.com/immkit/immkit/kernels"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Buf is the CPU buffer: Data[i] is element i.
type Buf[T kernels.Float] struct {
	Data []T
}

// Len is len(Data).
func (b *Buf[T]) Len() int { return len(b.Data) }

// Device runs ops on the CPU with a fixed number of worker goroutines.
type Device[T kernels.Float] struct {
	workers int
}

var _ kernels.Device[float32] = (*Device[float32])(nil)
var _ kernels.Device[float64] = (*Device[float64])(nil)

// New returns a CPU device using workers goroutines per op (at least 1).
func New[T kernels.Float](workers int) *Device[T] {
	if workers < 1 {
		workers = 1
	}
	return &Device[T]{workers: workers}
}

// Name returns "cpu".
func (d *Device[T]) Name() string { return "cpu" }

// Workers is the number of goroutines per op.
func (d *Device[T]) Workers() int { return d.workers }

// Data returns the slice behind a buffer of this device, for tests and host-side code
// that knows it runs on the CPU.
func Data[T kernels.Float](b kernels.Buffer) []T { return b.(*Buf[T]).Data }

func (d *Device[T]) s(b kernels.Buffer) []T {
	if b == nil {
		return nil
	}
	return b.(*Buf[T]).Data
}

// Alloc returns a zeroed buffer.
func (d *Device[T]) Alloc(n int) kernels.Buffer { return &Buf[T]{Data: make([]T, n)} }

// Slice returns a view sharing memory.
func (d *Device[T]) Slice(b kernels.Buffer, off, n int) kernels.Buffer {
	return &Buf[T]{Data: d.s(b)[off : off+n : off+n]}
}

// Write copies host data in.
func (d *Device[T]) Write(dst kernels.Buffer, src []T) { copy(d.s(dst)[:len(src)], src) }

// Read copies data out.
func (d *Device[T]) Read(dst []T, src kernels.Buffer) { copy(dst, d.s(src)[:len(dst)]) }

// Copy copies src to dst.
func (d *Device[T]) Copy(dst, src kernels.Buffer) {
	x, y := d.s(src), d.s(dst)
	if len(x) != len(y) {
		panic(fmt.Sprintf("cpu: Copy length %d to %d", len(x), len(y)))
	}
	copy(y, x)
}

// Fill sets every element.
func (d *Device[T]) Fill(dst kernels.Buffer, v T) {
	x := d.s(dst)
	for i := range x {
		x[i] = v
	}
}

// parallel runs f over [0,n) split into contiguous chunks of at least grain items.
func (d *Device[T]) parallel(n, grain int, f func(lo, hi int)) {
	if grain < 1 {
		grain = 1
	}
	chunks := min(d.workers, (n+grain-1)/grain)
	if chunks <= 1 {
		if n > 0 {
			f(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	size := (n + chunks - 1) / chunks
	for lo := 0; lo < n; lo += size {
		hi := min(lo+size, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(lo, hi)
		}()
	}
	wg.Wait()
}

const elemGrain = 16384

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// Gemm is the row-major product; see kernels.Device.
func (d *Device[T]) Gemm(transA, transB bool, m, n, k int, alpha T, a kernels.Buffer, lda int, b kernels.Buffer, ldb int, beta T, c kernels.Buffer, ldc int) {
	d.gemm(transA, transB, m, n, k, alpha, d.s(a), lda, d.s(b), ldb, beta, d.s(c), ldc)
}

func (d *Device[T]) gemm(transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			for j := range row {
				if beta == 0 {
					row[j] = 0
				} else {
					row[j] *= beta
				}
			}
		}
		return
	}
	if af, ok := any(a).([]float32); ok && packedGemm {
		sgemmPacked(transA, transB, m, n, k, float32(alpha), af, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc, d.workers, d.parallel)
		return
	}
	// gonum parallelises over 64x64 blocks of c; split tall-thin products by rows.
	grain := 64
	// A weight gradient A^T B with few rows, more columns and a long k (64 x 256 x 1056 in
	// the demo's MLP) runs 5x slower per flop in gonum than its transpose B^T A (256 x 64
	// x 1056, split by rows here): gonum adds a multiple of a row of B to every row of c
	// for each of the k rows, so c must stay in L1. Compute c^T = B^T A and transpose it
	// (BenchmarkGemmShapes).
	if transA && !transB && m < n && m <= 2*grain && n >= 2*grain && k >= 4*grain {
		tp := getScratch[T](n * m)
		defer putScratch(tp)
		d.gemm(true, false, n, m, k, 1, b, ldb, a, lda, 0, tp, m)
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			for j := range row {
				if beta == 0 {
					row[j] = alpha * tp[j*m+i]
				} else {
					row[j] = alpha*tp[j*m+i] + beta*row[j]
				}
			}
		}
		return
	}
	if n >= 256 || m < 2*grain {
		gemmBlas(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	d.parallel(m, grain, func(lo, hi int) {
		var as []T
		if transA {
			as = a[lo:]
		} else {
			as = a[lo*lda:]
		}
		gemmBlas(transA, transB, hi-lo, n, k, alpha, as, lda, b, ldb, beta, c[lo*ldc:], ldc)
	})
}

func gemmBlas[T kernels.Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	switch av := any(a).(type) {
	case []float32:
		gonum.Implementation{}.Sgemm(trans(transA), trans(transB), m, n, k, float32(alpha), av, lda,
			any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		gonum.Implementation{}.Dgemm(trans(transA), trans(transB), m, n, k, float64(alpha), av, lda,
			any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	default:
		panic("cpu: Gemm needs float32 or float64 elements")
	}
}

// GemmBatched runs batch independent products.
func (d *Device[T]) GemmBatched(transA, transB bool, m, n, k int, alpha T, a kernels.Buffer, lda, strideA int, b kernels.Buffer, ldb, strideB int, beta T, c kernels.Buffer, ldc, strideC int, batch int) {
	as, bs, cs := d.s(a), d.s(b), d.s(c)
	if af, ok := any(as).([]float32); ok && packedGemm && m > 0 && n > 0 && k > 0 && batch > 0 {
		sgemmBatched(transA, transB, m, n, k, float32(alpha), af, lda, strideA, any(bs).([]float32), ldb, strideB, float32(beta), any(cs).([]float32), ldc, strideC, batch, d.workers, d.parallel)
		return
	}
	one := New[T](1)
	d.parallel(batch, 1, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			one.gemm(transA, transB, m, n, k, alpha, as[p*strideA:], lda, bs[p*strideB:], ldb, beta, cs[p*strideC:], ldc)
		}
	})
}

// SumRowGroups sums each group of l rows, in row order in T: the sum a product with a
// row of ones computes (the GemmBatched that reduceTokens in imm/nn used before).
func (d *Device[T]) SumRowGroups(dst, x kernels.Buffer, groups, l, cols, ld int) {
	ds, xs := d.s(dst), d.s(x)
	d.parallel(groups, max(1, elemGrain/max(l*cols, 1)), func(lo, hi int) {
		for g := lo; g < hi; g++ {
			out := ds[g*ld : g*ld+cols]
			if l == 0 {
				clear(out)
				continue
			}
			copy(out, xs[g*l*cols:g*l*cols+cols])
			for i := 1; i < l; i++ {
				row := xs[(g*l+i)*cols : (g*l+i)*cols+cols]
				for j, v := range row {
					out[j] += v
				}
			}
		}
	})
}

// AddRowVector adds v to every row of x.
func (d *Device[T]) AddRowVector(x, v kernels.Buffer, rows, cols int) {
	xs, vs := d.s(x), d.s(v)[:cols]
	d.parallel(rows, max(1, elemGrain/max(cols, 1)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := xs[i*cols : i*cols+cols]
			for j, b := range vs {
				row[j] += b
			}
		}
	})
}

// sumRowsBlock is the most columns SumRows keeps sums of at once: 16 KiB of float64,
// in the L1 cache (a wide matrix of few rows, 5 x 102400, spent most of its time
// allocating and clearing 400 KB of sums per worker).
const sumRowsBlock = 2048

// SumRows reduces over rows, each column summed in row order.
func (d *Device[T]) SumRows(dst, x kernels.Buffer, rows, cols int, beta T) {
	ds, xs := d.s(dst)[:cols], d.s(x)
	d.parallel(cols, 16, func(lo, hi int) {
		// float64 sums: a float32 running sum over 70,000 rows is off by ~1e-5 relative.
		// The sums are padded by a cache line on each side: two workers' few sums of a
		// narrow matrix would otherwise share lines that both write for every row.
		buf := make([]float64, min(hi-lo, sumRowsBlock)+16)
		for b0 := lo; b0 < hi; b0 += sumRowsBlock {
			b1 := min(b0+sumRowsBlock, hi)
			acc := buf[8 : 8+b1-b0]
			clear(acc)
			for i := 0; i < rows; i++ {
				row := xs[i*cols+b0 : i*cols+b1]
				for j, v := range row {
					acc[j] += float64(v)
				}
			}
			out := ds[b0:b1]
			if beta == 0 {
				for j := range out {
					out[j] = T(acc[j])
				}
				continue
			}
			for j := range out {
				out[j] = beta*out[j] + T(acc[j])
			}
		}
	})
}

// RowComb sets dst = a[i]*x + b[i]*y row by row.
func (d *Device[T]) RowComb(dst, a, x, b, y kernels.Buffer, rows, cols int) {
	ds, as, xs, bs, ys := d.s(dst), d.s(a), d.s(x), d.s(b), d.s(y)
	d.parallel(rows, max(1, elemGrain/max(cols, 1)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ai := as[i]
			if ys == nil || bs == nil {
				for j := i * cols; j < i*cols+cols; j++ {
					ds[j] = ai * xs[j]
				}
				continue
			}
			bi := bs[i]
			for j := i * cols; j < i*cols+cols; j++ {
				ds[j] = ai*xs[j] + bi*ys[j]
			}
		}
	})
}

// Axpby sets y = alpha*x + beta*y.
func (d *Device[T]) Axpby(alpha T, x kernels.Buffer, beta T, y kernels.Buffer) {
	xs, ys := d.s(x), d.s(y)
	ys = ys[:len(xs)]
	d.parallel(len(xs), elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ys[i] = alpha*xs[i] + beta*ys[i]
		}
	})
}

// Mul sets dst = x*y + beta*dst.
func (d *Device[T]) Mul(dst, x, y kernels.Buffer, beta T) {
	ds, xs, ys := d.s(dst), d.s(x), d.s(y)
	d.parallel(len(ds), elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if beta == 0 {
				ds[i] = xs[i] * ys[i]
			} else {
				ds[i] = xs[i]*ys[i] + beta*ds[i]
			}
		}
	})
}

// Modulate sets dst = x*(1+scale) + shift.
func (d *Device[T]) Modulate(dst, x, shift, scale kernels.Buffer) {
	ds, xs, sh, sc := d.s(dst), d.s(x), d.s(shift), d.s(scale)
	d.parallel(len(ds), elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ds[i] = xs[i]*(1+sc[i]) + sh[i]
		}
	})
}

// MulRows sets dst[r*cols+j] = x[r*cols+j]*v[(r/l)*ld+j] + beta*dst[r*cols+j].
func (d *Device[T]) MulRows(dst, x, v kernels.Buffer, rows, l, cols, ld int, beta T) {
	d.mulRows(dst, dst, x, v, rows, l, cols, ld, beta)
}

// MulRowsAdd sets dst[r*cols+j] = x[r*cols+j]*v[(r/l)*ld+j] + base[r*cols+j].
func (d *Device[T]) MulRowsAdd(dst, base, x, v kernels.Buffer, rows, l, cols, ld int) {
	d.mulRows(dst, base, x, v, rows, l, cols, ld, 1)
}

// mulRows sets dst = x*v_seq + beta*base (base not read when beta is 0).
func (d *Device[T]) mulRows(dst, base, x, v kernels.Buffer, rows, l, cols, ld int, beta T) {
	ds, bs, xs, vs := d.s(dst), d.s(base), d.s(x), d.s(v)
	d.parallel(rows, max(1, elemGrain/max(cols, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			o, vr := r*cols, vs[(r/l)*ld:][:cols]
			dr, br, xr := ds[o:o+cols], bs[o:o+cols], xs[o:o+cols]
			if beta == 0 {
				for j, g := range vr {
					dr[j] = xr[j] * g
				}
			} else {
				for j, g := range vr {
					dr[j] = xr[j]*g + beta*br[j]
				}
			}
		}
	})
}

// ModulateRows sets dst[r*cols+j] = x[r*cols+j]*(1+scale[(r/l)*ld+j]) + shift[(r/l)*ld+j].
func (d *Device[T]) ModulateRows(dst, x, shift, scale kernels.Buffer, rows, l, cols, ld int) {
	ds, xs, sh, sc := d.s(dst), d.s(x), d.s(shift), d.s(scale)
	d.parallel(rows, max(1, elemGrain/max(cols, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			o, b := r*cols, (r/l)*ld
			dr, xr, shr, scr := ds[o:o+cols], xs[o:o+cols], sh[b:b+cols], sc[b:b+cols]
			for j := range dr {
				dr[j] = xr[j]*(1+scr[j]) + shr[j]
			}
		}
	})
}

const geluC = 0.7978845608028654 // sqrt(2/pi)

func act[T kernels.Float](a kernels.Act, x T) T {
	switch a {
	case kernels.SiLU:
		return x / (1 + T(math.Exp(-float64(x))))
	case kernels.GELUTanh:
		// 0.5 u (1 + tanh v) = u sigmoid(2v), v = c (u + 0.044715 u^3): the sigmoid form
		// has no cancellation in 1 + tanh v for negative u
		u := float64(x)
		return T(u / (1 + math.Exp(-2*geluC*(u+0.044715*u*u*u))))
	}
	return x
}

func actGrad[T kernels.Float](a kernels.Act, x T) T {
	switch a {
	case kernels.SiLU:
		s := 1 / (1 + math.Exp(-float64(x)))
		return T(s * (1 + float64(x)*(1-s)))
	case kernels.GELUTanh:
		// with s = sigmoid(2v): 0.5 (1 + tanh v) = s and 0.5 (1 - tanh^2 v) = 2 s (1 - s)
		u := float64(x)
		s := 1 / (1 + math.Exp(-2*geluC*(u+0.044715*u*u*u)))
		return T(s + 2*u*s*(1-s)*geluC*(1+3*0.044715*u*u))
	}
	return 1
}

// Activate sets y = act(x).
func (d *Device[T]) Activate(a kernels.Act, y, x kernels.Buffer) {
	ys, xs := d.s(y), d.s(x)
	if y32, ok := any(ys).([]float32); ok {
		x32 := any(xs).([]float32)
		d.parallel(len(x32), elemGrain/4, func(lo, hi int) { act32(a, y32[lo:hi], x32[lo:hi]) })
		return
	}
	d.parallel(len(xs), elemGrain/4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ys[i] = act(a, xs[i])
		}
	})
}

// GemmBiasAct runs kernels.GemmBiasActOps: the product, then the bias and the activation.
func (d *Device[T]) GemmBiasAct(transA, transB bool, m, n, k int, a kernels.Buffer, lda int, b kernels.Buffer, ldb int, bias kernels.Buffer, act kernels.Act, c, pre kernels.Buffer) {
	kernels.GemmBiasActOps[T](d, transA, transB, m, n, k, a, lda, b, ldb, bias, act, c, pre)
}

// GemmActGrad runs kernels.GemmActGradOps: the product, then the activation's gradient.
func (d *Device[T]) GemmActGrad(transA, transB bool, m, n, k int, a kernels.Buffer, lda int, b kernels.Buffer, ldb int, act kernels.Act, pre, c kernels.Buffer) {
	kernels.GemmActGradOps[T](d, transA, transB, m, n, k, a, lda, b, ldb, act, pre, c)
}

// Attention runs kernels.AttentionOps.
func (d *Device[T]) Attention(o, ws, qkv kernels.Buffer, batch, l, heads, hd int) {
	kernels.AttentionOps[T](d, o, ws, qkv, batch, l, heads, hd)
}

// AttentionGrad runs kernels.AttentionGradOps.
func (d *Device[T]) AttentionGrad(dqkv, do, o, ws, qkv kernels.Buffer, batch, l, heads, hd int) {
	kernels.AttentionGradOps[T](d, dqkv, do, ws, qkv, batch, l, heads, hd)
}

// AttentionWorkspace is kernels.AttentionOpsWorkspace.
func (d *Device[T]) AttentionWorkspace(batch, l, heads, hd int) int {
	return kernels.AttentionOpsWorkspace(batch, l, heads)
}

// ActivateGrad sets dx = beta*dx + dy*act'(x).
func (d *Device[T]) ActivateGrad(a kernels.Act, dx, dy, x kernels.Buffer, beta T) {
	dxs, dys, xs := d.s(dx), d.s(dy), d.s(x)
	if dx32, ok := any(dxs).([]float32); ok {
		dy32, x32, b32 := any(dys).([]float32), any(xs).([]float32), any(beta).(float32)
		d.parallel(len(x32), elemGrain/4, func(lo, hi int) { actGrad32(a, dx32[lo:hi], dy32[lo:hi], x32[lo:hi], b32) })
		return
	}
	d.parallel(len(xs), elemGrain/4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g := dys[i] * actGrad(a, xs[i])
			if beta == 0 {
				dxs[i] = g
			} else {
				dxs[i] = beta*dxs[i] + g
			}
		}
	})
}

// LayerNorm normalises rows, saving mean and rstd.
func (d *Device[T]) LayerNorm(y, mean, rstd, x kernels.Buffer, rows, cols int, eps T) {
	ys, ms, rs, xs := d.s(y), d.s(mean), d.s(rstd), d.s(x)
	d.parallel(rows, max(1, elemGrain/max(cols, 1)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := xs[i*cols : i*cols+cols]
			mu, r := rowStats(row, eps)
			ms[i], rs[i] = T(mu), T(r)
			out := ys[i*cols : i*cols+cols]
			for j, v := range row {
				out[j] = T((float64(v) - mu) * r)
			}
		}
	})
}

// rowStats returns a row's mean and 1/sqrt(variance + eps), summed in float64.
func rowStats[T kernels.Float](row []T, eps T) (mu, rstd float64) {
	for _, v := range row {
		mu += float64(v)
	}
	mu /= float64(len(row))
	var va float64
	for _, v := range row {
		dv := float64(v) - mu
		va += dv * dv
	}
	return mu, 1 / math.Sqrt(va/float64(len(row))+float64(eps))
}

// LayerNormGrad back-propagates through LayerNorm.
func (d *Device[T]) LayerNormGrad(dx, dy, x, mean, rstd kernels.Buffer, rows, cols int, beta T) {
	dxs, dys, xs, ms, rs := d.s(dx), d.s(dy), d.s(x), d.s(mean), d.s(rstd)
	d.parallel(rows, max(1, elemGrain/max(cols, 1)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			mu, r := float64(ms[i]), float64(rs[i])
			xr, gr := xs[i*cols:i*cols+cols], dys[i*cols:i*cols+cols]
			var mg, mgy float64
			for j := range xr {
				yh := (float64(xr[j]) - mu) * r
				mg += float64(gr[j])
				mgy += float64(gr[j]) * yh
			}
			mg /= float64(cols)
			mgy /= float64(cols)
			out := dxs[i*cols : i*cols+cols]
			for j := range xr {
				yh := (float64(xr[j]) - mu) * r
				g := T(r * (float64(gr[j]) - mg - yh*mgy))
				if beta == 0 {
					out[j] = g
				} else {
					out[j] = beta*out[j] + g
				}
			}
		}
	})
}

// AdaLayerNorm is LayerNorm and ModulateRows in one pass over each row, with the same
// arithmetic as the two ops.
func (d *Device[T]) AdaLayerNorm(y, mean, rstd, x, shift, scale kernels.Buffer, rows, l, cols, ld int, eps T) {
	ys, ms, rs, xs, sh, sc := d.s(y), d.s(mean), d.s(rstd), d.s(x), d.s(shift), d.s(scale)
	d.parallel(rows, max(1, elemGrain/max(cols, 1)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := xs[i*cols : i*cols+cols]
			mu, r := rowStats(row, eps)
			ms[i], rs[i] = T(mu), T(r)
			b := (i / l) * ld
			out, shr, scr := ys[i*cols:i*cols+cols], sh[b:b+cols], sc[b:b+cols]
			for j, v := range row {
				n := T((float64(v) - mu) * r)
				out[j] = n*(1+scr[j]) + shr[j]
			}
		}
	})
}

// AdaLayerNormGrad back-propagates through AdaLayerNorm in one pass over each row.
func (d *Device[T]) AdaLayerNormGrad(dx, dscale, dy, x, mean, rstd, scale kernels.Buffer, rows, l, cols, ld int, eps T) {
	dxs, dss, dys, xs, ms, rs, sc := d.s(dx), d.s(dscale), d.s(dy), d.s(x), d.s(mean), d.s(rstd), d.s(scale)
	d.parallel(rows, max(1, elemGrain/max(cols, 1)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			mu, r := float64(ms[i]), float64(rs[i])
			b := (i / l) * ld
			xr, gr, scr := xs[i*cols:i*cols+cols], dys[i*cols:i*cols+cols], sc[b:b+cols]
			var mg, mgy float64
			for j := range xr {
				yh := (float64(xr[j]) - mu) * r
				g := float64(gr[j] + gr[j]*scr[j])
				mg += g
				mgy += g * yh
			}
			mg /= float64(cols)
			mgy /= float64(cols)
			out, ds := dxs[i*cols:i*cols+cols], dss[i*cols:i*cols+cols]
			for j := range xr {
				yh := (float64(xr[j]) - mu) * r
				g := float64(gr[j] + gr[j]*scr[j])
				out[j] = T(r * (g - mg - yh*mgy))
				ds[j] = T(float64(gr[j]) * yh)
			}
		}
	})
}

// Softmax applies a row-wise softmax.
func (d *Device[T]) Softmax(y, x kernels.Buffer, rows, cols int) {
	ys, xs := d.s(y), d.s(x)
	if y32, ok := any(ys).([]float32); ok {
		x32 := any(xs).([]float32)
		d.parallel(rows, max(1, elemGrain/max(cols, 1)), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				softmaxRow32(y32[i*cols:i*cols+cols], x32[i*cols:i*cols+cols])
			}
		})
		return
	}
	d.parallel(rows, max(1, elemGrain/max(cols, 1)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row, out := xs[i*cols:i*cols+cols], ys[i*cols:i*cols+cols]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, float64(v))
			}
			var sum float64
			for j, v := range row {
				e := math.Exp(float64(v) - mx)
				out[j] = T(e)
				sum += e
			}
			for j := range out {
				out[j] = T(float64(out[j]) / sum)
			}
		}
	})
}

// SoftmaxGrad back-propagates through Softmax given its output y.
func (d *Device[T]) SoftmaxGrad(dx, dy, y kernels.Buffer, rows, cols int, beta T) {
	dxs, dys, ys := d.s(dx), d.s(dy), d.s(y)
	d.parallel(rows, max(1, elemGrain/max(cols, 1)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			g, yr, out := dys[i*cols:i*cols+cols], ys[i*cols:i*cols+cols], dxs[i*cols:i*cols+cols]
			var dot float64
			for j := range g {
				dot += float64(g[j]) * float64(yr[j])
			}
			for j := range g {
				v := T(float64(yr[j]) * (float64(g[j]) - dot))
				if beta == 0 {
					out[j] = v
				} else {
					out[j] = beta*out[j] + v
				}
			}
		}
	})
}

// Embed gathers table rows.
func (d *Device[T]) Embed(dst, table kernels.Buffer, ids []int32, dim int) {
	ds, ts := d.s(dst), d.s(table)
	for i, id := range ids {
		copy(ds[i*dim:i*dim+dim], ts[int(id)*dim:int(id)*dim+dim])
	}
}

// EmbedGrad scatters gradients back into the table.
func (d *Device[T]) EmbedGrad(dtable, dy kernels.Buffer, ids []int32, dim int) {
	ds, gs := d.s(dtable), d.s(dy)
	for i, id := range ids {
		row := ds[int(id)*dim : int(id)*dim+dim]
		for j, v := range gs[i*dim : i*dim+dim] {
			row[j] += v
		}
	}
}

// TimeEmbed writes sinusoidal features.
func (d *Device[T]) TimeEmbed(dst, t kernels.Buffer, rows, dim int) {
	ds, ts := d.s(dst), d.s(t)
	half := dim / 2
	for i := 0; i < rows; i++ {
		for k := 0; k < half; k++ {
			f := math.Exp(-math.Log(10000) * float64(k) / float64(half))
			a := float64(ts[i]) * f
			ds[i*dim+k] = T(math.Cos(a))
			ds[i*dim+half+k] = T(math.Sin(a))
		}
	}
}

const reduceChunk = 4096

func (d *Device[T]) reduce(x []T, f func(v float64) float64) float64 {
	n := (len(x) + reduceChunk - 1) / reduceChunk
	part := make([]float64, n)
	d.parallel(n, 4, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			var s float64
			for _, v := range x[c*reduceChunk : min(len(x), (c+1)*reduceChunk)] {
				s += f(float64(v))
			}
			part[c] = s
		}
	})
	var s float64
	for _, v := range part {
		s += v
	}
	return s
}

// Sum returns the sum of x.
func (d *Device[T]) Sum(x kernels.Buffer) float64 {
	return d.reduce(d.s(x), func(v float64) float64 { return v })
}

// SumSquares returns the sum of squares of x.
func (d *Device[T]) SumSquares(x kernels.Buffer) float64 {
	return d.reduce(d.s(x), func(v float64) float64 { return v * v })
}

// AdamW updates p in place.
func (d *Device[T]) AdamW(p, g, m, v kernels.Buffer, o kernels.AdamW, step int, gscale T) {
	d.adamW(p, g, m, v, nil, o, step, gscale, 0)
}

// AdamWEMA is AdamW and EMA in one pass.
func (d *Device[T]) AdamWEMA(p, g, m, v, avg kernels.Buffer, o kernels.AdamW, step int, gscale, decay T) {
	d.adamW(p, g, m, v, avg, o, step, gscale, decay)
}

// adamW is AdamW, then with avg not nil the EMA of the updated weights (in T, as EMA).
func (d *Device[T]) adamW(p, g, m, v, avg kernels.Buffer, o kernels.AdamW, step int, gscale, decay T) {
	ps, gs, ms, vs := d.s(p), d.s(g), d.s(m), d.s(v)
	var as []T
	if avg != nil {
		as = d.s(avg)
	}
	b1, b2 := o.Beta1, o.Beta2
	c1 := 1 - math.Pow(b1, float64(step))
	c2 := 1 - math.Pow(b2, float64(step))
	d.parallel(len(ps), elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			gi := float64(gs[i]) * float64(gscale)
			mi := b1*float64(ms[i]) + (1-b1)*gi
			vi := b2*float64(vs[i]) + (1-b2)*gi*gi
			ms[i], vs[i] = T(mi), T(vi)
			pi := float64(ps[i])
			ps[i] = T(pi - o.LR*(mi/c1/(math.Sqrt(vi/c2)+o.Eps)+o.WeightDecay*pi))
			if as != nil {
				as[i] = decay*as[i] + (1-decay)*ps[i]
			}
		}
	})
}

// EMA blends p into avg.
func (d *Device[T]) EMA(avg, p kernels.Buffer, decay T) {
	as, ps := d.s(avg), d.s(p)
	d.parallel(len(as), elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			as[i] = decay*as[i] + (1-decay)*ps[i]
		}
	})
}

// scratch32 and scratch64 hold the transposed products of gemm between calls, so the
// weight-gradient route allocates nothing in a steady-state training step.
var scratch32, scratch64 sync.Pool

// scratchPool is the pool of slices of T (a *[]T of another type from it is dropped).
func scratchPool[T kernels.Float]() *sync.Pool {
	if _, ok := any(T(0)).(float32); ok {
		return &scratch32
	}
	return &scratch64
}

// getScratch returns a slice of n elements (contents undefined).
func getScratch[T kernels.Float](n int) []T {
	if v, ok := scratchPool[T]().Get().(*[]T); ok && cap(*v) >= n {
		return (*v)[:n]
	}
	return make([]T, n)
}

// putScratch hands s back for a later getScratch.
func putScratch[T kernels.Float](s []T) { scratchPool[T]().Put(&s) }
