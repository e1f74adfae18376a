package mnist

import (
	"image"
	"math"
	"math/rand/v2"
	"testing"

	xdraw "golang.org/x/image/draw"
)

// benchNet is the default classifier shape with random weights and a random batch.
func benchNet(batch int) (*mlp[float32], *acts[float32], []uint8) {
	rng := rand.New(rand.NewPCG(1, 1))
	net := newMLP[float32]([]int{Size * Size, 512, Classes})
	for l := range net.layers() {
		for i := range net.w[l] {
			net.w[l][i] = float32(rng.NormFloat64() * 0.05)
		}
	}
	ac := net.newActs(batch)
	for i := range ac.a[0] {
		ac.a[0][i] = rng.Float32()
	}
	labels := make([]uint8, batch)
	for i := range labels {
		labels[i] = uint8(rng.IntN(Classes))
	}
	return net, ac, labels
}

// BenchmarkTrainStep times the forward and backward pass of the default 784-512-10 network
// on a batch of 128 (the work of one training step, without the Adam update).
func BenchmarkTrainStep(b *testing.B) {
	net, ac, labels := benchNet(128)
	grads := newMLP[float32](net.sizes)
	dz := net.newActs(128).a
	b.ResetTimer()
	for range b.N {
		net.lossGrad(ac, labels, grads.w, grads.b, dz)
	}
	b.ReportMetric(float64(b.N*128)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkTrainStepNaive is the same step as plain single-goroutine loops, the baseline
// BenchmarkTrainStep races.
func BenchmarkTrainStepNaive(b *testing.B) {
	net, ac, labels := benchNet(128)
	grads := newMLP[float32](net.sizes)
	b.ResetTimer()
	for range b.N {
		naiveStep(net, ac, labels, grads)
	}
	b.ReportMetric(float64(b.N*128)/b.Elapsed().Seconds(), "images/s")
}

// naiveStep is lossGrad for one hidden layer written as direct loops.
func naiveStep(net *mlp[float32], ac *acts[float32], labels []uint8, g *mlp[float32]) float64 {
	in, hid, out := net.sizes[0], net.sizes[1], net.sizes[2]
	n := ac.n
	x, h, z := ac.a[0], ac.a[1], ac.a[2]
	for r := range n {
		for o := range hid {
			s := net.b[0][o]
			for i := range in {
				s += x[r*in+i] * net.w[0][o*in+i]
			}
			h[r*hid+o] = max(s, 0)
		}
		for o := range out {
			s := net.b[1][o]
			for i := range hid {
				s += h[r*hid+i] * net.w[1][o*hid+i]
			}
			z[r*out+o] = s
		}
	}
	for l := range 2 {
		clear(g.w[l])
		clear(g.b[l])
	}
	var loss float64
	dz := make([]float32, out)
	dh := make([]float32, hid)
	for r := range n {
		row := z[r*out : (r+1)*out]
		mx := row[0]
		for _, v := range row {
			mx = max(mx, v)
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v - mx))
		}
		loss += float64(mx) + math.Log(sum) - float64(row[labels[r]])
		for j, v := range row {
			dz[j] = float32(math.Exp(float64(v-mx))/sum) / float32(n)
		}
		dz[labels[r]] -= 1 / float32(n)
		clear(dh)
		for o := range out {
			g.b[1][o] += dz[o]
			for i := range hid {
				g.w[1][o*hid+i] += dz[o] * h[r*hid+i]
				dh[i] += dz[o] * net.w[1][o*hid+i]
			}
		}
		for o := range hid {
			if h[r*hid+o] <= 0 {
				continue
			}
			g.b[0][o] += dh[o]
			for i := range in {
				g.w[0][o*in+i] += dh[o] * x[r*in+i]
			}
		}
	}
	return loss / float64(n)
}

// TestNaiveStepAgrees keeps the benchmark's baseline honest: it computes the same loss and
// gradients as lossGrad.
func TestNaiveStepAgrees(t *testing.T) {
	net, ac, labels := benchNet(16)
	g1, g2 := newMLP[float32](net.sizes), newMLP[float32](net.sizes)
	l1 := net.lossGrad(ac, labels, g1.w, g1.b, net.newActs(16).a)
	l2 := naiveStep(net, ac, labels, g2)
	if math.Abs(l1-l2) > 1e-5 {
		t.Fatalf("loss %v, naive %v", l1, l2)
	}
	for l := range net.layers() {
		for i := range g1.w[l] {
			if d := math.Abs(float64(g1.w[l][i] - g2.w[l][i])); d > 1e-5 {
				t.Fatalf("w%d[%d]: %v, naive %v", l, i, g1.w[l][i], g2.w[l][i])
			}
		}
		for i := range g1.b[l] {
			if d := math.Abs(float64(g1.b[l][i] - g2.b[l][i])); d > 1e-5 {
				t.Fatalf("b%d[%d]: %v, naive %v", l, i, g1.b[l][i], g2.b[l][i])
			}
		}
	}
}

// BenchmarkPredict32RGB classifies one 32x32 RGB picture (a decoded generator sample),
// including the conversion to 28x28 grey.
func BenchmarkPredict32RGB(b *testing.B) {
	net, _, _ := benchNet(1)
	c := &Classifier{Sizes: net.sizes, Weights: net.w, Biases: net.b}
	src := image.NewGray(image.Rect(0, 0, Size, Size))
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 7)
	}
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	xdraw.CatmullRom.Scale(img, img.Rect, src, src.Rect, xdraw.Src, nil)
	b.ResetTimer()
	for range b.N {
		c.Predict(img)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}
