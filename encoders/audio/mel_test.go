package audio

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// speech16k synthesises a sentence with espeak-ng, decodes it with Decode and resamples
// it to 16 kHz.
func speech16k(t *testing.T) []float32 {
	t.Helper()
	espeak := tool(t, "espeak-ng")
	wav := filepath.Join(t.TempDir(), "speech.wav")
	run(t, espeak, "-w", wav, "Inductive moment matching trains few step generative models. The quick brown fox jumps over the lazy dog.")
	b, err := os.ReadFile(wav)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	x, err := Resample(a.Mono(), a.Rate, 16000)
	if err != nil {
		t.Fatal(err)
	}
	if len(x) < 16000 {
		t.Fatalf("espeak speech is only %d samples", len(x))
	}
	return x
}

func testSignals(t *testing.T) map[string][]float32 {
	r := rand.New(rand.NewPCG(1, 2))
	noise := make([]float32, 32813)
	for i := range noise {
		noise[i] = float32(0.1 * r.NormFloat64())
	}
	tones := sine(52817, 16000, 440, 0.5, 0.3)
	for i, v := range sine(len(tones), 16000, 3000, 0.25, 1) {
		tones[i] += v
	}
	silenceClick := make([]float32, 8000)
	silenceClick[4000] = 0.9
	return map[string][]float32{
		"speech":       speech16k(t),
		"tones":        tones,
		"noise":        noise,
		"short":        sine(1234, 16000, 1000, 0.9, 0),
		"silenceClick": silenceClick,
	}
}

// compareWithReference runs testdata/mel_ref.py on x and compares spectrogram and filters.
func compareWithReference(t *testing.T, py string, x []float32, c MelConfig, tol float64, relative bool) {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.f32")
	writeF32(t, in, x)
	melPath, filtPath := filepath.Join(dir, "mel.npy"), filepath.Join(dir, "filters.npy")
	run(t, py, append([]string{"testdata/mel_ref.py", in, melPath, filtPath}, fmtArgs(c)...)...)
	ref, shape := readNPY(t, melPath)
	refFilt, fshape := readNPY(t, filtPath)

	bank, err := NewMelBank(c)
	if err != nil {
		t.Fatal(err)
	}
	nBins := c.NFFT/2 + 1
	if fshape[0] != c.NMels || fshape[1] != nBins {
		t.Fatalf("reference filters shape %v, want (%d, %d)", fshape, c.NMels, nBins)
	}
	var fErr float64
	for i, v := range bank.Filters() {
		fErr = math.Max(fErr, math.Abs(v-refFilt[i]))
	}
	if fErr > 1e-6 {
		t.Errorf("filter bank max abs error %g > 1e-6", fErr)
	}

	mel, err := bank.Compute(x)
	if err != nil {
		t.Fatal(err)
	}
	if shape[0] != mel.NMels || shape[1] != mel.Frames {
		t.Fatalf("shape (%d, %d), reference %v", mel.NMels, mel.Frames, shape)
	}
	var maxErr, refMax float64
	for _, v := range ref {
		refMax = math.Max(refMax, math.Abs(v))
	}
	for i, v := range mel.Data {
		maxErr = math.Max(maxErr, math.Abs(float64(v)-ref[i]))
	}
	if relative {
		maxErr /= refMax
	}
	t.Logf("%d x %d frames, max error %.3g (tolerance %g, relative %v), filters %.3g", mel.NMels, mel.Frames, maxErr, tol, relative, fErr)
	if maxErr > tol {
		t.Errorf("max error %g > %g", maxErr, tol)
	}
}

// TestWhisperParity compares whisper-80 and whisper-128 with the numpy float64 reference
// of Whisper's log_mel_spectrogram on speech, tones, noise, a short clip and a click.
func TestWhisperParity(t *testing.T) {
	py := python(t)
	signals := testSignals(t)
	for _, preset := range []string{"whisper-80", "whisper-128"} {
		c, _ := Preset(preset)
		for name, x := range signals {
			t.Run(preset+"/"+name, func(t *testing.T) {
				compareWithReference(t, py, x, c, 1e-4, false)
				frames, _ := c.NumFrames(len(x))
				if frames != len(x)/160 {
					t.Errorf("frames %d, Whisper gives len/hop = %d", frames, len(x)/160)
				}
			})
		}
	}
}

// TestMelOptionsParity covers the general options against the same reference: librosa's
// and torchaudio's default settings, HiFi-GAN style magnitude + ln mels, a short window.
func TestMelOptionsParity(t *testing.T) {
	py := python(t)
	r := rand.New(rand.NewPCG(3, 4))
	x := sine(40000, 22050, 300, 0.4, 0)
	for i := range x {
		x[i] += float32(0.05 * r.NormFloat64())
	}
	cases := []struct {
		name     string
		c        MelConfig
		tol      float64
		relative bool
	}{
		{"librosa-default", MelConfig{SampleRate: 22050, NFFT: 2048, Hop: 512, NMels: 128, Scale: ScaleSlaney, Norm: NormSlaney, Center: true, PadMode: PadConstant, Power: 2, Log: LogNone}, 1e-5, true},
		{"torchaudio-default-db", MelConfig{SampleRate: 16000, NFFT: 400, Hop: 200, NMels: 128, Scale: ScaleHTK, Norm: NormNone, Center: true, PadMode: PadReflect, Power: 2, Log: LogDB, TopDB: 80}, 1e-3, false},
		{"hifigan-ln", MelConfig{SampleRate: 22050, NFFT: 1024, Hop: 256, NMels: 80, FMax: 8000, Scale: ScaleSlaney, Norm: NormSlaney, Center: false, Power: 1, Log: LogLn, Amin: 1e-5}, 1e-4, false},
		{"short-window-htk", MelConfig{SampleRate: 16000, NFFT: 512, WinLength: 400, Hop: 160, NMels: 40, FMin: 20, FMax: 7600, Scale: ScaleHTK, Norm: NormSlaney, Center: true, PadMode: PadReflect, Power: 2, Log: LogWhisper, DropLast: true}, 1e-4, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			compareWithReference(t, py, x, tc.c, tc.tol, tc.relative)
		})
	}
}

// TestMelFiltersSlaneyArea checks a property that holds independently of any peer: with
// Slaney normalisation each triangle integrates (over Hz) to 1.
func TestMelFiltersSlaneyArea(t *testing.T) {
	c := MelConfig{SampleRate: 16000, NFFT: 8192, Hop: 160, NMels: 40, Scale: ScaleSlaney, Norm: NormSlaney, Power: 2, Log: LogNone}
	w, err := MelFilters(c)
	if err != nil {
		t.Fatal(err)
	}
	nBins := c.NFFT/2 + 1
	df := float64(c.SampleRate) / float64(c.NFFT)
	for m := 0; m < c.NMels; m++ {
		var area float64
		for _, v := range w[m*nBins : (m+1)*nBins] {
			area += v * df
		}
		if math.Abs(area-1) > 0.01 {
			t.Errorf("mel %d: area %g, want 1", m, area)
		}
	}
}

func TestMelConfigErrors(t *testing.T) {
	good, _ := Preset("whisper-80")
	bad := []func(c *MelConfig){
		func(c *MelConfig) { c.NFFT = 0 },
		func(c *MelConfig) { c.Hop = 0 },
		func(c *MelConfig) { c.NMels = 0 },
		func(c *MelConfig) { c.FMax = 9000 },
		func(c *MelConfig) { c.Scale = "bark" },
		func(c *MelConfig) { c.Log = "log2" },
		func(c *MelConfig) { c.PadMode = "edge" },
		func(c *MelConfig) { c.Power = math.NaN() },
		func(c *MelConfig) { c.WinLength = 401 },
	}
	for i, f := range bad {
		c := good
		f(&c)
		if _, err := MelSpectrogram(make([]float32, 16000), c); err == nil {
			t.Errorf("case %d: no error for %+v", i, c)
		}
	}
	if _, err := MelSpectrogram(make([]float32, 200), good); err == nil {
		t.Error("200 samples: no error for reflect padding by 200")
	}
	nanIn := make([]float32, 16000)
	nanIn[777] = float32(math.NaN())
	if _, err := MelSpectrogram(nanIn, good); err == nil {
		t.Error("NaN sample accepted")
	}
	nanIn[777] = float32(math.Inf(-1))
	if _, err := MelSpectrogram(nanIn, good); err == nil {
		t.Error("-Inf sample accepted")
	}
	if _, err := Preset("whisper-81"); err == nil {
		t.Error("unknown preset accepted")
	}
}

func ExampleMelSpectrogram() {
	c, _ := Preset("whisper-80")
	x := sine(16000, 16000, 440, 0.5, 0) // one second
	mel, err := MelSpectrogram(x, c)
	if err != nil {
		panic(err)
	}
	fmt.Println(mel.NMels, mel.Frames, len(mel.Data))
	// Output: 80 100 8000
}

// TestComputeAudio checks the decode-side path: stereo 44.1 kHz in, the mel of the mono
// 16 kHz resampled signal out.
func TestComputeAudio(t *testing.T) {
	l, r := sine(44100, 44100, 440, 0.4, 0), sine(44100, 44100, 440, 0.2, 0)
	st := make([]float32, 2*len(l))
	for i := range l {
		st[2*i], st[2*i+1] = l[i], r[i]
	}
	c, _ := Preset("whisper-80")
	bank, _ := NewMelBank(c)
	got, err := bank.ComputeAudio(&Audio{Samples: st, Rate: 44100, Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	x, _ := Resample(sine(44100, 44100, 440, 0.3, 0), 44100, 16000)
	want, _ := bank.Compute(x)
	if got.Frames != 100 || got.Frames != want.Frames {
		t.Fatalf("frames %d, want 100", got.Frames)
	}
	for i := range want.Data {
		if math.Abs(float64(got.Data[i]-want.Data[i])) > 1e-5 {
			t.Fatalf("value %d: %v want %v", i, got.Data[i], want.Data[i])
		}
	}
}
