package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/immkit/immkit/kernels"
	"github.com/immkit/immkit/kernels/cpu"
)

// attentionRef is an independent float64 loop of multi-head self-attention before the
// output projection: O[b,i,h*hd+e] = sum_j softmax_j(q_i.k_j/sqrt(hd)) v[j,e].
func attentionRef(qkv []float64, batch, l, dim, heads int) []float64 {
	hd := dim / heads
	o := make([]float64, batch*l*dim)
	for b := 0; b < batch; b++ {
		for h := 0; h < heads; h++ {
			for i := 0; i < l; i++ {
				s := make([]float64, l)
				mx := math.Inf(-1)
				for j := 0; j < l; j++ {
					for e := 0; e < hd; e++ {
						s[j] += qkv[(b*l+i)*3*dim+h*hd+e] * qkv[(b*l+j)*3*dim+dim+h*hd+e]
					}
					s[j] /= math.Sqrt(float64(hd))
					mx = math.Max(mx, s[j])
				}
				var z float64
				for j := range s {
					s[j] = math.Exp(s[j] - mx)
					z += s[j]
				}
				for j := 0; j < l; j++ {
					for e := 0; e < hd; e++ {
						o[(b*l+i)*dim+h*hd+e] += s[j] / z * qkv[(b*l+j)*3*dim+2*dim+h*hd+e]
					}
				}
			}
		}
	}
	return o
}

func TestAttentionAgainstLoop(t *testing.T) {
	d := cpu.New[float64](2)
	rng := rand.New(rand.NewPCG(11, 1))
	reg := NewRegistry[float64](d)
	batch, l, dim, heads := 3, 5, 12, 3
	a := NewAttention(reg, "attn", dim, heads, rng)
	x := randBuf(d, rng, batch*l*dim, 1)
	y := copyOut(a.Forward(x, batch, l))
	o := attentionRef(data(a.qkv), batch, l, dim, heads)
	// out = o Wp^T + bp
	w, bias := data(a.Proj.W.W), data(a.Proj.B.W)
	for r := 0; r < batch*l; r++ {
		for j := 0; j < dim; j++ {
			want := bias[j]
			for k := 0; k < dim; k++ {
				want += o[r*dim+k] * w[j*dim+k]
			}
			if math.Abs(want-y[r*dim+j]) > 1e-12 {
				t.Fatalf("attention out[%d,%d] = %v, loop gives %v", r, j, y[r*dim+j], want)
			}
		}
	}
}

func TestAttentionGrad(t *testing.T) {
	d := cpu.New[float64](2)
	rng := rand.New(rand.NewPCG(12, 1))
	reg := NewRegistry[float64](d)
	batch, l, dim, heads := 2, 4, 8, 2
	a := NewAttention(reg, "attn", dim, heads, rng)
	// Larger weights make the softmax far from uniform, so its gradient matters.
	for _, v := range []([]float64){data(a.QKV.W.W)} {
		for i := range v {
			v[i] *= 4
		}
	}
	x, dy := randBuf(d, rng, batch*l*dim, 1), randBuf(d, rng, batch*l*dim, 1)
	fwd := func() []float64 { return copyOut(a.Forward(x, batch, l)) }
	fwd()
	reg.ZeroGrad()
	dx := copyOut(a.Backward(dy))
	gradCheck(t, "Attention", fwd, data(dy), append(paramTargets(reg), target{"x", data(x), dx}))
}

func TestPatchify(t *testing.T) {
	d := cpu.New[float64](1)
	if _, err := NewPatchify(d, 3, 6, 5, 2); err == nil {
		t.Fatal("width 5 cut into 2x2 patches accepted")
	}
	C, H, W, P, batch := 2, 4, 6, 2, 2
	pt, err := NewPatchify(d, C, H, W, P)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(13, 1))
	x := randBuf(d, rng, batch*C*H*W, 1)
	tok := copyOut(pt.Patch(x, batch))
	L, F := pt.Tokens(), pt.Features()
	xs := data(x)
	// Independent definition: PyTorch's view(B,C,gh,P,gw,P).permute(0,2,4,1,3,5).
	for b := 0; b < batch; b++ {
		for gy := 0; gy < H/P; gy++ {
			for gx := 0; gx < W/P; gx++ {
				for c := 0; c < C; c++ {
					for py := 0; py < P; py++ {
						for px := 0; px < P; px++ {
							got := tok[(b*L+gy*(W/P)+gx)*F+c*P*P+py*P+px]
							want := xs[b*C*H*W+c*H*W+(gy*P+py)*W+gx*P+px]
							if got != want {
								t.Fatalf("token (%d,%d,%d) feature (%d,%d,%d) = %v, want %v", b, gy, gx, c, py, px, got, want)
							}
						}
					}
				}
			}
		}
	}
	tb := d.Alloc(len(tok))
	d.Write(tb, tok)
	back := data(pt.Unpatch(tb, batch))
	for i := range xs {
		if back[i] != xs[i] {
			t.Fatalf("Unpatch(Patch(x))[%d] = %v, want %v", i, back[i], xs[i])
		}
	}
	// Unpatch is the gradient of Patch: <dy, Patch(x)> = <Unpatch(dy), x>.
	dy := randBuf(d, rng, len(tok), 1)
	gradCheck(t, "Patch", func() []float64 { return copyOut(pt.Patch(x, batch)) }, data(dy),
		[]target{{"x", xs, copyOut(pt.Unpatch(dy, batch))}})
}

func TestDiTBlockGrad(t *testing.T) {
	d := cpu.New[float64](2)
	rng := rand.New(rand.NewPCG(14, 1))
	reg := NewRegistry[float64](d)
	batch, l, dim := 2, 3, 8
	blk := NewDiTBlock(reg, "block", dim, 2, 16, rng)
	h, sc, dy := randBuf(d, rng, batch*l*dim, 1), randBuf(d, rng, batch*dim, 1), randBuf(d, rng, batch*l*dim, 1)
	fwd := func() []float64 { return copyOut(blk.Forward(h, sc, batch, l)) }
	fwd()
	reg.ZeroGrad()
	dh, dsc := blk.Backward(dy)
	gradCheck(t, "DiTBlock", fwd, data(dy), append(paramTargets(reg),
		target{"h", data(h), copyOut(dh)}, target{"sc", data(sc), copyOut(dsc)}))
}

func TestDiTGrad(t *testing.T) {
	d := cpu.New[float64](2)
	rng := rand.New(rand.NewPCG(15, 1))
	cfg := DiTConfig{Channels: 2, Height: 4, WidthPx: 4, Patch: 2, Width: 8, Depth: 2, Heads: 2,
		MLPRatio: 2, Freq: 4, Classes: 3, RandomInit: true}
	m, err := NewDiT(d, cfg, rng)
	if err != nil {
		t.Fatal(err)
	}
	checkNetworkGrad(t, "DiT", d, rng, m, m.Reg, cfg.Dim(), []int32{0, 3, 2})
}

// network is what the DiT and the multimodal model share for the gradient check.
type network interface {
	Forward(x, ns, nt kernels.Buffer, labels []int32, rows int) (kernels.Buffer, error)
	BackwardInput(dy kernels.Buffer) kernels.Buffer
}

// checkNetworkGrad checks every parameter gradient and the input gradient of m (len(labels)
// rows of dim D, fixed times) against central finite differences.
func checkNetworkGrad(t *testing.T, name string, d kernels.Device[float64], rng *rand.Rand, m network, reg *Registry[float64], D int, labels []int32) {
	t.Helper()
	rows := len(labels)
	x, dy := randBuf(d, rng, rows*D, 1), randBuf(d, rng, rows*D, 1)
	ns, nt := d.Alloc(rows), d.Alloc(rows)
	d.Write(ns, []float64{1, 300, 0})
	d.Write(nt, []float64{5, 900, 994})
	fwd := func() []float64 {
		y, err := m.Forward(x, ns, nt, labels, rows)
		if err != nil {
			t.Fatal(err)
		}
		return copyOut(y)
	}
	fwd()
	reg.ZeroGrad()
	dx := copyOut(m.BackwardInput(dy))
	gradCheck(t, name, fwd, data(dy), append(paramTargets(reg), target{"x", data(x), dx}))
}

func TestDiTConfig(t *testing.T) {
	d := cpu.New[float64](1)
	if _, err := NewDiTConfig("XL/9", 4, 32, 32, 0); err == nil {
		t.Fatal("unknown size accepted")
	}
	if _, err := NewDiTConfig("S/2", 4, 31, 32, 0); err == nil {
		t.Fatal("odd height for patch 2 accepted")
	}
	cfg, err := NewDiTConfig("tiny/2", 1, 8, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewDiT(d, cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	// adaLN-Zero: the output layer starts at zero, so G = 0 at initialisation.
	x := randBuf(d, rand.New(rand.NewPCG(3, 3)), 2*cfg.Dim(), 1)
	ns, nt := d.Alloc(2), d.Alloc(2)
	y, err := m.Forward(x, ns, nt, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	if s := d.SumSquares(y); s != 0 {
		t.Fatalf("adaLN-Zero DiT output has sum of squares %v at init, want 0", s)
	}
	if _, err := m.Forward(x, ns, nt, []int32{0, 0}, 2); err == nil {
		t.Fatal("labels accepted by an unconditional DiT")
	}
	// DiT-S/2 on 32x32x4 latents: parameter count against the closed form.
	s2, _ := NewDiTConfig("S/2", 4, 32, 32, 0)
	W, F, L, Fr := 384, 16, 256, 256
	block := W*3*W + 3*W + W*W + W + W*4*W + 4*W + 4*W*W + W + W*6*W + 6*W
	want := F*W + W + L*W + (2*Fr*W + W + W*W + W) + 12*block + (W*2*W + 2*W) + (W*F + F)
	ms2, err := NewDiT(cpu.New[float32](1), s2, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	if got := ms2.Reg.Count(); got != want {
		t.Fatalf("DiT-S/2 has %d parameters, closed form gives %d", got, want)
	}
	t.Logf("DiT-S/2 32x32x4: %d parameters", want)
}
