package gen_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/immkit/immkit/testdata/gen"
)

// wavFile is a parsed 16-bit PCM WAV.
type wavFile struct {
	format, channels, bits int
	rate                   int
	declaredData           int // size field of the data chunk
	samples                []int16
}

// parseWAV walks the RIFF chunks independently of the generator. It reports a data chunk
// that declares more bytes than the file holds as an error, after filling what it read.
func parseWAV(b []byte) (wavFile, error) {
	var w wavFile
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return w, errors.New("not RIFF/WAVE")
	}
	if got := int(binary.LittleEndian.Uint32(b[4:])); got != len(b)-8 {
		return w, fmt.Errorf("RIFF size %d, file has %d bytes after the size field", got, len(b)-8)
	}
	sawFmt := false
	for off := 12; off+8 <= len(b); {
		id := string(b[off : off+4])
		n := int(binary.LittleEndian.Uint32(b[off+4:]))
		body := b[off+8:]
		switch id {
		case "fmt ":
			if n < 16 || len(body) < 16 {
				return w, errors.New("short fmt chunk")
			}
			w.format = int(binary.LittleEndian.Uint16(body[0:]))
			w.channels = int(binary.LittleEndian.Uint16(body[2:]))
			w.rate = int(binary.LittleEndian.Uint32(body[4:]))
			w.bits = int(binary.LittleEndian.Uint16(body[14:]))
			if br := int(binary.LittleEndian.Uint32(body[8:])); br != w.rate*w.channels*w.bits/8 {
				return w, fmt.Errorf("byte rate %d inconsistent", br)
			}
			sawFmt = true
		case "data":
			if !sawFmt {
				return w, errors.New("data before fmt")
			}
			w.declaredData = n
			have := min(n, len(body)) / 2 * 2
			for i := 0; i < have; i += 2 {
				w.samples = append(w.samples, int16(binary.LittleEndian.Uint16(body[i:])))
			}
			if n > len(body) {
				return w, fmt.Errorf("data chunk declares %d bytes, %d present", n, len(body))
			}
		}
		off += 8 + n + n%2
	}
	if w.samples == nil {
		return w, errors.New("no data chunk")
	}
	return w, nil
}

// goertzelPower is the power of x at frequency f (Hz), evaluated in float64.
func goertzelPower(x []float64, f float64, rate int) float64 {
	c := 2 * math.Cos(2*math.Pi*f/float64(rate))
	var s1, s2 float64
	for _, v := range x {
		s1, s2 = v+c*s1-s2, s1
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

// dominantFrequency returns the frequency of maximum Goertzel power in 150..1200 Hz: a
// scan in 1% steps, refined in 0.1% steps within 3% of the coarse peak.
func dominantFrequency(x []float64, rate int) float64 {
	scan := func(lo, hi, step float64) float64 {
		best, bestP := lo, -1.0
		for f := lo; f < hi; f *= step {
			if p := goertzelPower(x, f, rate); p > bestP {
				best, bestP = f, p
			}
		}
		return best
	}
	coarse := scan(150, 1200, 1.01)
	return scan(coarse/1.03, coarse*1.03, 1.001)
}

// countNotes counts rising edges of the 5 ms RMS envelope through half its maximum.
func countNotes(x []float64, rate int) int {
	frame := rate / 200
	var env []float64
	for i := 0; i+frame <= len(x); i += frame {
		s := 0.0
		for _, v := range x[i : i+frame] {
			s += v * v
		}
		env = append(env, math.Sqrt(s/float64(frame)))
	}
	th := slices.Max(env) / 2
	notes, on := 0, false
	for _, e := range env {
		if !on && e > th {
			notes++
		}
		on = e > th
	}
	return notes
}

// The documented sound rules, restated here: colour k of the palette order red, green, blue,
// yellow, magenta, cyan, white, orange sounds at A3 (220 Hz) raised by 3k semitones; the
// shapes circle, cross, triangle, square, star have 1..5 notes.
var (
	paletteOrder = []string{"red", "green", "blue", "yellow", "magenta", "cyan", "white", "orange"}
	notesOf      = map[string]int{"circle": 1, "cross": 2, "triangle": 3, "square": 4, "star": 5}
)

func TestAudio(t *testing.T) {
	for _, tc := range []struct {
		seconds float64
		rate    int
	}{{1, 16000}, {2, 22050}} {
		t.Run(fmt.Sprintf("%gs-%dHz", tc.seconds, tc.rate), func(t *testing.T) {
			dir := generate(t, gen.Options{Seed: 11, Samples: 30, AudioSeconds: tc.seconds, SampleRate: tc.rate})
			peaks := map[string][]float64{}
			seen := map[string]bool{}
			for _, m := range readManifest(t, dir) {
				b, err := os.ReadFile(filepath.Join(dir, m.Audio))
				if err != nil {
					t.Fatal(err)
				}
				w, err := parseWAV(b)
				if err != nil {
					t.Fatalf("%s: %v", m.Audio, err)
				}
				if w.format != 1 || w.channels != 1 || w.bits != 16 || w.rate != tc.rate {
					t.Fatalf("%s: format %d, %d channels, %d bits, %d Hz; want PCM mono 16-bit %d Hz", m.Audio, w.format, w.channels, w.bits, w.rate, tc.rate)
				}
				if want := int(math.Round(tc.seconds * float64(tc.rate))); len(w.samples) != want {
					t.Fatalf("%s: %d samples, want %d", m.Audio, len(w.samples), want)
				}
				x := make([]float64, len(w.samples))
				peak := 0.0
				for i, v := range w.samples {
					x[i] = float64(v) / 32768
					peak = max(peak, math.Abs(x[i]))
				}
				k := slices.Index(paletteOrder, m.Color)
				want := 220 * math.Pow(2, float64(3*k)/12)
				if got := dominantFrequency(x, tc.rate); math.Abs(got-want) > 0.02*want {
					t.Errorf("%s (%s): dominant frequency %.1f Hz, want %.1f Hz +-2%%", m.Audio, m.Color, got, want)
				}
				if got := countNotes(x, tc.rate); got != notesOf[m.Shape] {
					t.Errorf("%s (%s): %d notes, want %d", m.Audio, m.Shape, got, notesOf[m.Shape])
				}
				peaks[m.Size] = append(peaks[m.Size], peak)
				seen[m.Color] = true
			}
			if len(seen) < 6 {
				t.Errorf("only %d colours in 30 samples", len(seen))
			}
			if slices.Min(peaks["large"]) < 1.5*slices.Max(peaks["small"]) {
				t.Errorf("large peaks %v not clearly louder than small peaks %v", peaks["large"], peaks["small"])
			}
		})
	}
}

// TestExportedRules checks that the exported rule tables agree with the documented rules
// restated in this file and are well separated.
func TestExportedRules(t *testing.T) {
	if len(gen.Colors) != len(paletteOrder) {
		t.Fatalf("%d colours, want %d", len(gen.Colors), len(paletteOrder))
	}
	for k, c := range gen.Colors {
		want := 220 * math.Pow(2, float64(3*k)/12)
		if c.Name != paletteOrder[k] || math.Abs(c.PitchHz-want) > 0.01 {
			t.Errorf("colour %d = %s %.2f Hz, want %s %.2f Hz", k, c.Name, c.PitchHz, paletteOrder[k], want)
		}
		if got := colourName(c.RGB.R, c.RGB.G, c.RGB.B); got != c.Name {
			t.Errorf("colour %s with RGB %v reads as %q", c.Name, c.RGB, got)
		}
	}
	for _, s := range gen.Shapes {
		if s.Notes != notesOf[s.Name] {
			t.Errorf("shape %s has %d notes, want %d", s.Name, s.Notes, notesOf[s.Name])
		}
		if !s.Contains(0, 0) {
			t.Errorf("shape %s does not contain its centre", s.Name)
		}
		if s.Contains(1.01, 0) || s.Contains(0, -1.01) || s.Contains(0, 1.01) {
			t.Errorf("shape %s extends beyond its unit box", s.Name)
		}
		notes := s.Rhythm(1)
		for i, n := range notes {
			if n.End <= n.Start || n.Start < 0 || n.End > 1 || (i > 0 && n.Start-notes[i-1].End < 0.05) {
				t.Errorf("shape %s: note %d %+v is not separated by >= 50 ms of silence", s.Name, i, n)
			}
		}
	}
	if len(gen.Positions) != 9 {
		t.Errorf("%d positions, want 9", len(gen.Positions))
	}
	for _, p := range gen.Positions {
		if r, c := gridCell(p.Name); r != p.Row || c != p.Col {
			t.Errorf("position %q is at (%d,%d), its words say (%d,%d)", p.Name, p.Row, p.Col, r, c)
		}
	}
}
