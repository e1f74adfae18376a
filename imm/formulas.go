package imm

import (
	"encoding/json"
	"fmt"
	"math"
)

// Config is the IMM objective and its sampler defaults. The zero value is not valid; start
// from DefaultConfig.
type Config struct {
	Schedule   string  `json:"schedule"`    // "ot-fm" (a_t = 1-t, s_t = t) or "cosine"
	Param      string  `json:"param"`       // "euler-fm", "simple-edm" or "identity"
	SecondTime string  `json:"second_time"` // what the first time input of G sees: "s" or "stride" (t-s)
	SigmaD     float64 `json:"sigma_d"`     // data standard deviation, 0.5
	T          float64 `json:"t_max"`       // largest time: 0.994 (ot-fm), 0.996 (cosine)
	Eps        float64 `json:"eps"`         // smallest time, 0 or 0.006
	K          int     `json:"k"`           // r(s,t) step: eta(t) - (eta_max-eta_min)/2^k
	EtaMax     float64 `json:"eta_max"`     // 160
	EtaMin     float64 `json:"eta_min"`     // 0
	WeightA    float64 `json:"weight_a"`    // a in w(s,t), 1 or 2
	WeightB    float64 `json:"weight_b"`    // b in w(s,t), 4
	M          int     `json:"m"`           // particles per group
	LabelDrop  float64 `json:"label_dropout"`
	// Kernel is the distance of the Laplace kernel: "particle" (or "", as in configs
	// written before it existed) is the Euclidean norm over the whole particle, as in the
	// paper; "modality" sums the norms of a multimodal particle's segments, so the kernel
	// is the product of one Laplace kernel per modality and every modality's gradient is
	// its own unit vector, whatever its share of the distance (docs/multimodal.md). For a
	// particle of one segment the two are the same.
	Kernel string `json:"kernel,omitempty"`
}

// DefaultConfig is OT-FM, Euler-FM, s conditioning, k = 12, a = 2, b = 4, M = 4.
func DefaultConfig() Config {
	return Config{Schedule: "ot-fm", Param: "euler-fm", SecondTime: "s", SigmaD: 0.5,
		T: 0.994, Eps: 0, K: 12, EtaMax: 160, EtaMin: 0, WeightA: 2, WeightB: 4, M: 4, LabelDrop: 0.1}
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.Schedule != "ot-fm" && c.Schedule != "cosine":
		return fmt.Errorf("imm: schedule must be ot-fm or cosine, got %q", c.Schedule)
	case c.Kernel != "" && c.Kernel != "particle" && c.Kernel != "modality":
		return fmt.Errorf("imm: kernel must be particle or modality, got %q", c.Kernel)
	case c.Param != "euler-fm" && c.Param != "simple-edm" && c.Param != "identity":
		return fmt.Errorf("imm: parameterisation must be euler-fm, simple-edm or identity, got %q", c.Param)
	case c.Param == "euler-fm" && c.Schedule != "ot-fm":
		return fmt.Errorf("imm: euler-fm needs the ot-fm schedule, got %q", c.Schedule)
	case c.SecondTime != "s" && c.SecondTime != "stride":
		return fmt.Errorf("imm: second time input must be s or stride, got %q", c.SecondTime)
	case !(c.SigmaD > 0):
		return fmt.Errorf("imm: sigma_d must be positive, got %v", c.SigmaD)
	case !(c.Eps >= 0 && c.Eps < c.T && c.T < 1):
		return fmt.Errorf("imm: need 0 <= eps < T < 1, got eps %v, T %v", c.Eps, c.T)
	case c.K < 0 || c.K > 60:
		return fmt.Errorf("imm: k must be in [0, 60], got %d", c.K)
	case !(c.EtaMax > c.EtaMin && c.EtaMin >= 0):
		return fmt.Errorf("imm: need 0 <= eta_min < eta_max, got %v, %v", c.EtaMin, c.EtaMax)
	case c.M < 1:
		return fmt.Errorf("imm: M must be >= 1, got %d", c.M)
	case c.LabelDrop < 0 || c.LabelDrop > 1:
		return fmt.Errorf("imm: label dropout must be in [0,1], got %v", c.LabelDrop)
	}
	return nil
}

// JSON returns c as JSON (for checkpoint metadata).
func (c Config) JSON() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// Alpha is a_t.
func (c Config) Alpha(t float64) float64 {
	if c.Schedule == "cosine" {
		return math.Cos(math.Pi * t / 2)
	}
	return 1 - t
}

// Sigma is s_t (the noise coefficient; the noise itself has std sigma_d).
func (c Config) Sigma(t float64) float64 {
	if c.Schedule == "cosine" {
		return math.Sin(math.Pi * t / 2)
	}
	return t
}

// Eta is eta(t) = s_t / a_t.
func (c Config) Eta(t float64) float64 { return c.Sigma(t) / c.Alpha(t) }

// EtaInv inverts Eta: n/(1+n) for OT-FM, 2 atan(n)/pi for cosine.
func (c Config) EtaInv(n float64) float64 {
	if c.Schedule == "cosine" {
		return 2 * math.Atan(n) / math.Pi
	}
	return n / (1 + n)
}

// DDIM returns the coefficients of DDIM(x_t, x, s, t) = p x + q x_t:
// p = a_s - (s_s/s_t) a_t, q = s_s/s_t.
func (c Config) DDIM(s, t float64) (p, q float64) {
	q = c.Sigma(s) / c.Sigma(t)
	return c.Alpha(s) - q*c.Alpha(t), q
}

// CIn is c_in(t) = 1/(sigma_d sqrt(a_t^2 + s_t^2)).
func (c Config) CIn(t float64) float64 {
	a, s := c.Alpha(t), c.Sigma(t)
	return 1 / (c.SigmaD * math.Sqrt(a*a+s*s))
}

// CNoise is c_noise(t) = 1000 t.
func CNoise(t float64) float64 { return 1000 * t }

// NoiseInputs returns the two time inputs of G: c_noise(s) (or c_noise(t-s) with stride
// conditioning) and c_noise(t).
func (c Config) NoiseInputs(s, t float64) (ns, nt float64) {
	if c.SecondTime == "stride" {
		return CNoise(t - s), CNoise(t)
	}
	return CNoise(s), CNoise(t)
}

// Skip returns c_skip(s,t) and c_out(s,t) of f_{s,t}(x_t) = c_skip x_t + c_out G:
//
//	euler-fm:   1, -(t-s) sigma_d
//	simple-edm: (a_s a_t + s_s s_t)/(a_t^2+s_t^2), -(a_s s_t - s_s a_t) sigma_d/sqrt(a_t^2+s_t^2)
//	identity:   DDIM(x_t, G, s, t): s_s/s_t, a_s - (s_s/s_t) a_t
func (c Config) Skip(s, t float64) (cskip, cout float64) {
	switch c.Param {
	case "euler-fm":
		return 1, -(t - s) * c.SigmaD
	case "simple-edm":
		as, ss, at, st := c.Alpha(s), c.Sigma(s), c.Alpha(t), c.Sigma(t)
		n2 := at*at + st*st
		return (as*at + ss*st) / n2, -(as*st - ss*at) * c.SigmaD / math.Sqrt(n2)
	default:
		p, q := c.DDIM(s, t)
		return q, p
	}
}

// minCOut keeps the kernel weight 1/|c_out| finite when s is (numerically) t.
const minCOut = 5e-5

// KernelWeight is w~(s,t) = 1/max(|c_out(s,t)|, 5e-5).
func (c Config) KernelWeight(s, t float64) float64 {
	_, co := c.Skip(s, t)
	return 1 / math.Max(math.Abs(co), minCOut)
}

// R is the mapping r(s,t) = max(s, eta^{-1}(max(eta(t) - (eta_max - eta_min)/2^k, eta_min))).
func (c Config) R(s, t float64) float64 {
	n := c.Eta(t) - (c.EtaMax-c.EtaMin)/math.Ldexp(1, c.K)
	n = math.Max(n, c.EtaMin)
	return math.Max(s, c.EtaInv(n))
}

// Lambda is the log signal-to-noise ratio log(a_t^2/s_t^2).
func (c Config) Lambda(t float64) float64 {
	a, s := c.Alpha(t), c.Sigma(t)
	return math.Log(a * a / (s * s))
}

// NegDLambda is -d lambda_t/dt: 2/(t(1-t)) for OT-FM, pi/(sin(pi t/2) cos(pi t/2)) for cosine.
func (c Config) NegDLambda(t float64) float64 {
	if c.Schedule == "cosine" {
		u := math.Pi * t / 2
		return math.Pi / (math.Sin(u) * math.Cos(u))
	}
	return 2 / (t * (1 - t))
}

// Weight is w(s,t) = 1/2 sigmoid(b - lambda_t) (-d lambda_t/dt) a_t^a / (a_t^2 + s_t^2),
// with t clamped to [1e-4, 1-1e-4] to stay finite at the ends.
func (c Config) Weight(s, t float64) float64 {
	t = math.Min(math.Max(t, 1e-4), 1-1e-4)
	a, sg := c.Alpha(t), c.Sigma(t)
	sig := 1 / (1 + math.Exp(-(c.WeightB - c.Lambda(t))))
	return 0.5 * sig * c.NegDLambda(t) * math.Pow(a, c.WeightA) / (a*a + sg*sg)
}

// Grid returns the uniform sampling grid t_0 = eps < t_1 < ... < t_n = T.
func (c Config) Grid(n int) []float64 {
	g := make([]float64, n+1)
	for i := range g {
		g[i] = c.Eps + (c.T-c.Eps)*float64(i)/float64(n)
	}
	return g
}
