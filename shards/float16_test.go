package shards

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/float16"
)

// TestFloat16ToFloat32 checks all 65536 half values against the float64 reference of the
// tests, and the normal ones against arrow's own conversion.
func TestFloat16ToFloat32(t *testing.T) {
	src := make([]uint16, 1<<16)
	for i := range src {
		src[i] = uint16(i)
	}
	dst := make([]float32, len(src))
	Float16ToFloat32(dst, src)
	tab := make([]float32, len(src))
	float16Table(tab, src) // the path of CPUs without F16C, checked on all values too
	for i, h := range src {
		want := float16To32(h)
		got := dst[i]
		if math.IsNaN(float64(want)) != math.IsNaN(float64(tab[i])) || !math.IsNaN(float64(want)) && math.Float32bits(tab[i]) != math.Float32bits(want) {
			t.Fatalf("%#04x: table gives %v, want %v", h, tab[i], want)
		}
		if math.IsNaN(float64(want)) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("%#04x: got %v, want NaN", h, got)
			}
			continue
		}
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("%#04x: got %v, want %v", h, got, want)
		}
		// arrow-go v18.8.0 mis-converts subnormal halves (0x0001 gives 1.1e-41, not 2^-24),
		// so it is a second reference for normal values only.
		if a := float16.FromBits(h).Float32(); h&0x7c00 != 0 && math.Float32bits(a) != math.Float32bits(got) {
			t.Fatalf("%#04x: arrow says %v, we say %v", h, a, got)
		}
	}
}

func BenchmarkFloat16ToFloat32(b *testing.B) {
	src := make([]uint16, 4096)
	for i := range src {
		src[i] = uint16(i * 7)
	}
	dst := make([]float32, len(src))
	b.SetBytes(int64(len(dst) * 4))
	for b.Loop() {
		Float16ToFloat32(dst, src)
	}
}

// TestFloat16ToFloat32Lengths converts slices of every length up to 200 at several
// alignments and checks each value against the table reference (halfToFloat32), the
// elements around dst untouched (guard bands) and src unchanged: the vector path covers
// multiples of 32 and the table the tail.
func TestFloat16ToFloat32Lengths(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	const guard = 7
	sentinel := float32(math.Inf(-1))
	for n := 0; n <= 200; n++ {
		for off := 0; off < 3; off++ {
			src := make([]uint16, off+n)
			for i := range src {
				src[i] = uint16(r.Uint32())
			}
			src = src[off:]
			orig := append([]uint16(nil), src...)
			buf := make([]float32, off+n+2*guard)
			for i := range buf {
				buf[i] = sentinel
			}
			dst := buf[off+guard : off+guard+n]
			Float16ToFloat32(dst, src)
			for i := range buf {
				if (i < off+guard || i >= off+guard+n) && math.Float32bits(buf[i]) != math.Float32bits(sentinel) {
					t.Fatalf("n=%d off=%d: element %d outside dst written", n, off, i)
				}
			}
			for i, h := range src {
				want := halfToFloat32(h)
				if h != orig[i] {
					t.Fatalf("n=%d off=%d: src[%d] changed", n, off, i)
				}
				if math.IsNaN(float64(want)) && math.IsNaN(float64(dst[i])) {
					continue
				}
				if math.Float32bits(dst[i]) != math.Float32bits(want) {
					t.Fatalf("n=%d off=%d: %#04x gives %v, want %v", n, off, h, dst[i], want)
				}
			}
		}
	}
}

func BenchmarkFloat16ToFloat32Table(b *testing.B) {
	src := make([]uint16, 4096)
	for i := range src {
		src[i] = uint16(i * 7)
	}
	dst := make([]float32, len(src))
	b.SetBytes(int64(len(dst) * 4))
	for b.Loop() {
		float16Table(dst, src)
	}
}
