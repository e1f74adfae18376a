package audio

import (
	"math/rand/v2"
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

// BenchmarkWhisper80TenMinutes is the whisper-80 log-mel of 10 minutes of 16 kHz audio,
// single goroutine (scripts/bench-audio.sh runs it with -cpu 1 against torchaudio).
func BenchmarkWhisper80TenMinutes(b *testing.B) {
	x := benchSignal(16000 * 600)
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
