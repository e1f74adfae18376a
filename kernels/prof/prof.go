// Package prof wraps a kernels.Device and measures where a training step spends its
// time: every op is followed by a device synchronisation and timed, grouped by op name
// and shape; the time between ops (host work: data loading, Go code, cgo) is charged to
// the function that called the next op. It is a diagnostic: the synchronisations slow
// a GPU step down, so its totals are an upper bound on the step time, and only the
// shares are meant to be read.
//
// kernels/device wraps the device it opens when IMMKIT_PROFILE is set; commands and
// benchmarks print Report at the end.
package prof

import (
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/immkit/immkit/kernels"
)

// Device is a kernels.Device that times each op of the device it wraps.
type Device[T kernels.Float] struct {
	kernels.Device[T]
	sync func() error

	mu    sync.Mutex
	ops   map[string]*stat
	gaps  map[string]*stat
	last  time.Time
	start time.Time
}

type stat struct {
	n int
	d time.Duration
}

// Wrap returns d with every op timed; sync waits for the device's queued work (nil for
// a synchronous device such as kernels/cpu).
func Wrap[T kernels.Float](d kernels.Device[T], sync func() error) *Device[T] {
	now := time.Now()
	return &Device[T]{Device: d, sync: sync, ops: map[string]*stat{}, gaps: map[string]*stat{}, last: now, start: now}
}

// Unwrap returns the wrapped device.
func (p *Device[T]) Unwrap() kernels.Device[T] { return p.Device }

// caller names the first function outside this package on the stack.
func caller() string {
	var pcs [8]uintptr
	n := runtime.Callers(3, pcs[:])
	fr := runtime.CallersFrames(pcs[:n])
	for {
		f, more := fr.Next()
		if !strings.Contains(f.Function, "/kernels/prof.") {
			name := f.Function
			if i := strings.LastIndex(name, "/"); i >= 0 {
				name = name[i+1:]
			}
			return fmt.Sprintf("%s:%d", name, f.Line)
		}
		if !more {
			return "?"
		}
	}
}

// op times f as the op key.
func (p *Device[T]) op(key string, f func()) {
	t0 := time.Now()
	gapBy := caller()
	f()
	if p.sync != nil {
		if err := p.sync(); err != nil {
			panic(fmt.Sprintf("prof: %s: %v", key, err))
		}
	}
	t1 := time.Now()
	p.mu.Lock()
	add(p.ops, key, t1.Sub(t0))
	add(p.gaps, gapBy, t0.Sub(p.last))
	p.last = t1
	p.mu.Unlock()
}

func add(m map[string]*stat, k string, d time.Duration) {
	s := m[k]
	if s == nil {
		s = &stat{}
		m[k] = s
	}
	s.n++
	s.d += d
}

// Reset forgets what was measured so far (call it after a warm-up step).
func (p *Device[T]) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ops, p.gaps = map[string]*stat{}, map[string]*stat{}
	p.last, p.start = time.Now(), time.Now()
}

// Report writes the ops and the host gaps, largest first, with their shares of the
// wall time since the start (or the last Reset); at most top rows of each.
func (p *Device[T]) Report(w io.Writer, top int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	wall := time.Since(p.start)
	write := func(title string, m map[string]*stat) {
		type row struct {
			k string
			s *stat
		}
		var rows []row
		var tot time.Duration
		for k, s := range m {
			rows = append(rows, row{k, s})
			tot += s.d
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i].s.d > rows[j].s.d })
		fmt.Fprintf(w, "prof: %s: %.3f s in all, %.1f%% of %.3f s wall\n", title, tot.Seconds(), 100*tot.Seconds()/wall.Seconds(), wall.Seconds())
		for i, r := range rows {
			if i == top {
				break
			}
			fmt.Fprintf(w, "prof: %6.2f%% %9.3f ms %8d x  %s\n", 100*r.s.d.Seconds()/wall.Seconds(), r.s.d.Seconds()*1e3, r.s.n, r.k)
		}
	}
	write("device ops (each followed by a sync)", p.ops)
	write("host time between ops, by the caller of the next op", p.gaps)
}

func shape(b kernels.Buffer) int {
	if b == nil {
		return 0
	}
	return b.Len()
}

// size class of an element count, for grouping: the power of two at or above n.
func cls(n int) string {
	c := 1
	for c < n {
		c <<= 1
	}
	return fmt.Sprintf("<=%d", c)
}

func (p *Device[T]) Alloc(n int) (b kernels.Buffer) {
	p.op("Alloc", func() { b = p.Device.Alloc(n) })
	return b
}
func (p *Device[T]) Write(dst kernels.Buffer, src []T) {
	p.op("Write "+cls(len(src)), func() { p.Device.Write(dst, src) })
}
func (p *Device[T]) Read(dst []T, src kernels.Buffer) {
	p.op("Read "+cls(len(dst)), func() { p.Device.Read(dst, src) })
}
func (p *Device[T]) Copy(dst, src kernels.Buffer) {
	p.op("Copy "+cls(shape(dst)), func() { p.Device.Copy(dst, src) })
}
func (p *Device[T]) Fill(dst kernels.Buffer, v T) {
	p.op("Fill "+cls(shape(dst)), func() { p.Device.Fill(dst, v) })
}
func (p *Device[T]) Gemm(transA, transB bool, m, n, k int, alpha T, a kernels.Buffer, lda int, b kernels.Buffer, ldb int, beta T, c kernels.Buffer, ldc int) {
	p.op(fmt.Sprintf("Gemm %dx%dx%d ta=%v tb=%v", m, n, k, transA, transB), func() {
		p.Device.Gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	})
}
func (p *Device[T]) GemmBatched(transA, transB bool, m, n, k int, alpha T, a kernels.Buffer, lda, strideA int, b kernels.Buffer, ldb, strideB int, beta T, c kernels.Buffer, ldc, strideC int, batch int) {
	p.op(fmt.Sprintf("GemmBatched %dx(%dx%dx%d) ta=%v tb=%v", batch, m, n, k, transA, transB), func() {
		p.Device.GemmBatched(transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batch)
	})
}
func (p *Device[T]) AddRowVector(x, v kernels.Buffer, rows, cols int) {
	p.op(fmt.Sprintf("AddRowVector %dx%d", rows, cols), func() { p.Device.AddRowVector(x, v, rows, cols) })
}
func (p *Device[T]) SumRows(dst, x kernels.Buffer, rows, cols int, beta T) {
	p.op(fmt.Sprintf("SumRows %dx%d", rows, cols), func() { p.Device.SumRows(dst, x, rows, cols, beta) })
}
func (p *Device[T]) SumRowGroups(dst, x kernels.Buffer, groups, l, cols, ld int) {
	p.op(fmt.Sprintf("SumRowGroups %dx%dx%d", groups, l, cols), func() { p.Device.SumRowGroups(dst, x, groups, l, cols, ld) })
}

// RoundsOperands, AllocRounded, Round, IsRounded and RoundTemp pass kernels.OperandRounder through
// to the wrapped device, Round and RoundTemp timed as ops.
func (p *Device[T]) RoundsOperands() bool { return kernels.Rounder(p.Device) != nil }
func (p *Device[T]) RoundsOutputs() bool  { return kernels.Rounder(p.Device).RoundsOutputs() }
func (p *Device[T]) AllocRounded(n int) kernels.Buffer {
	return kernels.Rounder(p.Device).AllocRounded(n)
}
func (p *Device[T]) Round(dst, src kernels.Buffer) {
	p.op("Round "+cls(dst.Len()), func() { kernels.Rounder(p.Device).Round(dst, src) })
}
func (p *Device[T]) IsRounded(b kernels.Buffer) bool { return kernels.Rounder(p.Device).IsRounded(b) }
func (p *Device[T]) RoundTemp(src kernels.Buffer, n int) (r kernels.Buffer) {
	p.op("RoundTemp "+cls(n), func() { r = kernels.Rounder(p.Device).RoundTemp(src, n) })
	return r
}
func (p *Device[T]) RowComb(dst, a, x, b, y kernels.Buffer, rows, cols int) {
	p.op(fmt.Sprintf("RowComb %dx%d", rows, cols), func() { p.Device.RowComb(dst, a, x, b, y, rows, cols) })
}
func (p *Device[T]) Axpby(alpha T, x kernels.Buffer, beta T, y kernels.Buffer) {
	p.op("Axpby "+cls(shape(x)), func() { p.Device.Axpby(alpha, x, beta, y) })
}
func (p *Device[T]) Mul(dst, x, y kernels.Buffer, beta T) {
	p.op("Mul "+cls(shape(dst)), func() { p.Device.Mul(dst, x, y, beta) })
}
func (p *Device[T]) Modulate(dst, x, shift, scale kernels.Buffer) {
	p.op("Modulate "+cls(shape(dst)), func() { p.Device.Modulate(dst, x, shift, scale) })
}

func (p *Device[T]) MulRows(dst, x, v kernels.Buffer, rows, l, cols, ld int, beta T) {
	p.op("MulRows "+cls(rows*cols), func() { p.Device.MulRows(dst, x, v, rows, l, cols, ld, beta) })
}

func (p *Device[T]) MulRowsAdd(dst, base, x, v kernels.Buffer, rows, l, cols, ld int) {
	p.op("MulRowsAdd "+cls(rows*cols), func() { p.Device.MulRowsAdd(dst, base, x, v, rows, l, cols, ld) })
}

func (p *Device[T]) ModulateRows(dst, x, shift, scale kernels.Buffer, rows, l, cols, ld int) {
	p.op("ModulateRows "+cls(rows*cols), func() { p.Device.ModulateRows(dst, x, shift, scale, rows, l, cols, ld) })
}
func (p *Device[T]) Activate(act kernels.Act, y, x kernels.Buffer) {
	p.op("Activate/"+act.String()+" "+cls(shape(x)), func() { p.Device.Activate(act, y, x) })
}
func (p *Device[T]) ActivateGrad(act kernels.Act, dx, dy, x kernels.Buffer, beta T) {
	p.op("ActivateGrad/"+act.String()+" "+cls(shape(x)), func() { p.Device.ActivateGrad(act, dx, dy, x, beta) })
}
func (p *Device[T]) GemmBiasAct(transA, transB bool, m, n, k int, a kernels.Buffer, lda int, b kernels.Buffer, ldb int, bias kernels.Buffer, act kernels.Act, c, pre kernels.Buffer) {
	p.op(fmt.Sprintf("GemmBiasAct/%s %dx%dx%d ta=%v tb=%v", act, m, n, k, transA, transB), func() {
		p.Device.GemmBiasAct(transA, transB, m, n, k, a, lda, b, ldb, bias, act, c, pre)
	})
}
func (p *Device[T]) GemmActGrad(transA, transB bool, m, n, k int, a kernels.Buffer, lda int, b kernels.Buffer, ldb int, act kernels.Act, pre, c kernels.Buffer) {
	p.op(fmt.Sprintf("GemmActGrad/%s %dx%dx%d ta=%v tb=%v", act, m, n, k, transA, transB), func() {
		p.Device.GemmActGrad(transA, transB, m, n, k, a, lda, b, ldb, act, pre, c)
	})
}
func (p *Device[T]) Attention(o, ws, qkv kernels.Buffer, batch, l, heads, hd int) {
	p.op(fmt.Sprintf("Attention %dx(%dx%d) heads=%d", batch, l, hd, heads), func() { p.Device.Attention(o, ws, qkv, batch, l, heads, hd) })
}
func (p *Device[T]) AttentionGrad(dqkv, do, o, ws, qkv kernels.Buffer, batch, l, heads, hd int) {
	p.op(fmt.Sprintf("AttentionGrad %dx(%dx%d) heads=%d", batch, l, hd, heads), func() {
		p.Device.AttentionGrad(dqkv, do, o, ws, qkv, batch, l, heads, hd)
	})
}
func (p *Device[T]) AdaLayerNorm(y, mean, rstd, x, shift, scale kernels.Buffer, rows, l, cols, ld int, eps T) {
	p.op(fmt.Sprintf("AdaLayerNorm %dx%d", rows, cols), func() { p.Device.AdaLayerNorm(y, mean, rstd, x, shift, scale, rows, l, cols, ld, eps) })
}
func (p *Device[T]) AdaLayerNormGrad(dx, dscale, dy, x, mean, rstd, scale kernels.Buffer, rows, l, cols, ld int, eps T) {
	p.op(fmt.Sprintf("AdaLayerNormGrad %dx%d", rows, cols), func() {
		p.Device.AdaLayerNormGrad(dx, dscale, dy, x, mean, rstd, scale, rows, l, cols, ld, eps)
	})
}
func (p *Device[T]) LayerNorm(y, mean, rstd, x kernels.Buffer, rows, cols int, eps T) {
	p.op(fmt.Sprintf("LayerNorm %dx%d", rows, cols), func() { p.Device.LayerNorm(y, mean, rstd, x, rows, cols, eps) })
}
func (p *Device[T]) LayerNormGrad(dx, dy, x, mean, rstd kernels.Buffer, rows, cols int, beta T) {
	p.op(fmt.Sprintf("LayerNormGrad %dx%d", rows, cols), func() { p.Device.LayerNormGrad(dx, dy, x, mean, rstd, rows, cols, beta) })
}
func (p *Device[T]) Softmax(y, x kernels.Buffer, rows, cols int) {
	p.op(fmt.Sprintf("Softmax %dx%d", rows, cols), func() { p.Device.Softmax(y, x, rows, cols) })
}
func (p *Device[T]) SoftmaxGrad(dx, dy, y kernels.Buffer, rows, cols int, beta T) {
	p.op(fmt.Sprintf("SoftmaxGrad %dx%d", rows, cols), func() { p.Device.SoftmaxGrad(dx, dy, y, rows, cols, beta) })
}
func (p *Device[T]) Embed(dst, table kernels.Buffer, ids []int32, dim int) {
	p.op(fmt.Sprintf("Embed %dx%d", len(ids), dim), func() { p.Device.Embed(dst, table, ids, dim) })
}
func (p *Device[T]) EmbedGrad(dtable, dy kernels.Buffer, ids []int32, dim int) {
	p.op(fmt.Sprintf("EmbedGrad %dx%d", len(ids), dim), func() { p.Device.EmbedGrad(dtable, dy, ids, dim) })
}
func (p *Device[T]) TimeEmbed(dst, t kernels.Buffer, rows, dim int) {
	p.op(fmt.Sprintf("TimeEmbed %dx%d", rows, dim), func() { p.Device.TimeEmbed(dst, t, rows, dim) })
}
func (p *Device[T]) Sum(x kernels.Buffer) (s float64) {
	p.op("Sum "+cls(shape(x)), func() { s = p.Device.Sum(x) })
	return s
}
func (p *Device[T]) SumSquares(x kernels.Buffer) (s float64) {
	p.op("SumSquares "+cls(shape(x)), func() { s = p.Device.SumSquares(x) })
	return s
}
func (p *Device[T]) AdamW(pb, g, m, v kernels.Buffer, o kernels.AdamW, step int, gscale T) {
	p.op("AdamW "+cls(shape(pb)), func() { p.Device.AdamW(pb, g, m, v, o, step, gscale) })
}
func (p *Device[T]) EMA(avg, pb kernels.Buffer, decay T) {
	p.op("EMA "+cls(shape(avg)), func() { p.Device.EMA(avg, pb, decay) })
}
func (p *Device[T]) AdamWEMA(pb, g, m, v, avg kernels.Buffer, o kernels.AdamW, step int, gscale, decay T) {
	p.op("AdamWEMA "+cls(shape(pb)), func() { p.Device.AdamWEMA(pb, g, m, v, avg, o, step, gscale, decay) })
}
func (p *Device[T]) LaplaceMMD(mmd, grad, yt, yr, kw, gw kernels.Buffer, groups, m, d int, segs []int) {
	p.op(fmt.Sprintf("LaplaceMMD groups=%d m=%d d=%d segments=%d grad=%v", groups, m, d, max(len(segs)-1, 1), grad != nil), func() {
		p.Device.LaplaceMMD(mmd, grad, yt, yr, kw, gw, groups, m, d, segs)
	})
}
func (p *Device[T]) RandNormal(dst kernels.Buffer, key, counter uint64, std T) {
	p.op("RandNormal "+cls(shape(dst)), func() { p.Device.RandNormal(dst, key, counter, std) })
}
func (p *Device[T]) RandUniform(dst kernels.Buffer, key, counter uint64) {
	p.op("RandUniform "+cls(shape(dst)), func() { p.Device.RandUniform(dst, key, counter) })
}
