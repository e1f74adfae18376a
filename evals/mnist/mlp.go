package mnist

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// float is the element type of the network: float32 to train and predict, float64 for the
// finite-difference gradient check.
type float interface{ float32 | float64 }

// mlp is a multilayer perceptron: sizes[0] inputs, ReLU hidden layers, sizes[len-1] logits.
// Layer l maps sizes[l] to sizes[l+1] values with w[l], a sizes[l+1] x sizes[l] row-major
// matrix (PyTorch's nn.Linear layout: w[l][o*sizes[l]+i] weighs input i of output o), and
// b[l], sizes[l+1] biases.
type mlp[T float] struct {
	sizes []int
	w, b  [][]T
}

func newMLP[T float](sizes []int) *mlp[T] {
	m := &mlp[T]{sizes: append([]int(nil), sizes...)}
	for l := 0; l+1 < len(sizes); l++ {
		m.w = append(m.w, make([]T, sizes[l+1]*sizes[l]))
		m.b = append(m.b, make([]T, sizes[l+1]))
	}
	return m
}

func (m *mlp[T]) layers() int { return len(m.w) }

// acts holds the activations of a batch of n inputs: a[0] is the input (n x sizes[0]),
// a[l+1] the output of layer l after its ReLU (the logits for the last layer), row-major.
type acts[T float] struct {
	n int
	a [][]T
}

func (m *mlp[T]) newActs(n int) *acts[T] {
	ac := &acts[T]{n: n}
	for _, s := range m.sizes {
		ac.a = append(ac.a, make([]T, n*s))
	}
	return ac
}

// forward computes ac.a[1:] from the input in ac.a[0]:
//
//	for l, r < n, o < sizes[l+1]:
//	  z = b[l][o] + sum_i a[l][r*sizes[l]+i] * w[l][o*sizes[l]+i]
//	  a[l+1][r*sizes[l+1]+o] = max(z, 0) (z for the last layer)
func (m *mlp[T]) forward(ac *acts[T]) {
	n := ac.n
	for l := range m.layers() {
		in, out := m.sizes[l], m.sizes[l+1]
		y := ac.a[l+1]
		for r := range n {
			copy(y[r*out:(r+1)*out], m.b[l])
		}
		gemm(false, true, n, out, in, ac.a[l], in, m.w[l], in, 1, y, out)
		if l+1 < m.layers() {
			for i, v := range y {
				if v < 0 {
					y[i] = 0
				}
			}
		}
	}
}

// lossGrad runs forward and returns the mean softmax cross-entropy of the logits against
// labels; when gw and gb are not nil it also writes the gradient of that mean with respect
// to w and b into them (overwriting), using dz as scratch (same shapes as ac.a).
func (m *mlp[T]) lossGrad(ac *acts[T], labels []uint8, gw, gb [][]T, dz [][]T) float64 {
	m.forward(ac)
	n := ac.n
	L := m.layers()
	k := m.sizes[L]
	logits := ac.a[L]
	var loss float64
	var d []T
	if gw != nil {
		d = dz[L]
	}
	for r := range n {
		row := logits[r*k : (r+1)*k]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v) - mx)
		}
		lse := mx + math.Log(sum)
		loss += lse - float64(row[labels[r]])
		if d != nil {
			for j, v := range row {
				p := math.Exp(float64(v) - lse)
				if j == int(labels[r]) {
					p--
				}
				d[r*k+j] = T(p / float64(n))
			}
		}
	}
	if gw == nil {
		return loss / float64(n)
	}
	for l := L - 1; l >= 0; l-- {
		in, out := m.sizes[l], m.sizes[l+1]
		d := dz[l+1]
		// gw[l] = d^T a[l]  (out x in), gb[l] = column sums of d
		gemm(true, false, out, in, n, d, out, ac.a[l], in, 0, gw[l], in)
		clear(gb[l])
		for r := range n {
			for o, v := range d[r*out : (r+1)*out] {
				gb[l][o] += v
			}
		}
		if l == 0 {
			break
		}
		// da = d w (n x in), then through the ReLU of layer l-1 (a[l] > 0).
		da := dz[l]
		gemm(false, false, n, in, out, d, out, m.w[l], in, 0, da, in)
		for i, v := range ac.a[l] {
			if v <= 0 {
				da[i] = 0
			}
		}
	}
	return loss / float64(n)
}

// gemm is the row-major product c = op(a) op(b) + beta c, with op(a) m x k and op(b) k x n,
// through gonum's BLAS (which splits large products over GOMAXPROCS goroutines).
func gemm[T float](transA, transB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	tr := func(t bool) blas.Transpose {
		if t {
			return blas.Trans
		}
		return blas.NoTrans
	}
	switch av := any(a).(type) {
	case []float32:
		gonum.Implementation{}.Sgemm(tr(transA), tr(transB), m, n, k, 1, av, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		gonum.Implementation{}.Dgemm(tr(transA), tr(transB), m, n, k, 1, av, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}
