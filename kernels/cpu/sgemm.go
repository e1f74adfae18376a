package cpu

import "os"

// packedGemm routes float32 GEMMs to sgemmPacked where the CPU has AVX2 and FMA;
// IMMKIT_CPU_GEMM=gonum keeps gonum's Sgemm (the float64 GEMM is always gonum's).
var packedGemm = hasSgemmAVX2 && os.Getenv("IMMKIT_CPU_GEMM") != "gonum"

// Packed float32 GEMM on AVX2/FMA (amd64): C = alpha op(A) op(B) + beta C, row-major with
// leading dimensions, as Device.Gemm and Device.GemmBatched. The BLIS scheme on a small
// scale: op(B) is packed per block of kc rows into panels of 16 columns, op(A) per chunk
// of rows into panels of 6 rows, and sgemm6x16 (sgemm_amd64.s) computes each 6x16 tile
// of C with twelve AVX accumulators. Tiles cut by the edge of C, or whose rows belong to
// two products of a batch, go through a 6x16 buffer (C's rows copied in when beta is not
// 0, so the kernel's arithmetic is the same for every tile). Every element of C is summed
// over l in increasing order within a kc block and blocks are added in order, whatever
// the worker count or the batch's tiling, so results do not depend on them.

const (
	sgemmMR = 6   // rows of a micro-tile
	sgemmNR = 16  // columns of a micro-tile
	sgemmKC = 256 // depth of a packed block
	sgemmMC = 72  // rows per packed A chunk (a multiple of MR), one worker's unit
)

// sgemm is one packed product over rows rows of C: the m rows of each of rows/m
// products, the products' A and C at strides sa and sc, all sharing B. mc is the rows
// per packed A chunk.
type sgemm struct {
	transA, transB bool
	n, k, m, rows  int
	alpha          float32
	a, b, c        []float32
	lda, ldb, ldc  int
	sa, sc, mc     int
}

// sgemmPacked is Device.Gemm for float32 on the packed kernel, on workers workers
// (parallel splits a range among them).
func sgemmPacked(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int,
	workers int, parallel func(n, grain int, f func(lo, hi int))) {
	g := sgemm{transA: transA, transB: transB, n: n, k: k, m: m, rows: m, alpha: alpha, a: a, b: b, c: c, lda: lda, ldb: ldb, ldc: ldc}
	g.run(beta, workers, parallel)
}

// sgemmBatched is Device.GemmBatched for float32 on the packed kernel. Products that
// share B (strideB 0) run as one product over all their rows, packing B once and filling
// whole tiles; the others run one after another on each worker, which keeps its packing
// buffers for all of them.
func sgemmBatched(transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int, batch int,
	workers int, parallel func(n, grain int, f func(lo, hi int))) {
	g := sgemm{transA: transA, transB: transB, n: n, k: k, m: m, rows: m * batch, alpha: alpha, a: a, b: b, c: c, lda: lda, ldb: ldb, ldc: ldc, sa: strideA, sc: strideC}
	if strideB == 0 || batch == 1 {
		g.run(beta, workers, parallel)
		return
	}
	g.rows, g.mc = m, sgemmMC
	parallel(batch, 1, func(lo, hi int) {
		bp := getScratch[float32](g.panels() * k * sgemmNR)
		ap := getScratch[float32](sgemmMC * min(sgemmKC, k))
		for p := lo; p < hi; p++ {
			h := g
			h.a, h.b, h.c = a[p*strideA:], b[p*strideB:], c[p*strideC:]
			for pc := 0; pc < k; pc += sgemmKC {
				h.packB(bp, pc, 0, h.panels())
			}
			for pc := 0; pc < k; pc += sgemmKC {
				for i0 := 0; i0 < m; i0 += sgemmMC {
					h.chunk(ap, bp, i0, pc, blockBeta(pc, beta))
				}
			}
		}
		putScratch(ap)
		putScratch(bp)
	})
}

func (g *sgemm) panels() int { return (g.n + sgemmNR - 1) / sgemmNR }

// blockBeta is the beta of the kc block at pc: the caller's for the first, 1 after.
func blockBeta(pc int, beta float32) float32 {
	if pc > 0 {
		return 1
	}
	return beta
}

// run computes the product on workers workers: op(B) packed whole (its panels shared
// out; the scratch is the size of op(B) rounded up to 16 columns), then each worker
// takes a contiguous range of row chunks through every kc block in order. Chunks are
// made smaller than 72 rows where that evens out the workers' shares.
func (g *sgemm) run(beta float32, workers int, parallel func(n, grain int, f func(lo, hi int))) {
	chunks := (g.rows + sgemmMC - 1) / sgemmMC
	if w := max(workers, 1); chunks < 4*w && chunks%w != 0 {
		chunks = (chunks + w - 1) / w * w
	}
	g.mc = ((g.rows+chunks-1)/chunks + sgemmMR - 1) / sgemmMR * sgemmMR
	chunks = (g.rows + g.mc - 1) / g.mc
	np, blocks := g.panels(), (g.k+sgemmKC-1)/sgemmKC
	bp := getScratch[float32](np * g.k * sgemmNR)
	parallel(blocks*np, max(1, 8192/(min(sgemmKC, g.k)*sgemmNR)), func(lo, hi int) {
		for u := lo; u < hi; {
			pc, jp := u/np*sgemmKC, u%np
			j1 := min(np, jp+hi-u)
			g.packB(bp, pc, jp, j1)
			u += j1 - jp
		}
	})
	parallel(chunks, 1, func(lo, hi int) {
		ap := getScratch[float32](g.mc * min(sgemmKC, g.k))
		for pc := 0; pc < g.k; pc += sgemmKC {
			for ch := lo; ch < hi; ch++ {
				g.chunk(ap, bp, ch*g.mc, pc, blockBeta(pc, beta))
			}
		}
		putScratch(ap)
	})
	putScratch(bp)
}

// crow is the offset in c of row r (row r%m of product r/m).
func (g *sgemm) crow(r int) int { return r/g.m*g.sc + r%g.m*g.ldc }

// chunk packs rows [i0, i0+mc) of op(A) for the kc block at pc and adds their product
// with that block of the packed op(B) bp to C (beta be).
func (g *sgemm) chunk(ap, bp []float32, i0, pc int, be float32) {
	mb, kb := min(g.mc, g.rows-i0), min(sgemmKC, g.k-pc)
	g.packA(ap, i0, mb, pc, kb)
	// where each panel of 6 rows starts in c, and whether its rows are one run of
	// rows of one product (then full tiles are written in place)
	var off [sgemmMC / sgemmMR]int
	var whole [sgemmMC / sgemmMR]bool
	for ip := 0; ip*sgemmMR < mb; ip++ {
		r0 := i0 + ip*sgemmMR
		off[ip] = g.crow(r0)
		whole[ip] = r0+sgemmMR <= g.rows && r0%g.m+sgemmMR <= g.m
	}
	var tile [sgemmMR * sgemmNR]float32
	np := g.panels()
	for jp := range np {
		j0 := jp * sgemmNR
		nb := min(sgemmNR, g.n-j0)
		bpp := &bp[(np*pc+jp*kb)*sgemmNR]
		for ip := 0; ip*sgemmMR < mb; ip++ {
			app := &ap[ip*kb*sgemmMR]
			if whole[ip] && nb == sgemmNR {
				sgemm6x16(kb, app, bpp, &g.c[off[ip]+j0], g.ldc, g.alpha, be)
				continue
			}
			r0 := i0 + ip*sgemmMR
			rb := min(sgemmMR, g.rows-r0)
			for r := 0; r < rb && be != 0; r++ {
				o := g.crow(r0+r) + j0
				copy(tile[r*sgemmNR:r*sgemmNR+nb], g.c[o:o+nb])
			}
			sgemm6x16(kb, app, bpp, &tile[0], sgemmNR, g.alpha, be)
			for r := 0; r < rb; r++ {
				o := g.crow(r0+r) + j0
				copy(g.c[o:o+nb], tile[r*sgemmNR:r*sgemmNR+nb])
			}
		}
	}
}

// packB writes panels [j0, j1) of the kc block at pc of op(B) (k x n) into dst, the
// whole packed op(B): block pc (depth kb) starts at panels*pc*16 and holds 16-column
// panels, zero-padded: dst[panels*pc*16 + (jp*kb+l)*16+jj] = op(B)[pc+l, jp*16+jj].
func (g *sgemm) packB(dst []float32, pc, j0, j1 int) {
	kb := min(sgemmKC, g.k-pc)
	dst = dst[g.panels()*pc*sgemmNR:]
	b, ldb := g.b, g.ldb
	for jp := j0; jp < j1; jp++ {
		c0 := jp * sgemmNR
		nb := min(sgemmNR, g.n-c0)
		p := dst[jp*kb*sgemmNR : (jp+1)*kb*sgemmNR]
		if g.transB { // op(B)[l, j] = b[j*ldb+l]: read each row of b along l
			for jj := 0; jj < sgemmNR; jj++ {
				if jj >= nb {
					for l := 0; l < kb; l++ {
						p[l*sgemmNR+jj] = 0
					}
					continue
				}
				row := b[(c0+jj)*ldb+pc : (c0+jj)*ldb+pc+kb]
				for l, v := range row {
					p[l*sgemmNR+jj] = v
				}
			}
			continue
		}
		for l := 0; l < kb; l++ {
			q := p[l*sgemmNR : l*sgemmNR+sgemmNR]
			copy(q[:nb], b[(pc+l)*ldb+c0:(pc+l)*ldb+c0+nb])
			clear(q[nb:])
		}
	}
}

// packA writes rows [i0, i0+mb) and columns [pc, pc+kb) of op(A) as panels of 6 rows,
// zero-padded: dst[(ip*kb+l)*6+ii] = op(A)[i0+ip*6+ii, pc+l], where row r of op(A) is
// row r%m of product r/m.
func (g *sgemm) packA(dst []float32, i0, mb, pc, kb int) {
	for ip := 0; ip*sgemmMR < mb; ip++ {
		r0 := i0 + ip*sgemmMR
		rb := min(sgemmMR, i0+mb-r0)
		p := dst[ip*kb*sgemmMR : (ip+1)*kb*sgemmMR]
		if g.transA && r0%g.m+rb <= g.m { // op(A)[i, l] = a[l*lda+i]: the panel's rows are adjacent in a
			base := r0/g.m*g.sa + r0%g.m
			for l := 0; l < kb; l++ {
				q := p[l*sgemmMR : l*sgemmMR+sgemmMR]
				o := base + (pc+l)*g.lda
				copy(q[:rb], g.a[o:o+rb])
				clear(q[rb:])
			}
			continue
		}
		for ii := 0; ii < sgemmMR; ii++ {
			if ii >= rb {
				for l := 0; l < kb; l++ {
					p[l*sgemmMR+ii] = 0
				}
				continue
			}
			q, i := (r0+ii)/g.m, (r0+ii)%g.m
			if g.transA {
				for l := 0; l < kb; l++ {
					p[l*sgemmMR+ii] = g.a[q*g.sa+(pc+l)*g.lda+i]
				}
				continue
			}
			o := q*g.sa + i*g.lda + pc
			for l, v := range g.a[o : o+kb] {
				p[l*sgemmMR+ii] = v
			}
		}
	}
}
