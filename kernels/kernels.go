// Package kernels is the compute abstraction of immkit: a Device owns buffers of
// floating-point numbers and runs the ops the trainer needs on them (matrix products,
// elementwise maps, activations, layer norm, softmax, embedding look-ups, reductions,
// AdamW, the grouped Laplace-MMD loss with its gradient, and a Philox random number
// generator).
//
// Callers hold Buffer handles, never the memory behind them, so the same model code runs
// on the pure-Go reference in kernels/cpu and on an accelerator backend. The element type
// is a type parameter: float32 for training, float64 for the finite-difference gradient
// checks of the layers and of the loss (kernels/cpu implements both).
//
// Every tensor is a dense row-major array in a Buffer: a matrix of rows x cols has element
// (i, j) at index i*ld + j with a leading dimension ld >= cols (ld = cols unless stated).
// Ops never allocate their outputs; out-of-range shapes are programming errors and panic.
package kernels

import (
	"fmt"
	"math"
)

// Float is the element type a Device computes in.
type Float interface{ ~float32 | ~float64 }

// Buffer is a handle to n elements of device memory, owned by the Device that made it.
type Buffer interface {
	// Len is the number of elements.
	Len() int
}

// Act names an elementwise activation.
type Act int

// Activations. Their reference definitions are in the documentation of Device.Activate.
const (
	Identity Act = iota
	SiLU         // x * sigmoid(x)
	GELUTanh     // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
)

// String returns the name of the activation.
func (a Act) String() string {
	switch a {
	case Identity:
		return "identity"
	case SiLU:
		return "silu"
	case GELUTanh:
		return "gelu-tanh"
	}
	return "unknown"
}

// Memory allocates, views, and moves buffers between host and device.
type Memory[T Float] interface {
	// Alloc returns a zeroed buffer of n elements.
	Alloc(n int) Buffer
	// Slice returns a view of b[off : off+n] that shares b's memory.
	Slice(b Buffer, off, n int) Buffer
	// Write copies src to dst[0:len(src)].
	Write(dst Buffer, src []T)
	// Read copies src[0:len(dst)] to dst.
	Read(dst []T, src Buffer)
	// Copy copies src to dst; both have the same length.
	Copy(dst, src Buffer)
	// Fill sets every element of dst to v.
	Fill(dst Buffer, v T)
}

// Device is the set of ops a backend implements. The doc comment of each op is its
// reference loop; kernels/cpu runs exactly that loop.
type Device[T Float] interface {
	Memory[T]
	// Name identifies the backend, e.g. "cpu".
	Name() string

	// Gemm computes the row-major matrix product
	//   for i < m, j < n: c[i*ldc+j] = alpha * sum_l A(i,l) B(l,j) + beta * c[i*ldc+j]
	// with A(i,l) = a[i*lda+l] (or a[l*lda+i] if transA) and B(l,j) = b[l*ldb+j]
	// (or b[j*ldb+l] if transB). When beta == 0, c is not read.
	Gemm(transA, transB bool, m, n, k int, alpha T, a Buffer, lda int, b Buffer, ldb int, beta T, c Buffer, ldc int)
	// GemmBatched runs Gemm for p < batch on a[p*strideA:], b[p*strideB:], c[p*strideC:].
	GemmBatched(transA, transB bool, m, n, k int, alpha T, a Buffer, lda, strideA int, b Buffer, ldb, strideB int, beta T, c Buffer, ldc, strideC int, batch int)

	// AddRowVector adds v to every row: x[i*cols+j] += v[j].
	AddRowVector(x, v Buffer, rows, cols int)
	// SumRows reduces over rows: dst[j] = beta*dst[j] + sum_i x[i*cols+j]. x may be
	// rounded storage (OperandRounder.RoundsOutputs).
	SumRows(dst, x Buffer, rows, cols int, beta T)
	// SumRowGroups sums each group of l consecutive rows, the gradient of a per-sequence
	// vector applied to each of its rows (MulRows, ModulateRows): for g < groups, j < cols,
	//   dst[g*ld+j] = sum_{i<l} x[(g*l+i)*cols+j]   (in increasing i)
	SumRowGroups(dst, x Buffer, groups, l, cols, ld int)
	// RowComb combines two matrices with per-row coefficients:
	//   dst[i*cols+j] = a[i]*x[i*cols+j] + b[i]*y[i*cols+j]
	// y and b may be nil (the second term is then 0). dst may alias x or y.
	RowComb(dst, a, x, b, y Buffer, rows, cols int)
	// Axpby sets y[i] = alpha*x[i] + beta*y[i].
	Axpby(alpha T, x Buffer, beta T, y Buffer)
	// Mul sets dst[i] = x[i]*y[i] + beta*dst[i] (dst is not read when beta == 0).
	Mul(dst, x, y Buffer, beta T)
	// Modulate applies an adaLN modulation: dst[i] = x[i]*(1+scale[i]) + shift[i].
	Modulate(dst, x, shift, scale Buffer)
	// MulRows multiplies each row by its sequence's vector: for r < rows (a multiple of
	// l, the rows per sequence) and j < cols,
	//   dst[r*cols+j] = x[r*cols+j]*v[(r/l)*ld+j] + beta*dst[r*cols+j]
	// (dst is not read when beta == 0). v is typically a column block of a [rows/l, ld]
	// matrix, so a per-sequence gate needs no broadcast copy. With beta 0, dst may be
	// rounded storage (OperandRounder.RoundsOutputs).
	MulRows(dst, x, v Buffer, rows, l, cols, ld int, beta T)
	// MulRowsAdd is MulRows added to another matrix: a residual branch through its gate,
	//   dst[r*cols+j] = x[r*cols+j]*v[(r/l)*ld+j] + base[r*cols+j]
	// dst may alias base.
	MulRowsAdd(dst, base, x, v Buffer, rows, l, cols, ld int)
	// ModulateRows is Modulate with per-sequence shift and scale (as in MulRows):
	//   dst[r*cols+j] = x[r*cols+j]*(1+scale[(r/l)*ld+j]) + shift[(r/l)*ld+j]
	ModulateRows(dst, x, shift, scale Buffer, rows, l, cols, ld int)

	// Activate sets y[i] = act(x[i]) for act in {Identity, SiLU, GELUTanh}.
	Activate(act Act, y, x Buffer)
	// ActivateGrad sets dx[i] = beta*dx[i] + dy[i] * act'(x[i]).
	ActivateGrad(act Act, dx, dy, x Buffer, beta T)
	// GemmBiasAct is the forward product of a dense layer with its epilogue: with
	//   z[i,j] = sum_l A(i,l) B(l,j) + bias[j]   (A and B as in Gemm; a nil bias adds 0)
	// it sets c[i*n+j] = act(z[i,j]) and, when pre is not nil, pre[i*n+j] = z[i,j] (c
	// and pre are dense m x n and distinct). A backend may fuse the bias and the
	// activation into the product (cuBLASLt epilogues on CUDA); GemmBiasActOps is the
	// same result from the other ops. c and pre may be rounded storage
	// (OperandRounder.RoundsOutputs).
	GemmBiasAct(transA, transB bool, m, n, k int, a Buffer, lda int, b Buffer, ldb int, bias Buffer, act Act, c, pre Buffer)
	// GemmActGrad is the backward product through an activation:
	//   c[i*n+j] = (sum_l A(i,l) B(l,j)) * act'(pre[i*n+j])
	// with pre the pre-activation that GemmBiasAct saved (c and pre dense m x n and
	// distinct). GemmActGradOps is the same result from the other ops. pre and c may
	// be rounded storage, both or neither (OperandRounder.RoundsOutputs).
	GemmActGrad(transA, transB bool, m, n, k int, a Buffer, lda int, b Buffer, ldb int, act Act, pre, c Buffer)
	// Attention is multi-head scaled dot-product self-attention over batch sequences of l
	// tokens. qkv [batch*l, 3D] (D = heads*hd) holds, for token t (row b*l+t) and head h,
	// q at columns h*hd, k at D+h*hd and v at 2D+h*hd; o [batch*l, D] gets head h at
	// columns h*hd:
	//   P_bh = softmax_rows(Q_bh K_bh^T / sqrt(hd)), O_bh = P_bh V_bh
	// ws (AttentionWorkspace elements) keeps what AttentionGrad needs.
	Attention(o, ws, qkv Buffer, batch, l, heads, hd int)
	// On a backend that rounds product operands and outputs (OperandRounder.RoundsOutputs)
	// qkv, o, do and dqkv may be rounded storage.
	// AttentionGrad sets dqkv [batch*l, 3D] (overwritten) to the gradient of Attention
	// with respect to qkv for the output gradient do, given the o, ws and qkv of that call.
	AttentionGrad(dqkv, do, o, ws, qkv Buffer, batch, l, heads, hd int)
	// AttentionWorkspace is the length of Attention's ws for these sizes.
	AttentionWorkspace(batch, l, heads, hd int) int

	// LayerNorm normalises each row of x (rows x cols) without an affine transform:
	//   mean[i] = sum_j x[i,j]/cols, rstd[i] = 1/sqrt(sum_j (x[i,j]-mean[i])^2/cols + eps)
	//   y[i,j] = (x[i,j]-mean[i]) * rstd[i]
	// mean and rstd (length rows) are saved for LayerNormGrad.
	LayerNorm(y, mean, rstd, x Buffer, rows, cols int, eps T)
	// LayerNormGrad sets dx = beta*dx + the gradient of LayerNorm given dy:
	//   yhat = (x-mean)*rstd; dx[i,j] += rstd[i] * (dy[i,j] - mean_j(dy[i,:]) - yhat[i,j]*mean_j(dy[i,:]*yhat[i,:]))
	LayerNormGrad(dx, dy, x, mean, rstd Buffer, rows, cols int, beta T)

	// AdaLayerNorm is LayerNorm followed by ModulateRows in one pass: with mean, rstd and
	// yhat[r,j] = (x[r,j]-mean[r])*rstd[r] as in LayerNorm (mean and rstd saved),
	//   y[r*cols+j] = yhat[r,j]*(1+scale[(r/l)*ld+j]) + shift[(r/l)*ld+j]
	// On a backend that rounds product operands (OperandRounder), y may be rounded
	// storage: it then holds those values rounded.
	AdaLayerNorm(y, mean, rstd, x, shift, scale Buffer, rows, l, cols, ld int, eps T)
	// AdaLayerNormGrad back-propagates through AdaLayerNorm given its output gradient dy:
	// with g[r,j] = dy[r,j]*(1+scale[(r/l)*ld+j]) and yhat from x, mean and rstd,
	//   dx[r,j] = rstd[r]*(g[r,j] - mean_j(g[r,:]) - yhat[r,j]*mean_j(g[r,:]*yhat[r,:]))
	//   dscale[r*cols+j] = dy[r,j]*yhat[r,j]   (per row: the caller sums a sequence's rows)
	// (the shift's gradient is dy itself). dx and dscale are overwritten. eps is the
	// forward call's, for a backend that recomputes the normalisation.
	AdaLayerNormGrad(dx, dscale, dy, x, mean, rstd, scale Buffer, rows, l, cols, ld int, eps T)
	// Softmax sets each row of y to softmax of the row of x: y[i,j] = exp(x[i,j]-max_j x[i,:]) / sum.
	Softmax(y, x Buffer, rows, cols int)
	// SoftmaxGrad sets dx[i,j] = beta*dx[i,j] + y[i,j]*(dy[i,j] - sum_l dy[i,l]*y[i,l]).
	SoftmaxGrad(dx, dy, y Buffer, rows, cols int, beta T)

	// Embed gathers rows of a table (n x dim): dst[i*dim+j] = table[ids[i]*dim+j].
	Embed(dst, table Buffer, ids []int32, dim int)
	// EmbedGrad scatters back: dtable[ids[i]*dim+j] += dy[i*dim+j], in increasing i.
	EmbedGrad(dtable, dy Buffer, ids []int32, dim int)
	// TimeEmbed writes sinusoidal features of per-row scalars (dim even, half = dim/2):
	//   f_k = exp(-ln(10000) k/half), dst[i*dim+k] = cos(t[i] f_k), dst[i*dim+half+k] = sin(t[i] f_k)
	TimeEmbed(dst, t Buffer, rows, dim int)

	// Sum returns sum_i x[i], accumulated in float64.
	Sum(x Buffer) float64
	// SumSquares returns sum_i x[i]^2, accumulated in float64.
	SumSquares(x Buffer) float64

	// AdamW updates p in place with gradient g*gscale and moments m, v at step (1-based):
	//   g' = g[i]*gscale; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2
	//   p -= lr * (m/(1-b1^step) / (sqrt(v/(1-b2^step)) + eps) + wd*p)
	AdamW(p, g, m, v Buffer, o AdamW, step int, gscale T)
	// EMA sets avg[i] = decay*avg[i] + (1-decay)*p[i].
	EMA(avg, p Buffer, decay T)
	// AdamWEMA is AdamW followed by EMA(avg, p, decay) on the updated p, in one pass over
	// the parameters: the same values as the two calls.
	AdamWEMA(p, g, m, v, avg Buffer, o AdamW, step int, gscale, decay T)

	// LaplaceMMD is the grouped Laplace-kernel MMD of DESIGN.md section 5. yt and yr hold
	// groups*m particles of dim d (row g*m+j is particle j of group g). With
	//   k_g(a,b) = exp(-kw[g] * max(||a-b||_2, 1e-8) / d)
	//   mmd[g] = 1/m^2 sum_{j,l} k_g(yt_j,yt_l) + k_g(yr_j,yr_l) - 2 k_g(yt_j,yr_l)
	// it writes mmd[g] (length groups) and, when grad is not nil,
	//   grad[g*m+j, :] = gw[g] * d mmd[g] / d yt_j
	// (yr is a constant: the stop-gradient target branch).
	//
	// segs, when not nil, splits each particle into segments [segs[q], segs[q+1]) with
	// segs[0] = 0 < segs[1] < ... < segs[len-1] = d (at most MaxSegments of them), and the
	// distance becomes the sum of the segments' norms: the product of one Laplace kernel
	// per segment,
	//   k_g(a,b) = exp(-kw[g] * max(sum_q ||a_q-b_q||_2, 1e-8) / d),
	// whose gradient gives every segment its own unit vector (a segment whose norm is at
	// most 1e-8 adds 0 to the sum and to the gradient). nil is one segment.
	LaplaceMMD(mmd, grad, yt, yr, kw, gw Buffer, groups, m, d int, segs []int)

	// RandNormal fills dst with independent N(0, std^2) draws from Philox4x32-10 with the
	// given key: element i comes from the counter block (counter + i/4), Box-Muller on
	// its four 32-bit words, so the stream does not depend on the worker count.
	RandNormal(dst Buffer, key, counter uint64, std T)
	// RandUniform fills dst with U[0,1) draws from the same Philox stream (word i%4 of
	// block counter + i/4, scaled by 2^-32).
	RandUniform(dst Buffer, key, counter uint64)
}

// OperandRounder is implemented by a backend whose matrix products round their operands
// to a narrower type first (bf16 on CUDA with Options.BF16), which costs one pass over
// each operand per product. A layer that uses one operand in several products (a dense
// layer's input and weight in its forward and backward products, its output gradient in
// two backward products) rounds it once and passes the rounded copy to Gemm, GemmBiasAct
// or GemmActGrad in place of the original, as a dense matrix (leading dimension = its
// stored columns): the products are the same, the passes fewer, and the copy kept for the
// backward pass takes half the memory of the float32 original. A rounded copy is an
// operand of those three ops only, Slice makes views of it, AdaLayerNorm can write its
// output into one (normalised rows that only a product reads need no float32 copy),
// GemmBiasAct, GemmActGrad and Attention can too (RoundsOutputs), and SumRows reads one;
// no other op takes it.
type OperandRounder interface {
	// RoundsOperands reports whether the products round their operands; when it is
	// false the other methods must not be called.
	RoundsOperands() bool
	// RoundsOutputs reports whether GemmBiasAct may write its output c and
	// pre-activation pre into rounded storage (both, or c alone without pre), and
	// GemmActGrad its output c when pre is rounded storage: the values rounded once,
	// from float32 after the bias and activation, the bias itself rounded first. A
	// layer whose output only products read (the first layer of an MLP) then keeps no
	// float32 copy of it, and SumRows takes a rounded matrix (the bias gradient of
	// such a layer's gradient). Attention reads a rounded qkv and writes a rounded o,
	// AttentionGrad reads them and a rounded do and writes a rounded dqkv, and Gemm and
	// MulRows may write rounded storage.
	RoundsOutputs() bool
	// AllocRounded returns storage for a rounded copy of n elements.
	AllocRounded(n int) Buffer
	// Round sets dst (from AllocRounded) to the rounded src[0:dst.Len()].
	Round(dst, src Buffer)
	// RoundTemp returns a rounded copy of src[0:n] in storage that the backend reuses at
	// its next RoundTemp call: an operand of the products that follow immediately.
	RoundTemp(src Buffer, n int) Buffer
	// IsRounded reports whether b is rounded storage (from AllocRounded or RoundTemp,
	// or a Slice of it).
	IsRounded(b Buffer) bool
}

// Rounder returns d's OperandRounder when its products round their operands, else nil.
func Rounder[T Float](d Device[T]) OperandRounder {
	if r, ok := d.(OperandRounder); ok && r.RoundsOperands() {
		return r
	}
	return nil
}

// MaxSegments bounds the segments of a LaplaceMMD particle.
const MaxSegments = 8

// Segments checks LaplaceMMD segment bounds of particles of dim d and returns them with
// nil as its meaning, one segment {0, d}: valid bounds are nil or 0 = segs[0] < segs[1] <
// ... < segs[len-1] = d with at most MaxSegments segments.
func Segments(segs []int, d int) ([]int, error) {
	if segs == nil {
		return []int{0, d}, nil
	}
	if len(segs) < 2 || len(segs)-1 > MaxSegments || segs[0] != 0 || segs[len(segs)-1] != d {
		return nil, fmt.Errorf("kernels: segment bounds %v: want 0 = b0 < ... < bk = %d with 1 <= k <= %d", segs, d, MaxSegments)
	}
	for q := 1; q < len(segs); q++ {
		if segs[q] <= segs[q-1] {
			return nil, fmt.Errorf("kernels: segment bounds %v are not increasing at %d", segs, q)
		}
	}
	return segs, nil
}

// AdamW holds the hyper-parameters of the AdamW update.
type AdamW struct {
	LR          float64 // learning rate
	Beta1       float64 // first-moment decay, 0.9
	Beta2       float64 // second-moment decay, 0.999
	Eps         float64 // denominator guard, 1e-8
	WeightDecay float64 // decoupled weight decay
}

// GemmBiasActOps computes Device.GemmBiasAct with Gemm, AddRowVector and Activate: the
// reference of kernels/cpu and the fallback of a backend whose fused path does not apply.
func GemmBiasActOps[T Float](d Device[T], transA, transB bool, m, n, k int, a Buffer, lda int, b Buffer, ldb int, bias Buffer, act Act, c, pre Buffer) {
	z := c
	if pre != nil {
		z = pre
	}
	d.Gemm(transA, transB, m, n, k, 1, a, lda, b, ldb, 0, z, n)
	if bias != nil {
		d.AddRowVector(z, bias, m, n)
	}
	if act != Identity || pre != nil {
		d.Activate(act, c, z) // in place when pre is nil: elementwise
	}
}

// GemmActGradOps computes Device.GemmActGrad with Gemm and ActivateGrad (in place on c).
func GemmActGradOps[T Float](d Device[T], transA, transB bool, m, n, k int, a Buffer, lda int, b Buffer, ldb int, act Act, pre, c Buffer) {
	d.Gemm(transA, transB, m, n, k, 1, a, lda, b, ldb, 0, c, n)
	if act != Identity {
		d.ActivateGrad(act, c, c, pre, 0)
	}
}

// AttentionOpsWorkspace is the workspace of AttentionOps: the probabilities P and two
// score-sized scratch matrices, batch*heads*l*l elements each.
func AttentionOpsWorkspace(batch, l, heads int) int { return 3 * batch * heads * l * l }

// AttentionOps computes Device.Attention with batched GEMMs and Softmax (one strided-
// batched product per head over the sequences): the reference of kernels/cpu, and the
// path of a backend without a fused kernel. ws is AttentionOpsWorkspace long and keeps
// P in its first batch*heads*l*l elements.
func AttentionOps[T Float](d Device[T], o, ws, qkv Buffer, batch, l, heads, hd int) {
	n := batch * heads * l * l
	AttentionGemms(d, o, d.Slice(ws, 0, n), d.Slice(ws, n, n), qkv, batch, l, heads, hd, d.Softmax)
}

// AttentionGemms is AttentionOps with the probabilities p and the scores s (each
// batch*heads*l*l, [batch, heads, l, l]) where the caller keeps them and softmax(p, s,
// rows, cols) the row softmax: a backend may keep them in another type (CUDA: bf16 P).
func AttentionGemms[T Float](d Device[T], o, p, s, qkv Buffer, batch, l, heads, hd int, softmax func(p, s Buffer, rows, cols int)) {
	D, H := heads*hd, heads
	scale := T(1 / math.Sqrt(float64(hd)))
	// head h of sequence b is at a fixed stride from head h of sequence b-1: Heads
	// launches instead of batch
	for h := 0; h < H; h++ {
		q, k := Tail(d, qkv, h*hd), Tail(d, qkv, D+h*hd)
		d.GemmBatched(false, true, l, l, hd, scale, q, 3*D, l*3*D, k, 3*D, l*3*D, 0, Tail(d, s, h*l*l), l, H*l*l, batch)
	}
	softmax(p, s, batch*H*l, l)
	for h := 0; h < H; h++ {
		v := Tail(d, qkv, 2*D+h*hd)
		d.GemmBatched(false, false, l, hd, l, 1, Tail(d, p, h*l*l), l, H*l*l, v, 3*D, l*3*D, 0, Tail(d, o, h*hd), D, l*D, batch)
	}
}

// AttentionGradOps computes Device.AttentionGrad from the P that AttentionOps saved in ws.
func AttentionGradOps[T Float](d Device[T], dqkv, do, ws, qkv Buffer, batch, l, heads, hd int) {
	n := batch * heads * l * l
	softmaxGrad := func(ds, dp, p Buffer, rows, cols int) { d.SoftmaxGrad(ds, dp, p, rows, cols, 0) }
	AttentionGradGemms(d, dqkv, do, d.Slice(ws, 0, n), d.Slice(ws, n, n), d.Slice(ws, 2*n, n), qkv, batch, l, heads, hd, softmaxGrad)
}

// AttentionGradGemms is AttentionGradOps with P, dP and dS where the caller keeps them
// and softmaxGrad(ds, dp, p, rows, cols) setting ds to the softmax gradient (as
// AttentionGemms).
func AttentionGradGemms[T Float](d Device[T], dqkv, do, p, dp, ds, qkv Buffer, batch, l, heads, hd int, softmaxGrad func(ds, dp, p Buffer, rows, cols int)) {
	D, H := heads*hd, heads
	scale := T(1 / math.Sqrt(float64(hd)))
	for h := 0; h < H; h++ {
		dob, v, ph := Tail(d, do, h*hd), Tail(d, qkv, 2*D+h*hd), Tail(d, p, h*l*l)
		// dP = dO V^T, dV = P^T dO
		d.GemmBatched(false, true, l, l, hd, 1, dob, D, l*D, v, 3*D, l*3*D, 0, Tail(d, dp, h*l*l), l, H*l*l, batch)
		d.GemmBatched(true, false, l, hd, l, 1, ph, l, H*l*l, dob, D, l*D, 0, Tail(d, dqkv, 2*D+h*hd), 3*D, l*3*D, batch)
	}
	softmaxGrad(ds, dp, p, batch*H*l, l)
	for h := 0; h < H; h++ {
		q, k, dsh := Tail(d, qkv, h*hd), Tail(d, qkv, D+h*hd), Tail(d, ds, h*l*l)
		// dQ = scale dS K, dK = scale dS^T Q
		d.GemmBatched(false, false, l, hd, l, scale, dsh, l, H*l*l, k, 3*D, l*3*D, 0, Tail(d, dqkv, h*hd), 3*D, l*3*D, batch)
		d.GemmBatched(true, false, l, hd, l, scale, dsh, l, H*l*l, q, 3*D, l*3*D, 0, Tail(d, dqkv, D+h*hd), 3*D, l*3*D, batch)
	}
}

// Tail is the view of b from off to its end.
func Tail[T Float](d Device[T], b Buffer, off int) Buffer { return d.Slice(b, off, b.Len()-off) }

// AdaLayerNormOps computes Device.AdaLayerNorm with LayerNorm and ModulateRows (in place
// on y): the path of a backend without a fused kernel for the width.
func AdaLayerNormOps[T Float](d Device[T], y, mean, rstd, x, shift, scale Buffer, rows, l, cols, ld int, eps T) {
	d.LayerNorm(y, mean, rstd, x, rows, cols, eps)
	d.ModulateRows(y, y, shift, scale, rows, l, cols, ld)
}

// AdaLayerNormGradOps computes Device.AdaLayerNormGrad with MulRows, Axpby, LayerNormGrad,
// LayerNorm (recomputing yhat into dscale; it rewrites mean and rstd with the values
// they hold) and Mul.
func AdaLayerNormGradOps[T Float](d Device[T], dx, dscale, dy, x, mean, rstd, scale Buffer, rows, l, cols, ld int, eps T) {
	d.MulRows(dscale, dy, scale, rows, l, cols, ld, 0)
	d.Axpby(1, dy, 1, dscale) // g = dy*(1+scale)
	d.LayerNormGrad(dx, dscale, x, mean, rstd, rows, cols, 0)
	d.LayerNorm(dscale, mean, rstd, x, rows, cols, eps)
	d.Mul(dscale, dscale, dy, 0)
}
