package cpu

import (
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkGemm races Device.Gemm (gonum, row-split over workers) against the naive
// triple loop on the shapes of the toy MLP (batch x width x width), in float32.
func BenchmarkGemm(b *testing.B) {
	for _, sh := range [][3]int{{512, 128, 128}, {1024, 256, 256}} {
		m, n, k := sh[0], sh[1], sh[2]
		d := New[float32](runtime.GOMAXPROCS(0))
		a, bb, c := d.Alloc(m*k), d.Alloc(k*n), d.Alloc(m*n)
		d.RandNormal(a, 1, 0, 1)
		d.RandNormal(bb, 2, 0, 1)
		flops := float64(2 * m * n * k)
		b.Run(fmt.Sprintf("device/%dx%dx%d", m, n, k), func(b *testing.B) {
			for range b.N {
				d.Gemm(false, true, m, n, k, 1, a, k, bb, k, 0, c, n)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("naive/%dx%dx%d", m, n, k), func(b *testing.B) {
			as, bs, cs := Data[float32](a), Data[float32](bb), Data[float32](c)
			for range b.N {
				for i := 0; i < m; i++ {
					for j := 0; j < n; j++ {
						var s float32
						for l := 0; l < k; l++ {
							s += as[i*k+l] * bs[j*k+l]
						}
						cs[i*n+j] = s
					}
				}
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
