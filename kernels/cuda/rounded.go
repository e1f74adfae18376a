package cuda

import (
	"fmt"
	"os"
	"runtime"

	"github.com/immkit/immkit/internal/cudadrv"
	"github.com/immkit/immkit/kernels"
)

// bf16 operands rounded once (kernels.OperandRounder). With Options.BF16 every product
// rounds its float32 operands into bf16 scratch first: a dense layer's input was
// rounded twice (forward, weight gradient), its weight three times (two forward passes
// of the IMM step and the backward product) and its output gradient twice. A layer that
// keeps the rounded copies rounds each once per pass, and the copy kept for the backward
// pass is half the size of the float32 input. IMMKIT_CUDA_BF16_KEEP=0 turns it off (the
// products then round their operands every time, with the same results).

// Rounded is a bf16 copy of float32 data in device memory: element i is the bf16 at
// address Ptr + 2*i, rounded (to nearest even) from element i of the source.
type Rounded struct {
	Ptr    cudadrv.Ptr
	N      int
	parent *Rounded // the AllocRounded storage a Slice views; nil for its own
}

// Len is the number of elements.
func (b *Rounded) Len() int { return b.N }

// need panics, naming what, when b holds fewer than n elements.
func (b *Rounded) need(what string, n int) {
	if b.N < n {
		panic(fmt.Sprintf("cuda: %s needs %d elements, from %d rounded elements", what, n, b.N))
	}
}

// ptr is b's address, 0 for a nil b.
func (b *Rounded) ptr() cudadrv.Ptr {
	if b == nil {
		return 0
	}
	return b.Ptr
}

var _ kernels.OperandRounder = (*Device)(nil)

// keepRounded reports whether the environment leaves rounded operands on, and
// roundOutputs whether it leaves bf16 outputs on.
func keepRounded() bool  { return os.Getenv("IMMKIT_CUDA_BF16_KEEP") != "0" }
func roundOutputs() bool { return os.Getenv("IMMKIT_CUDA_BF16_OUT") != "0" }

// RoundsOperands reports whether the products take bf16 operands (Options.BF16) and
// rounded copies are kept (IMMKIT_CUDA_BF16_KEEP is not 0 when the Device was made).
func (d *Device) RoundsOperands() bool { return d.opt.BF16 && d.keep }

// RoundsOutputs reports whether GemmBiasAct and GemmActGrad write rounded storage for
// the layers that ask (RoundsOperands, and IMMKIT_CUDA_BF16_OUT is not 0 when the
// Device was made).
func (d *Device) RoundsOutputs() bool { return d.RoundsOperands() && d.out16 }

// AllocRounded returns bf16 storage for n elements, freed with the Rounded.
func (d *Device) AllocRounded(n int) kernels.Buffer {
	if n < 0 {
		panic(fmt.Sprintf("cuda: AllocRounded(%d)", n))
	}
	ptr, err := d.ctx.Alloc(max(2*n, 4))
	check(err)
	b := &Rounded{Ptr: ptr, N: n}
	ctx := d.ctx
	runtime.SetFinalizer(b, func(b *Rounded) { _ = ctx.Free(b.Ptr) })
	return b
}

// Round sets dst (a Rounded) to src[0:dst.Len()] rounded to bf16.
func (d *Device) Round(dst, src kernels.Buffer) {
	r, ok := dst.(*Rounded)
	if !ok {
		panic(fmt.Sprintf("cuda: Round into %T, not storage from AllocRounded", dst))
	}
	if r.N > lenOf(src) {
		panic(fmt.Sprintf("cuda: Round of %d elements from %d", r.N, lenOf(src)))
	}
	d.elementwise("round_bf16", r.N, uint64(r.Ptr), p(src), i64(r.N))
	d.nbf[1] += int64(r.N)
}

// IsRounded reports whether b is a Rounded.
func (d *Device) IsRounded(b kernels.Buffer) bool {
	_, ok := b.(*Rounded)
	return ok
}

// RoundTemp rounds src[0:n] into scratch that the next RoundTemp reuses.
func (d *Device) RoundTemp(src kernels.Buffer, n int) kernels.Buffer {
	if n < 0 || n > lenOf(src) {
		panic(fmt.Sprintf("cuda: RoundTemp of %d elements from %d", n, lenOf(src)))
	}
	r := &Rounded{Ptr: d.bfT.get(d.ctx, max(2*n, 4)), N: n}
	d.elementwise("round_bf16", n, uint64(r.Ptr), p(src), i64(n))
	d.nbf[1] += int64(n)
	return r
}

// BF16Rounded is the number of elements rounded to bf16 so far: by the products for
// their float32 operands, and by Round and RoundTemp for the copies layers keep.
func (d *Device) BF16Rounded() (products, kept int64) { return d.nbf[0], d.nbf[1] }

// bf16Operand returns the bf16 address, leading dimension and batch stride of the
// operand x of a bf16 product, batch matrices of rows x cols as stored (leading
// dimension ld, batch stride stride, or 0 for one matrix shared by the batch): a Rounded
// copy as it is, a float32 one rounded into s (dense).
func (d *Device) bf16Operand(s *scratch, x kernels.Buffer, batch, rows, cols, ld, stride int) (cudadrv.Ptr, int, int) {
	if r, ok := x.(*Rounded); ok {
		if rows > 0 && cols > 0 && (batch-1)*stride+(rows-1)*ld+cols > r.N {
			panic(fmt.Sprintf("cuda: a bf16 operand of %d x %d (leading dimension %d, %d of stride %d) past the %d elements of its rounded copy",
				rows, cols, ld, batch, stride, r.N))
		}
		return r.Ptr, ld, stride
	}
	if stride == 0 {
		batch = 1
	}
	ptr := d.toBF16(s, x, batch, rows, cols, ld, stride)
	if stride != 0 {
		stride = rows * cols
	}
	return ptr, max(cols, 1), stride
}
