package cuda

import (
	"cmp"
	"fmt"
	"math"
	"runtime"
	"slices"
	"unsafe"

	"github.com/immkit/immkit/internal/cudadrv"
	"github.com/immkit/immkit/kernels"
)

// Buf is a buffer in device memory: element i is the float32 at address Ptr + 4*i.
// Memory from Alloc is freed by Free or, failing that, when the garbage collector finds
// the Buf and every Slice of it unreachable (a Slice keeps its parent alive).
type Buf struct {
	Ptr    cudadrv.Ptr
	N      int
	parent *Buf // the Alloc'd buffer a Slice views; nil for Alloc's own
}

// Len is the number of elements.
func (b *Buf) Len() int { return b.N }

// Options choose the precision of the matrix products.
type Options struct {
	// TF32 lets cuBLAS run FP32 GEMMs on TF32 tensor cores (about 10 bits of mantissa
	// in the products, FP32 accumulation). Off: full FP32 SGEMM.
	TF32 bool
	// BF16 runs the GEMMs on bf16 tensor cores: both operands are rounded to bf16 (8 bits
	// of mantissa) into scratch before each product, accumulation and output stay FP32.
	// Activations and weights are stored in FP32 either way. Takes precedence over TF32.
	BF16 bool
}

// Device is the CUDA backend; it is not safe for concurrent use by several goroutines
// (like kernels/cpu, one trainer drives it), but it may be called from any goroutine.
type Device struct {
	ctx  *cudadrv.Context
	opt  Options
	fns  map[string]cudadrv.Function
	part cudadrv.Ptr // reduce_sum partials: partBlocks doubles
	// Scratch of the ops; pointers, so that a copy of the Device (the TF32 view of the
	// tests) shares them rather than freeing memory the original still holds.
	mmd    *scratch    // laplace_mmd_rows partials (doubles)
	ids    *scratch    // Embed ids (int32)
	segs   *segScratch // LaplaceMMD segment bounds (int32)
	srp    *scratch    // sum_rows_part partials (float32)
	bfA    *scratch    // bf16 copies of the GEMM operands (Options.BF16)
	bfB    *scratch
	bfT    *scratch  // RoundTemp's bf16 copy
	lnY    *scratch  // AdaLayerNorm's float32 rows before rounding, for rows wider than its kernels
	bfBias *scratch  // the bf16 bias of a product written in bf16 (epilogue.go)
	ep     *scratch  // the float32 product of an unfused epilogue written in bf16
	att    *scratch  // the GEMM attention's scores or score gradients, the fused one's float32 dqkv
	keep   bool      // RoundsOperands with BF16 (rounded.go)
	out16  bool      // RoundsOutputs with RoundsOperands
	nbf    *[2]int64 // elements rounded to bf16 by the products and by Round/RoundTemp
	hpart  []float64
	math   int      // cuBLAS math mode of this Device's GEMMs
	lts    *ltStats // fused and fallen-back epilogue products (epilogue.go)
}

var _ kernels.Device[float32] = (*Device)(nil)

const (
	partBlocks = 512
	threads    = 256
)

// New opens device 0, loads the embedded PTX and resolves every kernel. Without a
// usable GPU the error says why in one line (no driver, with the directories searched;
// no cuBLAS; or the driver's own error).
func New(opt Options) (*Device, error) {
	ctx, err := cudadrv.Open()
	if err != nil {
		return nil, err
	}
	mod, err := ctx.LoadModule(ptx)
	if err != nil {
		return nil, fmt.Errorf("cuda: load embedded PTX on %s: %w", ctx.Name, err)
	}
	d := &Device{ctx: ctx, opt: opt, fns: map[string]cudadrv.Function{}, hpart: make([]float64, partBlocks),
		mmd: &scratch{}, ids: &scratch{}, segs: &segScratch{}, srp: &scratch{}, bfA: &scratch{}, bfB: &scratch{}, bfT: &scratch{}, lnY: &scratch{}, bfBias: &scratch{}, ep: &scratch{}, att: &scratch{}, lts: &ltStats{}, keep: keepRounded(), out16: roundOutputs(), nbf: &[2]int64{}}
	for name := range kernelParams {
		f, err := ctx.Function(mod, name)
		if err != nil {
			return nil, fmt.Errorf("cuda: %w", err)
		}
		d.fns[name] = f
	}
	d.math = cudadrv.MathDefault
	if opt.TF32 {
		d.math = cudadrv.MathTF32
	}
	if err := ctx.SetMathMode(d.math); err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	if d.part, err = ctx.Alloc(8 * partBlocks); err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	return d, nil
}

// Context returns the driver context (device name, memory, versions).
func (d *Device) Context() *cudadrv.Context { return d.ctx }

// Name returns "cuda".
func (d *Device) Name() string { return "cuda" }

// Describe names the card, e.g. "NVIDIA H200 (cc 90, 140 GiB, driver 13000, FP32 GEMM,
// cuBLASLt epilogues)".
func (d *Device) Describe() string {
	g := "FP32"
	switch {
	case d.opt.BF16:
		g = "BF16"
	case d.opt.TF32:
		g = "TF32"
	}
	ep := "cuBLASLt epilogues"
	if d.RoundsOperands() {
		ep = "operands rounded once, " + ep
	}
	if off := d.ltOff(); off != "" {
		ep = "unfused epilogues: " + off
	}
	if d.flash(64) {
		ep += ", flash attention"
	}
	return fmt.Sprintf("%s (cc %d, %d GiB, driver %d, %s GEMM, %s)", d.ctx.Name, d.ctx.Capability, d.ctx.TotalMem>>30, d.ctx.Driver, g, ep)
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}

// Sync waits for queued work and reports an asynchronous kernel fault.
func (d *Device) Sync() error { return d.ctx.Sync() }

func ptrOf(b kernels.Buffer) cudadrv.Ptr {
	if b == nil {
		return 0
	}
	return buf(b).Ptr
}

func lenOf(b kernels.Buffer) int { return buf(b).N }

// buf is b as a float32 buffer of this backend.
func buf(b kernels.Buffer) *Buf {
	bb, ok := b.(*Buf)
	if !ok {
		panic(fmt.Sprintf("cuda: a %T where the op takes float32 device memory (a Rounded copy is an operand of bf16 products only)", b))
	}
	return bb
}

func gridFor(n int) uint32 {
	g := (n + threads - 1) / threads
	return uint32(max(1, min(g, 65535)))
}

func (d *Device) launch(name string, grid, block [3]uint32, shmem int, args ...uint64) {
	if len(args) != kernelParams[name] {
		panic(fmt.Sprintf("cuda: %s launched with %d arguments, kernel has %d", name, len(args), kernelParams[name]))
	}
	check(d.ctx.Launch(d.fns[name], grid, block, uint32(shmem), args))
}

// elementwise launches a grid-stride kernel over n elements.
func (d *Device) elementwise(name string, n int, args ...uint64) {
	if n == 0 {
		return
	}
	d.launch(name, [3]uint32{gridFor(n), 1, 1}, [3]uint32{threads, 1, 1}, 0, args...)
}

func (d *Device) rowwise(name string, rows int, args ...uint64) {
	if rows == 0 {
		return
	}
	d.launch(name, [3]uint32{uint32(rows), 1, 1}, [3]uint32{threads, 1, 1}, 0, args...)
}

// rowOp launches a row op: the register warp-per-row kernel with the fewest values per
// lane that holds the row (8 rows per block of 256) for rows of at most 32*32 columns,
// the register block-per-row kernel up to blockRowMax columns, else the block-per-row
// kernel that reads the row three times.
func (d *Device) rowOp(name string, rows, cols int, args ...uint64) {
	if rows == 0 {
		return
	}
	variants := rowKernels[name]
	for i, k := range warpKs {
		if cols <= 32*k {
			d.launch(variants[i], [3]uint32{uint32((rows + 7) / 8), 1, 1}, [3]uint32{threads, 1, 1}, 0, args...)
			return
		}
	}
	if cols <= blockRowMax {
		d.rowwise(variants[len(warpKs)], rows, args...)
		return
	}
	d.rowwise(name, rows, args...)
}

func p(b kernels.Buffer) uint64 { return uint64(ptrOf(b)) }

// scratch is device memory an op keeps between calls (partial sums, uploaded ids),
// grown geometrically and never shrunk, so a steady-state step allocates nothing.
type scratch struct {
	ptr   cudadrv.Ptr
	bytes int
}

// segScratch holds the LaplaceMMD segment bounds on the device and, in host, the bounds
// it holds, so that they are uploaded only when they change; shared by the copies of a
// Device like the other scratch.
type segScratch struct {
	scratch
	host []int
}

// get returns at least n bytes, reallocating (contents lost) when the current ones are
// fewer.
func (s *scratch) get(ctx *cudadrv.Context, n int) cudadrv.Ptr {
	if n > s.bytes {
		if s.ptr != 0 {
			check(ctx.Free(s.ptr))
		}
		n = max(n, 2*s.bytes)
		ptr, err := ctx.Alloc(n)
		check(err)
		s.ptr, s.bytes = ptr, n
	}
	return s.ptr
}

// Alloc returns a zeroed buffer.
func (d *Device) Alloc(n int) kernels.Buffer {
	if n < 0 {
		panic(fmt.Sprintf("cuda: Alloc(%d)", n))
	}
	ptr, err := d.ctx.Alloc(max(4*n, 4))
	check(err)
	check(d.ctx.Memset32(ptr, 0, n))
	b := &Buf{Ptr: ptr, N: n}
	ctx := d.ctx
	runtime.SetFinalizer(b, func(b *Buf) { _ = ctx.Free(b.Ptr) })
	return b
}

// Free releases a buffer from Alloc now; b and its slices must not be used afterwards.
func (d *Device) Free(b kernels.Buffer) error {
	bb := buf(b)
	if bb.parent != nil {
		return fmt.Errorf("cuda: Free of a Slice")
	}
	runtime.SetFinalizer(bb, nil)
	return d.ctx.Free(bb.Ptr)
}

// Slice returns a view of b[off : off+n] (of a Buf or a Rounded).
func (d *Device) Slice(b kernels.Buffer, off, n int) kernels.Buffer {
	if r, ok := b.(*Rounded); ok {
		checkSlice(off, n, r.N, "rounded ")
		return &Rounded{Ptr: r.Ptr + cudadrv.Ptr(2*off), N: n, parent: cmp.Or(r.parent, r)}
	}
	bb := buf(b)
	checkSlice(off, n, bb.N, "")
	return &Buf{Ptr: bb.Ptr + cudadrv.Ptr(4*off), N: n, parent: cmp.Or(bb.parent, bb)}
}

func checkSlice(off, n, size int, kind string) {
	if off < 0 || n < 0 || off+n > size {
		panic(fmt.Sprintf("cuda: Slice [%d:%d] of %d %selements", off, off+n, size, kind))
	}
}

// Write copies host data to dst[0:len(src)] without waiting for the GPU
// (cudadrv.Context.Upload: a pinned staging buffer and an asynchronous copy ordered with
// the queued kernels); src may be reused when Write returns.
func (d *Device) Write(dst kernels.Buffer, src []float32) {
	if len(src) > lenOf(dst) {
		panic(fmt.Sprintf("cuda: Write %d elements into %d", len(src), lenOf(dst)))
	}
	if len(src) == 0 {
		return
	}
	check(d.ctx.Upload(ptrOf(dst), unsafe.Pointer(&src[0]), 4*len(src)))
}

// Read copies src[0:len(dst)] to the host.
func (d *Device) Read(dst []float32, src kernels.Buffer) {
	if len(dst) > lenOf(src) {
		panic(fmt.Sprintf("cuda: Read %d elements from %d", len(dst), lenOf(src)))
	}
	if len(dst) == 0 {
		return
	}
	check(d.ctx.DtoH(unsafe.Pointer(&dst[0]), ptrOf(src), 4*len(dst)))
}

// Copy copies src to dst.
func (d *Device) Copy(dst, src kernels.Buffer) {
	if lenOf(dst) != lenOf(src) {
		panic(fmt.Sprintf("cuda: Copy length %d to %d", lenOf(src), lenOf(dst)))
	}
	check(d.ctx.DtoD(ptrOf(dst), ptrOf(src), 4*lenOf(src)))
}

// Fill sets every element to v.
func (d *Device) Fill(dst kernels.Buffer, v float32) {
	check(d.ctx.Memset32(ptrOf(dst), math.Float32bits(v), lenOf(dst)))
}

// setMath makes the shared cuBLAS handle use this Device's math mode (several Devices
// of one process share the context and the handle).
func (d *Device) setMath() {
	if d.ctx.MathMode() != d.math {
		check(d.ctx.SetMathMode(d.math))
	}
}

// Gemm is the row-major product, run by cuBLAS as the column-major C^T = B^T A^T.
func (d *Device) Gemm(transA, transB bool, m, n, k int, alpha float32, a kernels.Buffer, lda int, b kernels.Buffer, ldb int, beta float32, c kernels.Buffer, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if d.opt.BF16 {
		d.gemmBF16(transA, transB, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1)
		return
	}
	d.setMath()
	check(d.ctx.Sgemm(transB, transA, n, m, k, alpha, ptrOf(b), ldb, ptrOf(a), lda, beta, ptrOf(c), ldc))
}

// toBF16 rounds batch row-major matrices of rows x cols (leading dimension ld, batch
// stride stride) into dense bf16 in s and returns their address.
func (d *Device) toBF16(s *scratch, src kernels.Buffer, batch, rows, cols, ld, stride int) cudadrv.Ptr {
	dst := s.get(d.ctx, max(2*batch*rows*cols, 4))
	d.nbf[0] += int64(batch * rows * cols)
	d.rowBroadcast("to_bf16", batch*rows, cols, uint64(dst), p(src), i32(batch), i32(rows), i32(cols), i32(ld), i64(stride))
	return dst
}

// stored is the shape of an operand op(X) of rows x cols as it is stored.
func stored(trans bool, rows, cols int) (int, int) {
	if trans {
		return cols, rows
	}
	return rows, cols
}

// gemmBF16 is Gemm (batch 1) or GemmBatched with both operands rounded to bf16 first
// (unless they are Rounded copies already): cublasGemmEx / cublasGemmStridedBatchedEx
// with CUDA_R_16BF inputs, FP32 output and CUBLAS_COMPUTE_32F. An operand with stride 0
// (one matrix for every product) is converted once.
func (d *Device) gemmBF16(transA, transB bool, m, n, k int, alpha float32, a kernels.Buffer, lda, strideA int, b kernels.Buffer, ldb, strideB int, beta float32, c kernels.Buffer, ldc, strideC, batch int) {
	ra, ca := stored(transA, m, k)
	rb, cb := stored(transB, k, n)
	abf, lda, sa := d.bf16Operand(d.bfA, a, batch, ra, ca, lda, strideA)
	bbf, ldb, sb := d.bf16Operand(d.bfB, b, batch, rb, cb, ldb, strideB)
	pc, ct := d.bf16Out(c, batch, m, n, ldc, strideC)
	if batch == 1 {
		check(d.ctx.GemmEx(transB, transA, n, m, k, alpha, bbf, cudadrv.R16BF, ldb, abf, cudadrv.R16BF, lda,
			beta, pc, ct, ldc, cudadrv.Compute32F))
		return
	}
	check(d.ctx.GemmStridedBatchedEx(transB, transA, n, m, k, alpha, bbf, cudadrv.R16BF, ldb, sb, abf, cudadrv.R16BF, lda, sa,
		beta, pc, ct, ldc, strideC, batch, cudadrv.Compute32F))
}

// bf16Out is the address and type of the output of a bf16 product: float32, or rounded
// storage (kernels.OperandRounder.RoundsOutputs: cuBLAS rounds the float32 result once),
// batch matrices of rows x cols with leading dimension ld and batch stride stride.
func (d *Device) bf16Out(c kernels.Buffer, batch, rows, cols, ld, stride int) (cudadrv.Ptr, int) {
	r, ok := c.(*Rounded)
	if !ok {
		return ptrOf(c), cudadrv.R32F
	}
	if (batch-1)*stride+(rows-1)*ld+cols > r.N {
		panic(fmt.Sprintf("cuda: a bf16 product's output of %d x %d (leading dimension %d, %d of stride %d) past the %d elements of its rounded storage",
			rows, cols, ld, batch, stride, r.N))
	}
	return r.Ptr, cudadrv.R16BF
}

// GemmBatched runs batch products with strides, as one cuBLAS strided-batched call.
func (d *Device) GemmBatched(transA, transB bool, m, n, k int, alpha float32, a kernels.Buffer, lda, strideA int, b kernels.Buffer, ldb, strideB int, beta float32, c kernels.Buffer, ldc, strideC int, batch int) {
	if m == 0 || n == 0 || batch == 0 {
		return
	}
	if d.opt.BF16 {
		d.gemmBF16(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch)
		return
	}
	d.setMath()
	check(d.ctx.SgemmStridedBatched(transB, transA, n, m, k, alpha, ptrOf(b), ldb, strideB, ptrOf(a), lda, strideA, beta, ptrOf(c), ldc, strideC, batch))
}

// AddRowVector adds v to every row of x.
func (d *Device) AddRowVector(x, v kernels.Buffer, rows, cols int) {
	d.rowBroadcast("add_row_vector", rows, cols, p(x), p(v), i32(rows), i32(cols))
}

// sumRowsChunk is the fewest rows one block of the tall SumRows path sums.
const sumRowsChunk = 256

// SumRows reduces over rows. A matrix with few columns and many rows (a bias gradient:
// tokens x width) is split into row chunks so that the GPU gets hundreds of blocks, then
// the chunk sums are added in order (deterministic, like one pass).
func (d *Device) SumRows(dst, x kernels.Buffer, rows, cols int, beta float32) {
	if cols == 0 {
		return
	}
	// x float32, or rounded storage (a layer's rounded output gradient): the _h kernels
	sum, part, xp := "sum_rows", "sum_rows_part", uint64(0)
	if xr, ok := x.(*Rounded); ok {
		xr.need("SumRows", rows*cols)
		sum, part, xp = "sum_rows_h", "sum_rows_part_h", uint64(xr.Ptr)
	} else {
		xp = p(x)
	}
	gx := (cols + 31) / 32
	chunks := 1
	if rows >= 2*sumRowsChunk && gx < 264 {
		chunks = min((rows+sumRowsChunk-1)/sumRowsChunk, max(1, 528/gx), 65535)
	}
	if chunks == 1 {
		d.launch(sum, [3]uint32{uint32(gx), 1, 1}, [3]uint32{32, 32, 1}, 0, p(dst), xp, i32(rows), i32(cols), f32(beta))
		return
	}
	rpc := (rows + chunks - 1) / chunks
	chunks = (rows + rpc - 1) / rpc
	srp := d.srp.get(d.ctx, 4*chunks*cols)
	d.launch(part, [3]uint32{uint32(gx), uint32(chunks), 1}, [3]uint32{32, 32, 1}, 0, uint64(srp), xp, i32(rows), i32(cols), i32(rpc), i32(cols))
	d.elementwise("sum_rows_finish", cols, p(dst), uint64(srp), i32(chunks), i32(cols), f32(beta))
}

// SumRowGroups sums each group of l rows: sum_rows_part with a chunk per group, in
// launches of at most 65535 groups (the grid's y limit).
func (d *Device) SumRowGroups(dst, x kernels.Buffer, groups, l, cols, ld int) {
	if groups == 0 || cols == 0 {
		return
	}
	gx := (cols + 31) / 32
	for g0 := 0; g0 < groups; g0 += 65535 {
		n := min(groups-g0, 65535)
		out, in := ptrOf(dst)+cudadrv.Ptr(4*g0*ld), ptrOf(x)+cudadrv.Ptr(4*g0*l*cols)
		d.launch("sum_rows_part", [3]uint32{uint32(gx), uint32(n), 1}, [3]uint32{32, 32, 1}, 0, uint64(out), uint64(in), i32(n*l), i32(cols), i32(l), i32(ld))
	}
}

// RowComb sets dst = a[i]*x + b[i]*y row by row.
func (d *Device) RowComb(dst, a, x, b, y kernels.Buffer, rows, cols int) {
	if b == nil || y == nil {
		b, y = nil, nil
	}
	d.elementwise("row_comb", rows*cols, p(dst), p(a), p(x), p(b), p(y), i32(rows), i32(cols))
}

// Axpby sets y = alpha*x + beta*y.
func (d *Device) Axpby(alpha float32, x kernels.Buffer, beta float32, y kernels.Buffer) {
	n := lenOf(x)
	d.elementwise("axpby", n, f32(alpha), p(x), f32(beta), p(y), i64(n))
}

// Mul sets dst = x*y + beta*dst.
func (d *Device) Mul(dst, x, y kernels.Buffer, beta float32) {
	n := lenOf(dst)
	d.elementwise("mul", n, p(dst), p(x), p(y), f32(beta), i64(n))
}

// Modulate sets dst = x*(1+scale) + shift.
func (d *Device) Modulate(dst, x, shift, scale kernels.Buffer) {
	n := lenOf(dst)
	d.elementwise("modulate", n, p(dst), p(x), p(shift), p(scale), i64(n))
}

// rowThreads is the block width of the row-broadcast kernels: transformer widths are
// multiples of 128, so a row of 384 fills three blocks.
const rowThreads = 128

// rowBroadcast launches a kernel that strides blockIdx.y over rows and x-threads over
// the columns of a row (add_row_vector, mul_rows, modulate_rows, to_bf16): blocks of
// rowThreads over the columns, grid rows striding over the rows.
func (d *Device) rowBroadcast(name string, rows, cols int, args ...uint64) {
	if rows == 0 || cols == 0 {
		return
	}
	gx := min((cols+rowThreads-1)/rowThreads, 64)
	gy := min(rows, 65535)
	d.launch(name, [3]uint32{uint32(gx), uint32(gy), 1}, [3]uint32{rowThreads, 1, 1}, 0, args...)
}

// MulRows sets dst[r*cols+j] = x[r*cols+j]*v[(r/l)*ld+j] + beta*dst[r*cols+j]; into
// rounded storage (beta 0) with mul_rows_h.
func (d *Device) MulRows(dst, x, v kernels.Buffer, rows, l, cols, ld int, beta float32) {
	if r, ok := dst.(*Rounded); ok {
		if beta != 0 {
			panic(fmt.Sprintf("cuda: MulRows with beta %g into rounded storage (beta must be 0)", beta))
		}
		r.need("MulRows", rows*cols)
		d.rowBroadcast("mul_rows_h", rows, cols, uint64(r.Ptr), p(x), p(v), i32(rows), i32(l), i32(cols), i32(ld))
		return
	}
	d.rowBroadcast("mul_rows", rows, cols, p(dst), p(dst), p(x), p(v), i32(rows), i32(l), i32(cols), i32(ld), f32(beta))
}

// MulRowsAdd sets dst[r*cols+j] = x[r*cols+j]*v[(r/l)*ld+j] + base[r*cols+j].
func (d *Device) MulRowsAdd(dst, base, x, v kernels.Buffer, rows, l, cols, ld int) {
	d.rowBroadcast("mul_rows", rows, cols, p(dst), p(base), p(x), p(v), i32(rows), i32(l), i32(cols), i32(ld), f32(1))
}

// ModulateRows sets dst[r*cols+j] = x[r*cols+j]*(1+scale[(r/l)*ld+j]) + shift[(r/l)*ld+j].
func (d *Device) ModulateRows(dst, x, shift, scale kernels.Buffer, rows, l, cols, ld int) {
	d.rowBroadcast("modulate_rows", rows, cols, p(dst), p(x), p(shift), p(scale), i32(rows), i32(l), i32(cols), i32(ld))
}

// Activate sets y = act(x).
func (d *Device) Activate(a kernels.Act, y, x kernels.Buffer) {
	n := lenOf(x)
	d.elementwise("activate", n, i32(int(a)), p(y), p(x), i64(n))
}

// ActivateGrad sets dx = beta*dx + dy*act'(x).
func (d *Device) ActivateGrad(a kernels.Act, dx, dy, x kernels.Buffer, beta float32) {
	n := lenOf(x)
	d.elementwise("activate_grad", n, i32(int(a)), p(dx), p(dy), p(x), f32(beta), i64(n))
}

// LayerNorm normalises rows, saving mean and rstd.
func (d *Device) LayerNorm(y, mean, rstd, x kernels.Buffer, rows, cols int, eps float32) {
	d.rowOp("layer_norm", rows, cols, p(y), p(mean), p(rstd), p(x), i32(rows), i32(cols), f32(eps))
}

// LayerNormGrad back-propagates through LayerNorm.
func (d *Device) LayerNormGrad(dx, dy, x, mean, rstd kernels.Buffer, rows, cols int, beta float32) {
	d.rowOp("layer_norm_grad", rows, cols, p(dx), p(dy), p(x), p(mean), p(rstd), i32(rows), i32(cols), f32(beta))
}

// AdaLayerNorm is kernels.Device.AdaLayerNorm: one row kernel (LayerNorm with the
// modulation applied before the store) for rows of up to blockRowMax columns.
func (d *Device) AdaLayerNorm(y, mean, rstd, x, shift, scale kernels.Buffer, rows, l, cols, ld int, eps float32) {
	yr, rounded := y.(*Rounded)
	switch {
	case rounded && cols > blockRowMax:
		// through float32 scratch, then rounded
		tmp := &Buf{Ptr: d.lnY.get(d.ctx, max(4*rows*cols, 4)), N: rows * cols}
		kernels.AdaLayerNormOps[float32](d, tmp, mean, rstd, x, shift, scale, rows, l, cols, ld, eps)
		d.Round(y, tmp)
	case rounded:
		if yr.N < rows*cols {
			panic(fmt.Sprintf("cuda: AdaLayerNorm of %d x %d into %d rounded elements", rows, cols, yr.N))
		}
		d.rowOp("ada_ln_h", rows, cols, uint64(yr.Ptr), p(mean), p(rstd), p(x), p(shift), p(scale), i32(rows), i32(l), i32(cols), i32(ld), f32(eps))
	case cols > blockRowMax:
		kernels.AdaLayerNormOps[float32](d, y, mean, rstd, x, shift, scale, rows, l, cols, ld, eps)
	default:
		d.rowOp("ada_ln", rows, cols, p(y), p(mean), p(rstd), p(x), p(shift), p(scale), i32(rows), i32(l), i32(cols), i32(ld), f32(eps))
	}
}

// AdaLayerNormGrad is kernels.Device.AdaLayerNormGrad: one row kernel reading dy, x and
// the row's scale and writing dx and dscale (separate ops took eleven passes).
func (d *Device) AdaLayerNormGrad(dx, dscale, dy, x, mean, rstd, scale kernels.Buffer, rows, l, cols, ld int, eps float32) {
	if cols > blockRowMax {
		kernels.AdaLayerNormGradOps[float32](d, dx, dscale, dy, x, mean, rstd, scale, rows, l, cols, ld, eps)
		return
	}
	d.rowOp("ada_ln_grad", rows, cols, p(dx), p(dscale), p(dy), p(x), p(mean), p(rstd), p(scale), i32(rows), i32(l), i32(cols), i32(ld))
}

// Softmax applies a row-wise softmax.
func (d *Device) Softmax(y, x kernels.Buffer, rows, cols int) {
	d.rowOp("softmax", rows, cols, p(y), p(x), i32(rows), i32(cols))
}

// SoftmaxGrad back-propagates through Softmax given its output y.
func (d *Device) SoftmaxGrad(dx, dy, y kernels.Buffer, rows, cols int, beta float32) {
	d.rowOp("softmax_grad", rows, cols, p(dx), p(dy), p(y), i32(rows), i32(cols), f32(beta))
}

// uploadIDs checks ids against the rows of a table (an id out of range would be an
// out-of-bounds device access; the CPU panics there too) and copies them to the device.
func (d *Device) uploadIDs(ids []int32, table kernels.Buffer, dim int) cudadrv.Ptr {
	rows := lenOf(table) / dim
	for i, id := range ids {
		if id < 0 || int(id) >= rows {
			panic(fmt.Sprintf("cuda: id %d at %d out of range for a table of %d rows", id, i, rows))
		}
	}
	ptr := d.ids.get(d.ctx, 4*len(ids))
	check(d.ctx.Upload(ptr, unsafe.Pointer(&ids[0]), 4*len(ids)))
	return ptr
}

// Embed gathers table rows.
func (d *Device) Embed(dst, table kernels.Buffer, ids []int32, dim int) {
	if len(ids) == 0 || dim == 0 {
		return
	}
	ip := d.uploadIDs(ids, table, dim)
	d.elementwise("embed", len(ids)*dim, p(dst), p(table), uint64(ip), i32(len(ids)), i32(dim))
}

// EmbedGrad scatters gradients back in increasing i, like the CPU.
func (d *Device) EmbedGrad(dtable, dy kernels.Buffer, ids []int32, dim int) {
	if len(ids) == 0 || dim == 0 {
		return
	}
	ip := d.uploadIDs(ids, dtable, dim)
	d.elementwise("embed_grad", dim, p(dtable), p(dy), uint64(ip), i32(len(ids)), i32(dim))
}

// TimeEmbed writes sinusoidal features.
func (d *Device) TimeEmbed(dst, t kernels.Buffer, rows, dim int) {
	d.elementwise("time_embed", rows*(dim/2), p(dst), p(t), i32(rows), i32(dim))
}

func (d *Device) reduce(x kernels.Buffer, square int) float64 {
	n := lenOf(x)
	if n == 0 {
		return 0
	}
	g := min(partBlocks, int(gridFor(n)))
	d.launch("reduce_sum", [3]uint32{uint32(g), 1, 1}, [3]uint32{threads, 1, 1}, 0, uint64(d.part), p(x), i64(n), i32(square))
	check(d.ctx.DtoH(unsafe.Pointer(&d.hpart[0]), d.part, 8*g))
	var s float64
	for _, v := range d.hpart[:g] {
		s += v
	}
	return s
}

// Sum returns the sum of x, accumulated in float64.
func (d *Device) Sum(x kernels.Buffer) float64 { return d.reduce(x, 0) }

// SumSquares returns the sum of squares of x, accumulated in float64.
func (d *Device) SumSquares(x kernels.Buffer) float64 { return d.reduce(x, 1) }

// AdamW updates p in place in one fused kernel.
func (d *Device) AdamW(pb, g, m, v kernels.Buffer, o kernels.AdamW, step int, gscale float32) {
	d.adamW("adamw", pb, g, m, v, nil, o, step, gscale)
}

// AdamWEMA is AdamW and EMA in one kernel: p, g, m, v, avg are read once and p, m, v, avg
// written once (32 bytes per parameter instead of 28 + 12).
func (d *Device) AdamWEMA(pb, g, m, v, avg kernels.Buffer, o kernels.AdamW, step int, gscale, decay float32) {
	d.adamW("adamw_ema", pb, g, m, v, avg, o, step, gscale, f32(decay))
}

// adamW launches kernel name (adamw or adamw_ema) with the AdamW arguments; avg (nil for
// adamw) follows v, and extra (the EMA decay) follows gscale.
func (d *Device) adamW(name string, pb, g, m, v, avg kernels.Buffer, o kernels.AdamW, step int, gscale float32, extra ...uint64) {
	c1 := 1 - math.Pow(o.Beta1, float64(step))
	c2 := 1 - math.Pow(o.Beta2, float64(step))
	n := lenOf(pb)
	args := []uint64{p(pb), p(g), p(m), p(v)}
	if avg != nil {
		args = append(args, p(avg))
	}
	args = append(args, f32(float32(o.LR)), f32(float32(o.Beta1)), f32(float32(o.Beta2)),
		f32(float32(o.Eps)), f32(float32(o.WeightDecay)), f32(float32(c1)), f32(float32(c2)), f32(gscale))
	args = append(append(args, extra...), i64(n))
	d.elementwise(name, n, args...)
}

// EMA blends p into avg.
func (d *Device) EMA(avg, pb kernels.Buffer, decay float32) {
	n := lenOf(avg)
	d.elementwise("ema", n, p(avg), p(pb), f32(decay), i64(n))
}

// maxMMDShared bounds the per-block shared memory of laplace_mmd_rows (2*m floats per
// segment).
const maxMMDShared = 40 << 10

// LaplaceMMD computes the grouped Laplace-kernel MMD and, when grad is not nil, its
// gradient: one block per particle, then one pass per group.
func (d *Device) LaplaceMMD(mmd, grad, yt, yr, kw, gw kernels.Buffer, groups, m, dim int, segs []int) {
	segs, err := kernels.Segments(segs, dim)
	if err != nil {
		panic(err)
	}
	if groups == 0 || m == 0 {
		return
	}
	nseg := len(segs) - 1
	if 8*m*nseg > maxMMDShared {
		panic(fmt.Sprintf("cuda: LaplaceMMD group size %d with %d segments exceeds %d", m, nseg, maxMMDShared/8))
	}
	if !slices.Equal(d.segs.host, segs) { // upload the bounds only when they change
		b := make([]int32, len(segs))
		for i, v := range segs {
			b[i] = int32(v)
		}
		ptr := d.segs.get(d.ctx, 4*len(b))
		check(d.ctx.Upload(ptr, unsafe.Pointer(&b[0]), 4*len(b)))
		d.segs.host = slices.Clone(segs)
	}
	need := 3 * groups * m
	part := d.mmd.get(d.ctx, 8*need)
	if grad == nil {
		gw = nil
	}
	d.launch("laplace_mmd_rows", [3]uint32{uint32(groups * m), 1, 1}, [3]uint32{128, 1, 1}, 8*m*nseg,
		uint64(part), p(grad), p(yt), p(yr), p(kw), p(gw), i32(groups), i32(m), i32(dim), uint64(d.segs.ptr), i32(nseg))
	d.elementwise("laplace_mmd_finish", groups, p(mmd), uint64(part), i32(groups), i32(m))
}

// RandNormal fills dst with N(0, std^2) draws of the Philox stream.
func (d *Device) RandNormal(dst kernels.Buffer, key, counter uint64, std float32) {
	n := lenOf(dst)
	d.elementwise("rand_normal", (n+3)/4, p(dst), i64(n), key, counter, f32(std))
}

// RandUniform fills dst with U[0,1) draws of the Philox stream.
func (d *Device) RandUniform(dst kernels.Buffer, key, counter uint64) {
	n := lenOf(dst)
	d.elementwise("rand_uniform", (n+3)/4, p(dst), i64(n), key, counter)
}
