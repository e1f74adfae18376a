package audio

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/cmplx"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/immkit/immkit/internal/testenv"
	"gonum.org/v1/gonum/dsp/fourier"
)

// readNPY reads a little-endian float64 or float32 C-order .npy file (test peer output).
func readNPY(t testing.TB, path string) ([]float64, []int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		t.Fatalf("%s: not npy", path)
	}
	var hl, off int
	if b[6] == 1 {
		hl, off = int(binary.LittleEndian.Uint16(b[8:])), 10
	} else {
		hl, off = int(binary.LittleEndian.Uint32(b[8:])), 12
	}
	h := string(b[off : off+hl])
	body := b[off+hl:]
	if strings.Contains(h, "'fortran_order': True") {
		t.Fatalf("%s: fortran order", path)
	}
	m := regexp.MustCompile(`'shape': \(([^)]*)\)`).FindStringSubmatch(h)
	var shape []int
	for _, s := range strings.Split(m[1], ",") {
		if s = strings.TrimSpace(s); s != "" {
			v, _ := strconv.Atoi(s)
			shape = append(shape, v)
		}
	}
	var out []float64
	switch {
	case strings.Contains(h, "'<f8'"):
		out = make([]float64, len(body)/8)
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(body[8*i:]))
		}
	case strings.Contains(h, "'<f4'"):
		out = make([]float64, len(body)/4)
		for i := range out {
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:])))
		}
	default:
		t.Fatalf("%s: dtype in %s", path, h)
	}
	return out, shape
}

func writeF32(t testing.TB, path string, x []float32) {
	t.Helper()
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// python returns /usr/bin/python3 when it can import numpy, or ends the test.
func python(t testing.TB) string {
	t.Helper()
	py := testenv.LookPath(t, "/usr/bin/python3", "scripts/deps.d/audio.sh")
	if err := exec.Command(py, "-c", "import numpy").Run(); err != nil {
		testenv.Missing(t, "python3-numpy", "scripts/deps.d/audio.sh")
	}
	return py
}

// tool returns the path of a command-line tool installed by scripts/deps.d/audio.sh.
func tool(t testing.TB, name string) string {
	t.Helper()
	return testenv.LookPath(t, name, "scripts/deps.d/audio.sh")
}

func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func sine(n, rate int, freq, amp, phase float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)+phase))
	}
	return x
}

// dominantFreq returns the frequency of the largest bin of the Hann-windowed spectrum of
// (the middle 2^14 samples of) x, computed with gonum's FFT and refined by parabolic
// interpolation: an independent check of pitch.
func dominantFreq(x []float32, rate int) float64 {
	n := len(x)
	if n > 1<<14 {
		x = x[(n-(1<<14))/2:]
		x = x[:1<<14]
		n = len(x)
	}
	seq := make([]float64, n)
	for j, v := range x {
		seq[j] = float64(v) * (0.5 - 0.5*math.Cos(2*math.Pi*float64(j)/float64(n)))
	}
	coeff := fourier.NewFFT(n).Coefficients(nil, seq)
	mags := make([]float64, len(coeff))
	for k, c := range coeff {
		mags[k] = cmplx.Abs(c)
	}
	best := 1
	for k := 1; k < len(mags)-1; k++ {
		if mags[k] > mags[best] {
			best = k
		}
	}
	a, b, c := mags[best-1], mags[best], mags[best+1]
	d := 0.5 * (a - c) / (a - 2*b + c)
	return (float64(best) + d) * float64(rate) / float64(n)
}

func snrDB(ref, got []float64) float64 {
	var s, e float64
	for i := range ref {
		s += ref[i] * ref[i]
		d := got[i] - ref[i]
		e += d * d
	}
	return 10 * math.Log10(s/e)
}

func fmtArgs(c MelConfig) []string {
	b2i := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	return []string{
		"--sr", strconv.Itoa(c.SampleRate), "--n-fft", strconv.Itoa(c.NFFT),
		"--win-length", strconv.Itoa(c.WinLength), "--hop", strconv.Itoa(c.Hop),
		"--n-mels", strconv.Itoa(c.NMels), "--fmin", fmt.Sprint(c.FMin), "--fmax", fmt.Sprint(c.FMax),
		"--scale", string(c.Scale), "--norm", string(c.Norm), "--center", b2i(c.Center),
		"--pad-mode", padMode(c), "--power", fmt.Sprint(c.Power), "--log", string(c.Log),
		"--amin", fmt.Sprint(c.amin()), "--top-db", fmt.Sprint(c.TopDB), "--drop-last", b2i(c.DropLast),
	}
}

func padMode(c MelConfig) string {
	if c.PadMode == "" {
		return "reflect"
	}
	return string(c.PadMode)
}

func strconvFormat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func writeBytes(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readBytes(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
