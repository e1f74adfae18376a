package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/immkit/immkit/kernels"
)

// refPhilox is Philox4x32-10 in its textbook form, a loop over rounds on arrays, apart
// from the unrolled philoxKeys.block of the ops (which TestPhiloxKnownAnswers checks).
func refPhilox(key, block uint64) [4]uint32 {
	c := [4]uint32{uint32(block), uint32(block >> 32), 0, 0}
	k := [2]uint32{uint32(key), uint32(key >> 32)}
	for range 10 {
		p0 := uint64(0xD2511F53) * uint64(c[0])
		p1 := uint64(0xCD9E8D57) * uint64(c[2])
		c = [4]uint32{uint32(p1>>32) ^ c[1] ^ k[0], uint32(p1), uint32(p0>>32) ^ c[3] ^ k[1], uint32(p0)}
		k[0] += 0x9E3779B9
		k[1] += 0xBB67AE85
	}
	return c
}

// refBoxMuller is the RandNormal formula evaluated with package math, as the op did
// before boxMuller (and as the CUDA kernel does with CUDA's libm).
func refBoxMuller(a, b uint32) (float64, float64) {
	u := (float64(a) + 1) / 4294967296.0
	v := float64(b) / 4294967296.0
	r := math.Sqrt(-2 * math.Log(u))
	return r * math.Cos(2*math.Pi*v), r * math.Sin(2*math.Pi*v)
}

// Bounds of boxMuller against refBoxMuller: in float64, relative error (both sides are
// within about an ulp of the exact formula, near the zeros of cos and sin too, as both
// reduce the angle with pi/2 in three parts); in float32, the draws that round to a
// different float32, which happens only when the float64 value lies within about 1e-16
// (relative) of a rounding boundary, and then by one ulp.
const (
	normalRel64   = 1e-15
	normalDiffs32 = 1e-5 // largest fraction of float32 draws allowed to differ
)

// normalErrs accumulates the comparison of draws with their reference; what names a
// draw in a failure.
type normalErrs struct {
	n, diff32 int
	rel64     float64
	has64     bool // whether rel64 was measured (float64 draws)
}

func (e *normalErrs) add(t *testing.T, what func() string, got, want float64) {
	t.Helper()
	e.has64 = true
	if got != want {
		rel := math.Abs(got-want) / math.Abs(want)
		if !(rel <= normalRel64) { // NaN, or want == 0 and got != 0, fail too
			t.Fatalf("%s: %v, reference %v: relative error %.3g", what(), got, want, rel)
		}
		e.rel64 = max(e.rel64, rel)
	}
	e.add32(t, what, float32(got), float32(want))
}

// add32 counts a float32 draw, which may differ from its reference by one ulp.
func (e *normalErrs) add32(t *testing.T, what func() string, got, want float32) {
	t.Helper()
	e.n++
	if got != want {
		e.diff32++
		d := int64(math.Float32bits(got)) - int64(math.Float32bits(want))
		if d != 1 && d != -1 || math.Signbit(float64(got)) != math.Signbit(float64(want)) {
			t.Fatalf("%s: float32 %v, reference %v: more than an ulp apart", what(), got, want)
		}
	}
}

func (e *normalErrs) check(t *testing.T, what string) {
	t.Helper()
	if e.has64 {
		t.Logf("%s: %d draws, max relative error %.3g; rounded to float32, %d differ", what, e.n, e.rel64, e.diff32)
	} else {
		t.Logf("%s: %d float32 draws, %d differ", what, e.n, e.diff32)
	}
	if float64(e.diff32) > normalDiffs32*float64(e.n) {
		t.Fatalf("%s: %d of %d float32 draws differ from the reference", what, e.diff32, e.n)
	}
}

// specialWords are words at the extremes of u and v and of the reductions: 0 and 2^32-1,
// the quadrant and octant boundaries of v, powers of two (the binades of u) and the
// sqrt(2)/2 points of the log's reduction, each with its neighbours.
func specialWords() []uint32 {
	var ws []uint32
	near := func(c uint64) {
		for d := int64(-2); d <= 2; d++ {
			if w := int64(c) + d; w >= 0 && w < 1<<32 {
				ws = append(ws, uint32(w))
			}
		}
	}
	for k := 0; k <= 8; k++ {
		near(uint64(k) << 29) // v = k/8
	}
	for k := 0; k <= 32; k++ {
		near(1 << k)                                // u = 2^(k-32), w+1 = 2^k
		near(uint64(math.Ldexp(math.Sqrt2/2, k+1))) // u near 2^(k-32) sqrt(2)
	}
	return ws
}

// TestBoxMuller compares the transform with the package-math formula on every pair of
// special words (518400 draws) and on 2^20 random blocks (4 Mi draws), in both lanes.
func TestBoxMuller(t *testing.T) {
	var e normalErrs
	check := func(w [4]uint32) {
		z0, z1, z2, z3 := boxMuller(w[0], w[1], w[2], w[3])
		r0, r1 := refBoxMuller(w[0], w[1])
		r2, r3 := refBoxMuller(w[2], w[3])
		for q, p := range [4][2]float64{{z0, r0}, {z1, r1}, {z2, r2}, {z3, r3}} {
			e.add(t, func() string { return fmt.Sprintf("boxMuller(%#x)[%d]", w, q) }, p[0], p[1])
		}
	}
	sp := specialWords()
	for i, a := range sp {
		for j, b := range sp {
			c, d := sp[len(sp)-1-i], sp[(j+7)%len(sp)]
			check([4]uint32{a, b, c, d})
		}
	}
	e.check(t, fmt.Sprintf("%d special words, pairwise", len(sp)))
	r := rand.New(rand.NewPCG(3, 4))
	e = normalErrs{}
	for range 1 << 20 { // four draws each
		check([4]uint32{r.Uint32(), r.Uint32(), r.Uint32(), r.Uint32()})
	}
	e.check(t, "random words")
	// The extremes exactly: u = 1 gives 0, v = 0 gives (r, 0).
	if z0, z1, _, _ := boxMuller(1<<32-1, 12345, 0, 0); z0 != 0 || z1 != 0 {
		t.Errorf("u = 1: %v, %v, want 0, 0", z0, z1)
	}
	if z0, z1, _, _ := boxMuller(0, 0, 0, 0); z0 != math.Sqrt(64*math.Ln2) || z1 != 0 {
		t.Errorf("u = 2^-32, v = 0: %v, %v, want %v, 0", z0, z1, math.Sqrt(64*math.Ln2))
	}
}

// TestRandNormalReference checks whole ops against refPhilox and refBoxMuller, in float32
// and float64, over several keys, counters (one that crosses 2^32 blocks, one that wraps),
// scales and lengths that leave a partial block (2.9 M draws in each type).
func TestRandNormalReference(t *testing.T) {
	cases := []struct {
		key, counter uint64
		std          float64
		n            int
	}{
		{0, 0, 1, 1<<20 + 3},
		{42, 7, 0.05, 1 << 20},
		{0xdeadbeef12345678, 1<<32 - 1000, 2, 1<<19 + 1},
		{^uint64(0), ^uint64(0) - 100, 0.5, 1<<18 + 2},
	}
	test := func(t *testing.T, run func(key, counter uint64, std float64, n int) []float64, f32 bool) {
		var e normalErrs
		for _, c := range cases {
			got := run(c.key, c.counter, c.std, c.n)
			var z [4]float64
			for i, g := range got {
				if i%4 == 0 {
					w := refPhilox(c.key, c.counter+uint64(i/4))
					z[0], z[1] = refBoxMuller(w[0], w[1])
					z[2], z[3] = refBoxMuller(w[2], w[3])
				}
				what := func() string { return fmt.Sprintf("key %#x counter %d [%d]", c.key, c.counter, i) }
				if f32 { // the op rounds z*std, std rounded to float32, to float32
					e.add32(t, what, float32(g), float32(z[i%4]*float64(float32(c.std))))
				} else {
					e.add(t, what, g, z[i%4]*c.std)
				}
			}
		}
		e.check(t, "whole ops")
	}
	t.Run("float32", func(t *testing.T) { test(t, normals[float32], true) })
	t.Run("float64", func(t *testing.T) { test(t, normals[float64], false) })
}

// normals runs RandNormal on a float32 or float64 device of two workers.
func normals[T kernels.Float](key, counter uint64, std float64, n int) []float64 {
	d := New[T](2)
	b := d.Alloc(n)
	d.RandNormal(b, key, counter, T(std))
	out := make([]float64, n)
	for i, v := range Data[T](b) {
		out[i] = float64(v)
	}
	return out
}

// TestRandWorkers checks that both ops give the same bits on 1 to 5 workers, in float32
// and float64, for a length that leaves a partial block and chunks of odd sizes.
func TestRandWorkers(t *testing.T) {
	testRandWorkers[float32](t)
	testRandWorkers[float64](t)
}

func testRandWorkers[T kernels.Float](t *testing.T) {
	n := 4*1024*5 + 7
	var refN, refU []T
	for w := 1; w <= 5; w++ {
		d := New[T](w)
		z, u := d.Alloc(n), d.Alloc(n)
		d.RandNormal(z, 9, 1<<32-3000, 1.5)
		d.RandUniform(u, 9, 1<<32-3000)
		if refN == nil {
			refN, refU = Data[T](z), Data[T](u)
			continue
		}
		for i := range n {
			if Data[T](z)[i] != refN[i] || Data[T](u)[i] != refU[i] {
				t.Fatalf("%T, %d workers: [%d] = %v, %v; 1 worker: %v, %v", refN[0], w, i, Data[T](z)[i], Data[T](u)[i], refN[i], refU[i])
			}
		}
	}
	// RandUniform is the words times 2^-32, rounded to T.
	for i, v := range refU {
		if w := T(float64(refPhilox(9, 1<<32-3000+uint64(i/4))[i%4]) / 4294967296.0); v != w {
			t.Fatalf("%T RandUniform[%d] = %v, want %v", v, i, v, w)
		}
	}
}

// BenchmarkRandNormal times RandNormal in float32 on GOMAXPROCS workers: the draws of a
// demo training step (about 360 K) and a larger buffer. ns/elem is per draw.
func BenchmarkRandNormal(b *testing.B) {
	for _, n := range []int{360_000, 4_000_000} {
		d := New[float32](runtime.GOMAXPROCS(0))
		x := d.Alloc(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for i := range b.N {
				d.RandNormal(x, uint64(i), 0, 1)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/elem")
		})
	}
}
