package audio

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// clusteredMel returns a mel whose frames are noisy copies of nc random centre vectors.
func clusteredMel(r *rand.Rand, nMels, frames int, centres [][]float64, noise float64) *Mel {
	m := &Mel{Data: make([]float32, nMels*frames), NMels: nMels, Frames: frames}
	for f := 0; f < frames; f++ {
		c := centres[r.IntN(len(centres))]
		for ch := 0; ch < nMels; ch++ {
			m.Data[ch*frames+f] = float32(c[ch] + noise*r.NormFloat64())
		}
	}
	return m
}

func TestCodebookRecoversClusters(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	const nMels = 8
	centres := make([][]float64, 5)
	for i := range centres {
		centres[i] = make([]float64, nMels)
		for d := range centres[i] {
			centres[i][d] = 4 * r.NormFloat64()
		}
	}
	mel := clusteredMel(r, nMels, 3000, centres, 0.05)
	cb, err := FitCodebook([]*Mel{mel}, VQOptions{K: 5, Iters: 30, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	cents := cb.float64Centroids()[0]
	for i, c := range centres {
		best := math.Inf(1)
		for _, k := range cents {
			best = math.Min(best, math.Sqrt(sqDist(c, k)))
		}
		if best > 0.05 {
			t.Errorf("centre %d: nearest code at distance %g", i, best)
		}
	}
	// Encode is the nearest code by a brute-force float64 search.
	tok, err := cb.Encode(mel)
	if err != nil {
		t.Fatal(err)
	}
	for f := 0; f < mel.Frames; f++ {
		best, bd := -1, math.Inf(1)
		for k := 0; k < cb.K; k++ {
			var d float64
			for ch := 0; ch < nMels; ch++ {
				x := float64(mel.Data[ch*mel.Frames+f]) - float64(cb.Centroids[0][k*nMels+ch])
				d += x * x
			}
			if d < bd {
				best, bd = k, d
			}
		}
		if int(tok[f]) != best {
			t.Fatalf("frame %d: token %d, nearest %d", f, tok[f], best)
		}
	}
}

// TestCodebookResidualStacked checks that residual stages lower the reconstruction error
// and that stacking and decoding keep the frame layout.
func TestCodebookResidualStacked(t *testing.T) {
	c, _ := Preset("whisper-80")
	var mels []*Mel
	for _, f := range []float64{220, 330, 440, 880, 1760} {
		x := benchSignal(16000)
		for i, v := range sine(len(x), 16000, f, 0.3, 0) {
			x[i] += v
		}
		m, err := MelSpectrogram(x, c)
		if err != nil {
			t.Fatal(err)
		}
		mels = append(mels, m)
	}
	errFor := func(stages int) float64 {
		cb, err := FitCodebook(mels, VQOptions{K: 16, Stack: 2, Stages: stages, Iters: 10, Seed: 2})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := cb.Encode(mels[0])
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != (mels[0].Frames+1)/2*stages {
			t.Fatalf("%d tokens", len(tok))
		}
		dec, err := cb.Decode(tok, c)
		if err != nil {
			t.Fatal(err)
		}
		var e float64
		for ch := 0; ch < 80; ch++ {
			for f := 0; f < mels[0].Frames; f++ {
				d := float64(dec.Data[ch*dec.Frames+f] - mels[0].Data[ch*mels[0].Frames+f])
				e += d * d
			}
		}
		return e
	}
	e1, e3 := errFor(1), errFor(3)
	t.Logf("squared error: 1 stage %.4g, 3 stages %.4g", e1, e3)
	if !(e3 < e1) {
		t.Errorf("3 residual stages (%g) not better than 1 (%g)", e3, e1)
	}
}

// TestCodebookSafetensors saves, reloads and hashes a codebook, and has numpy parse the
// file as safetensors independently.
func TestCodebookSafetensors(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	cb := &Codebook{NMels: 3, Stack: 2, K: 4, Stages: 2}
	for s := 0; s < 2; s++ {
		c := make([]float32, 4*6)
		for i := range c {
			c[i] = float32(r.NormFloat64())
		}
		cb.Centroids = append(cb.Centroids, c)
	}
	var buf bytes.Buffer
	sum, err := cb.Save(&buf)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(buf.Bytes())
	if sum != hex.EncodeToString(h[:]) {
		t.Errorf("Save returned %s, file hash %x", sum, h)
	}
	got, err := LoadCodebook(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for s := range cb.Centroids {
		for i, v := range cb.Centroids[s] {
			if got.Centroids[s][i] != v {
				t.Fatalf("stage %d value %d: %v want %v", s, i, got.Centroids[s][i], v)
			}
		}
	}
	for n := 0; n < buf.Len(); n += 3 {
		LoadCodebook(buf.Bytes()[:n]) // must not panic
	}
	if _, err := LoadCodebook([]byte("\xff\xff\xff\xff\xff\xff\xff\x7f{}")); err == nil {
		t.Error("bad header length accepted")
	}

	py := python(t)
	path := filepath.Join(t.TempDir(), "cb.safetensors")
	os.WriteFile(path, buf.Bytes(), 0o644)
	out := run(t, py, "-c", `
import json, struct, sys, numpy as np
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8+n])
e = h["codebook.1"]
a = np.frombuffer(b[8+n+e["data_offsets"][0]:8+n+e["data_offsets"][1]], dtype="<f4").reshape(e["shape"])
print(h["__metadata__"]["format"], e["dtype"], a.shape, repr(float(a[3, 5])))
`, path)
	want := "immkit-audio-vq F32 (4, 6) " + strings.TrimSpace(formatPy(cb.Centroids[1][3*6+5]))
	if strings.TrimSpace(string(out)) != want {
		t.Errorf("numpy read %q, want %q", out, want)
	}
}

// formatPy prints a float32 widened to float64 as Python's repr does.
func formatPy(v float32) string {
	return strconvFormat(float64(v))
}
