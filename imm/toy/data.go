// Package toy trains IMM and the flow-matching baseline on two-dimensional toy
// distributions on the CPU and measures how close their few-step samples come to held-out
// data (energy distance). It backs `immtrain toy`.
package toy

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
)

// raw draws n points of a distribution before scaling, row-major [n, 2].
type raw func(rng *rand.Rand, n int) []float64

var datasets = map[string]raw{
	// Eight Gaussians on a circle of radius 4 (std 0.5 around each centre), as in FFJORD.
	"8gaussians": func(rng *rand.Rand, n int) []float64 {
		x := make([]float64, 2*n)
		for i := 0; i < n; i++ {
			a := float64(rng.IntN(8)) * math.Pi / 4
			x[2*i] = 4*math.Cos(a) + 0.5*rng.NormFloat64()
			x[2*i+1] = 4*math.Sin(a) + 0.5*rng.NormFloat64()
		}
		return x
	},
	// An 4x4 checkerboard of uniform squares, as in FFJORD.
	"checkerboard": func(rng *rand.Rand, n int) []float64 {
		x := make([]float64, 2*n)
		for i := 0; i < n; i++ {
			x1 := rng.Float64()*4 - 2
			x2 := rng.Float64() - float64(rng.IntN(2))*2
			x2 += math.Mod(math.Floor(x1)+4, 2)
			x[2*i], x[2*i+1] = 2*x1, 2*x2
		}
		return x
	},
	// Two interleaved half circles with Gaussian noise 0.05 (scikit-learn make_moons).
	"moons": func(rng *rand.Rand, n int) []float64 {
		x := make([]float64, 2*n)
		for i := 0; i < n; i++ {
			a := math.Pi * rng.Float64()
			if rng.IntN(2) == 0 {
				x[2*i], x[2*i+1] = math.Cos(a), math.Sin(a)
			} else {
				x[2*i], x[2*i+1] = 1-math.Cos(a), 0.5-math.Sin(a)
			}
			x[2*i] += 0.05 * rng.NormFloat64()
			x[2*i+1] += 0.05 * rng.NormFloat64()
		}
		return x
	},
	// The (x, z) plane of scikit-learn's make_swiss_roll with noise 0.5.
	"swissroll": func(rng *rand.Rand, n int) []float64 {
		x := make([]float64, 2*n)
		for i := 0; i < n; i++ {
			u := 1.5 * math.Pi * (1 + 2*rng.Float64())
			x[2*i] = u*math.Cos(u) + 0.5*rng.NormFloat64()
			x[2*i+1] = u*math.Sin(u) + 0.5*rng.NormFloat64()
		}
		return x
	},
	// Sixteen Gaussians (std 0.1) on the 4x4 grid {-1.5,-0.5,0.5,1.5}^2.
	"gmm16": func(rng *rand.Rand, n int) []float64 {
		x := make([]float64, 2*n)
		for i := 0; i < n; i++ {
			k := rng.IntN(16)
			x[2*i] = float64(k%4) - 1.5 + 0.1*rng.NormFloat64()
			x[2*i+1] = float64(k/4) - 1.5 + 0.1*rng.NormFloat64()
		}
		return x
	},
}

// Names lists the datasets.
func Names() []string {
	var s []string
	for k := range datasets {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// Dataset is a toy distribution scaled so that the standard deviation over all
// coordinates is sigmaD (mean removed), as IMM's preconditioning assumes.
type Dataset struct {
	Name        string
	raw         raw
	mean, scale [2]float64
}

var scaleCache sync.Map

// NewDataset returns the named dataset scaled to std sigmaD, the scale estimated once
// from 200000 points of a fixed seed.
func NewDataset(name string, sigmaD float64) (*Dataset, error) {
	r, ok := datasets[name]
	if !ok {
		return nil, fmt.Errorf("toy: unknown dataset %q (want one of %v)", name, Names())
	}
	type stats struct {
		mean [2]float64
		std  float64
	}
	v, ok := scaleCache.Load(name)
	if !ok {
		x := r(rand.New(rand.NewPCG(12345, 678)), 200000)
		var st stats
		n := float64(len(x) / 2)
		for i := 0; i < len(x); i += 2 {
			st.mean[0] += x[i] / n
			st.mean[1] += x[i+1] / n
		}
		var v2 float64
		for i := 0; i < len(x); i += 2 {
			a, b := x[i]-st.mean[0], x[i+1]-st.mean[1]
			v2 += (a*a + b*b) / (2 * n)
		}
		st.std = math.Sqrt(v2)
		v, _ = scaleCache.LoadOrStore(name, st)
	}
	st := v.(stats)
	return &Dataset{Name: name, raw: r, mean: st.mean, scale: [2]float64{sigmaD / st.std, sigmaD / st.std}}, nil
}

// Sample draws n scaled points, row-major [n, 2].
func (d *Dataset) Sample(rng *rand.Rand, n int) []float64 {
	x := d.raw(rng, n)
	for i := range x {
		x[i] = (x[i] - d.mean[i%2]) * d.scale[i%2]
	}
	return x
}

// EnergyDistance is E||X-Y|| - 1/2 E||X-X'|| - 1/2 E||Y-Y'|| between the point sets x and y
// (row-major, dim columns), the within-set means taken over distinct pairs (U-statistics),
// computed in float64 with the work split over workers goroutines.
func EnergyDistance(x, y []float64, dim, workers int) float64 {
	nx, ny := len(x)/dim, len(y)/dim
	mean := func(a, b []float64, na, nb int, same bool) float64 {
		parts := make([]float64, max(workers, 1))
		var wg sync.WaitGroup
		for w := range parts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var s float64
				for i := w; i < na; i += len(parts) {
					ai := a[i*dim : i*dim+dim]
					for j := 0; j < nb; j++ {
						if same && i == j {
							continue
						}
						var d2 float64
						for k, v := range ai {
							u := v - b[j*dim+k]
							d2 += u * u
						}
						s += math.Sqrt(d2)
					}
				}
				parts[w] = s
			}()
		}
		wg.Wait()
		var s float64
		for _, p := range parts {
			s += p
		}
		if same {
			return s / float64(na*(na-1))
		}
		return s / float64(na*nb)
	}
	return mean(x, y, nx, ny, false) - 0.5*mean(x, x, nx, nx, true) - 0.5*mean(y, y, ny, ny, true)
}
