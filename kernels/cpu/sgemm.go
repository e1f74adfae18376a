package cpu

import "os"

// packedGemm routes float32 GEMMs to sgemmPacked where the CPU has AVX2 and FMA;
// IMMKIT_CPU_GEMM=gonum keeps gonum's Sgemm (the float64 GEMM is always gonum's).
var packedGemm = hasSgemmAVX2 && os.Getenv("IMMKIT_CPU_GEMM") != "gonum"

// Packed float32 GEMM on AVX2/FMA (amd64): C = alpha op(A) op(B) + beta C, row-major with
// leading dimensions, as Device.Gemm. The BLIS scheme on a small scale: op(B) is packed
// per block of kc rows into panels of 16 columns, op(A) per chunk of rows into panels of
// 6 rows, and sgemm6x16 (sgemm_amd64.s) computes each 6x16 tile of C with twelve AVX
// accumulators. Tiles cut by the edge of C go through a 6x16 buffer. Every element of C
// is summed over l in increasing order within a kc block and blocks are added in order,
// whatever the worker count, so results do not depend on it.

const (
	sgemmMR = 6   // rows of a micro-tile
	sgemmNR = 16  // columns of a micro-tile
	sgemmKC = 256 // depth of a packed block
	sgemmMC = 72  // rows per packed A chunk (a multiple of MR), one worker's unit
)

// sgemmPacked is Device.Gemm for float32 on the packed kernel; parallel splits row chunks
// over the device's workers.
func sgemmPacked(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int,
	parallel func(n, grain int, f func(lo, hi int))) {
	np := (n + sgemmNR - 1) / sgemmNR
	chunks := (m + sgemmMC - 1) / sgemmMC
	for pc := 0; pc < k; pc += sgemmKC {
		kb := min(sgemmKC, k-pc)
		bp := getScratch[float32](np * kb * sgemmNR)
		packB(bp, transB, b, ldb, pc, kb, n)
		be := beta
		if pc > 0 {
			be = 1
		}
		parallel(chunks, 1, func(lo, hi int) {
			ap := getScratch[float32](sgemmMC * kb)
			var tile [sgemmMR * sgemmNR]float32
			for ch := lo; ch < hi; ch++ {
				i0 := ch * sgemmMC
				mb := min(sgemmMC, m-i0)
				packA(ap, transA, a, lda, i0, mb, pc, kb)
				for jp := 0; jp < np; jp++ {
					j0 := jp * sgemmNR
					nb := min(sgemmNR, n-j0)
					bpp := &bp[jp*kb*sgemmNR]
					for ip := 0; ip*sgemmMR < mb; ip++ {
						r0 := i0 + ip*sgemmMR
						rb := min(sgemmMR, m-r0)
						app := &ap[ip*kb*sgemmMR]
						if rb == sgemmMR && nb == sgemmNR {
							sgemm6x16(kb, app, bpp, &c[r0*ldc+j0], ldc, alpha, be)
							continue
						}
						sgemm6x16(kb, app, bpp, &tile[0], sgemmNR, alpha, 0)
						for r := 0; r < rb; r++ {
							row := c[(r0+r)*ldc+j0 : (r0+r)*ldc+j0+nb]
							for j := range row {
								if be == 0 {
									row[j] = tile[r*sgemmNR+j]
								} else {
									row[j] = tile[r*sgemmNR+j] + be*row[j]
								}
							}
						}
					}
				}
			}
			putScratch(ap)
		})
		putScratch(bp)
	}
}

// packB writes rows [pc, pc+kb) of op(B) (k x n) as panels of 16 columns, zero-padded:
// dst[(jp*kb+l)*16+jj] = op(B)[pc+l, jp*16+jj].
func packB(dst []float32, trans bool, b []float32, ldb, pc, kb, n int) {
	np := (n + sgemmNR - 1) / sgemmNR
	for jp := 0; jp < np; jp++ {
		j0 := jp * sgemmNR
		nb := min(sgemmNR, n-j0)
		p := dst[jp*kb*sgemmNR : (jp+1)*kb*sgemmNR]
		if trans { // op(B)[l, j] = b[j*ldb+l]: read each row of b along l
			for jj := 0; jj < sgemmNR; jj++ {
				if jj >= nb {
					for l := 0; l < kb; l++ {
						p[l*sgemmNR+jj] = 0
					}
					continue
				}
				row := b[(j0+jj)*ldb+pc : (j0+jj)*ldb+pc+kb]
				for l, v := range row {
					p[l*sgemmNR+jj] = v
				}
			}
			continue
		}
		for l := 0; l < kb; l++ {
			q := p[l*sgemmNR : l*sgemmNR+sgemmNR]
			copy(q[:nb], b[(pc+l)*ldb+j0:(pc+l)*ldb+j0+nb])
			clear(q[nb:])
		}
	}
}

// packA writes rows [i0, i0+mb) and columns [pc, pc+kb) of op(A) (m x k) as panels of 6
// rows, zero-padded: dst[(ip*kb+l)*6+ii] = op(A)[i0+ip*6+ii, pc+l].
func packA(dst []float32, trans bool, a []float32, lda, i0, mb, pc, kb int) {
	for ip := 0; ip*sgemmMR < mb; ip++ {
		r0 := ip * sgemmMR
		rb := min(sgemmMR, mb-r0)
		p := dst[ip*kb*sgemmMR : (ip+1)*kb*sgemmMR]
		if trans { // op(A)[i, l] = a[l*lda+i]: the panel's rows are adjacent in a
			for l := 0; l < kb; l++ {
				q := p[l*sgemmMR : l*sgemmMR+sgemmMR]
				copy(q[:rb], a[(pc+l)*lda+i0+r0:(pc+l)*lda+i0+r0+rb])
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
			i := i0 + r0 + ii
			row := a[i*lda+pc : i*lda+pc+kb]
			for l, v := range row {
				p[l*sgemmMR+ii] = v
			}
		}
	}
}
