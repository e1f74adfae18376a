package audio

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time: on a shared machine it is a steadier
// measure than wall time, reported beside ns/op as cpu-ns/op.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchSignal is speech-like test audio: a sum of tones with noise, n samples at 16 kHz.
func benchSignal(n int) []float32 {
	r := rand.New(rand.NewPCG(9, 10))
	x := sine(n, 16000, 220, 0.3, 0)
	for i, v := range sine(n, 16000, 1800, 0.1, 1) {
		x[i] += v + float32(0.02*r.NormFloat64())
	}
	return x
}

// benchInput is $IMMKIT_AUDIO_BENCH_DIR/bench16k.f32 (raw float32 written by
// scripts/bench-audio.sh, so the torchaudio peer reads the same samples) or benchSignal.
func benchInput(b *testing.B, n int) []float32 {
	dir := os.Getenv("IMMKIT_AUDIO_BENCH_DIR")
	if dir == "" {
		return benchSignal(n)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "bench16k.f32"))
	if err != nil {
		b.Fatal(err)
	}
	x := make([]float32, len(raw)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return x
}

// BenchmarkWhisper80TenMinutes is the whisper-80 log-mel of 10 minutes of 16 kHz audio on
// one goroutine (scripts/bench-audio.sh runs it with -cpu 1 beside torchaudio).
func BenchmarkWhisper80TenMinutes(b *testing.B) {
	x := benchInput(b, 16000*600)
	c, _ := Preset("whisper-80")
	bank, err := NewMelBank(c)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(4 * len(x)))
	c0 := cpuTime()
	for b.Loop() {
		if _, err := bank.Compute(x); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
}

// benchDecode decodes $IMMKIT_AUDIO_BENCH_DIR/name; bytes/s are of the decoded audio as
// 16-bit PCM (frames x channels x 2), the unit the flac and lame peers are measured in.
func benchDecode(b *testing.B, name string) {
	dir := os.Getenv("IMMKIT_AUDIO_BENCH_DIR")
	if dir == "" {
		b.Skip("IMMKIT_AUDIO_BENCH_DIR is not set (scripts/bench-audio.sh sets it)")
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		b.Fatal(err)
	}
	a, err := Decode(data)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(2 * len(a.Samples)))
	c0 := cpuTime()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
}

func BenchmarkDecodeWAV(b *testing.B)  { benchDecode(b, "bench.wav") }
func BenchmarkDecodeFLAC(b *testing.B) { benchDecode(b, "bench.flac") }
func BenchmarkDecodeMP3(b *testing.B)  { benchDecode(b, "bench.mp3") }

// BenchmarkGonumFFT400 is the naive baseline for BenchmarkRealFFT400: gonum's fourier.FFT
// on the same 400-sample frame.
func BenchmarkGonumFFT400(b *testing.B) {
	f := newRealFFT(401) // odd length: the gonum path
	f.n = 400
	f.gonumN = true
	s := f.newScratch()
	x := make([]float64, 400)
	for i := range x {
		x[i] = math.Sin(float64(i))
	}
	dst := make([]float64, 201)
	for b.Loop() {
		f.power(dst, x, s)
	}
}
