package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSumRowGroups checks SumRowGroups against a float64 loop: float64 (1e-13) and
// float32 (1e-5 relative to the column's absolute sum), 1 and 3 workers, one row per
// group, groups longer than the packed GEMM's k block, and an output leading dimension
// wider than the rows (whose gaps must stay untouched).
func TestSumRowGroups(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, c := range []struct{ groups, l, cols, ld int }{{5, 7, 3, 3}, {4, 64, 384, 6 * 384}, {3, 300, 40, 41}, {9, 1, 17, 20}, {2, 0, 5, 5}} {
		x := randSlice(r, c.groups*c.l*c.cols)
		want := make([]float64, c.groups*c.ld)
		abs := make([]float64, len(want))
		for i := range want {
			want[i] = 7 // the gaps keep it
		}
		for g := range c.groups {
			for j := range c.cols {
				want[g*c.ld+j], abs[g*c.ld+j] = 0, 0
				for i := range c.l {
					v := x[(g*c.l+i)*c.cols+j]
					want[g*c.ld+j] += v
					abs[g*c.ld+j] += math.Abs(v)
				}
			}
		}
		for _, workers := range []int{1, 3} {
			d := New[float64](workers)
			dst := buf(d, slicesRepeat(7, len(want)))
			d.SumRowGroups(dst, buf(d, x), c.groups, c.l, c.cols, c.ld)
			near(t, "SumRowGroups float64", Data[float64](dst), want, 1e-13)

			f := New[float32](workers)
			x32 := make([]float32, len(x))
			for i, v := range x {
				x32[i] = float32(v)
			}
			xb, db := f.Alloc(len(x32)), f.Alloc(len(want))
			f.Write(xb, x32)
			f.Fill(db, 7)
			f.SumRowGroups(db, xb, c.groups, c.l, c.cols, c.ld)
			for i, v := range Data[float32](db) {
				if e := math.Abs(float64(v) - want[i]); e > 1e-5*(abs[i]+1e-30) && !(abs[i] == 0 && v == float32(want[i])) {
					t.Fatalf("SumRowGroups float32 %+v: element %d = %v, want %v", c, i, v, want[i])
				}
			}
		}
	}
}

func slicesRepeat(v float64, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}
