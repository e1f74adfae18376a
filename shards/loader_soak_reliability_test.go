package shards

import (
	"errors"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// rssBytes reads this process's resident set size from /proc/self/status (0 elsewhere).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

type soakSample struct {
	at         time.Duration
	epoch      int
	samples    int64
	rss, heap  int64
	goroutines int
}

// TestLoaderSoak reads a small dataset for IMMKIT_LOADER_SOAK (a duration, e.g. 10m) as fast
// as the loader goes: endless epochs, with a Close and Resume from the saved state every
// 10 epochs (as a trainer restarting from checkpoints does). At each restart, with the old
// loader closed, it samples the resident set, the live heap after a GC and the goroutine
// count. After a warm-up of the first fifth of the samples, the peak RSS of the last fifth
// may not exceed that of the second fifth by more than 10% + 16 MiB, nor the peak live heap
// by more than 10% + 1 MiB, and the goroutine count must be the one before the first
// loader at every sample (no reader goroutine outlives Close).
// scripts/reliability/soak.sh runs it and reports the figures.
func TestLoaderSoak(t *testing.T) {
	env := os.Getenv("IMMKIT_LOADER_SOAK")
	if env == "" {
		t.Skip("set IMMKIT_LOADER_SOAK=DURATION (e.g. 10m) to run the loader soak")
	}
	dur, err := time.ParseDuration(env)
	if err != nil || dur < 10*time.Second {
		t.Fatalf("IMMKIT_LOADER_SOAK=%q: want a duration of at least 10s", env)
	}
	dir, _, _ := loaderDataset(t, 600)
	opts := LoaderOptions{GlobalBatch: 32, ShuffleBlock: 128, ReuseBatches: true}
	l, err := NewLoader(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }()
	perEpoch := l.Samples()
	steps := l.StepsPerEpoch()
	base := runtime.NumGoroutine()

	var samples []soakSample
	var n int64
	var batches, restarts int
	start := time.Now()
	sample := func(epoch int) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		// the live heap without this test's own record of the samples, which grows
		own := int64(cap(samples)) * int64(unsafe.Sizeof(soakSample{}))
		samples = append(samples, soakSample{time.Since(start), epoch, n, rssBytes(), int64(ms.HeapAlloc) - own, runtime.NumGoroutine()})
	}
	for time.Since(start) < dur {
		b, err := l.Next()
		if err != nil {
			t.Fatalf("batch %d: %v", batches, err)
		}
		if b.Len() == 0 || !slices.ContainsFunc(b.Keys, func(k string) bool { return k != "" }) {
			t.Fatalf("batch %d is empty", batches)
		}
		n += int64(b.Len())
		batches++
		st := l.State()
		if st.Step == 0 && st.Epoch%10 == 0 {
			// restart: close the loader, sample, resume a new one from the saved state
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			sample(st.Epoch)
			if l, err = NewLoader(dir, opts); err != nil {
				t.Fatal(err)
			}
			if err := l.Resume(st); err != nil {
				t.Fatal(err)
			}
			restarts++
		}
	}
	elapsed := time.Since(start)
	if len(samples) < 10 {
		t.Fatalf("only %d samples", len(samples))
	}
	fifth := len(samples) / 5
	maxOf := func(s []soakSample, f func(soakSample) int64) int64 {
		var m int64
		for _, v := range s {
			m = max(m, f(v))
		}
		return m
	}
	rss := func(s soakSample) int64 { return s.rss }
	heap := func(s soakSample) int64 { return s.heap }
	early, late := samples[fifth:2*fifth], samples[len(samples)-fifth:]
	var errs []error
	if e, l := maxOf(early, rss), maxOf(late, rss); e > 0 && float64(l) > 1.1*float64(e)+16<<20 {
		errs = append(errs, errors.New("resident set grew: "+strconv.FormatInt(e>>20, 10)+" MiB early, "+strconv.FormatInt(l>>20, 10)+" MiB late"))
	}
	if e, l := maxOf(early, heap), maxOf(late, heap); float64(l) > 1.1*float64(e)+1<<20 {
		errs = append(errs, errors.New("live heap grew: "+strconv.FormatInt(e>>10, 10)+" KiB early, "+strconv.FormatInt(l>>10, 10)+" KiB late"))
	}
	gmin, gmax := samples[0].goroutines, samples[0].goroutines
	for _, s := range samples {
		gmin, gmax = min(gmin, s.goroutines), max(gmax, s.goroutines)
	}
	if gmin != base || gmax != base {
		errs = append(errs, errors.New("goroutines after Close between "+strconv.Itoa(gmin)+" and "+strconv.Itoa(gmax)+", "+strconv.Itoa(base)+" before the first loader"))
	}
	last := samples[len(samples)-1]
	t.Logf("soak: %s, %d epochs of %d samples (%d steps), %d batches, %d samples, %.0f samples/s, %d restarts",
		elapsed.Round(time.Second), last.epoch, perEpoch, steps, batches, n, float64(n)/elapsed.Seconds(), restarts)
	t.Logf("soak: RSS max %d MiB in the 2nd fifth, %d MiB in the last; live heap max %d KiB / %d KiB; goroutines after Close %d..%d (%d before the first loader)",
		maxOf(early, rss)>>20, maxOf(late, rss)>>20, maxOf(early, heap)>>10, maxOf(late, heap)>>10, gmin, gmax, base)
	for i := 0; i < len(samples); i += max(1, len(samples)/10) {
		s := samples[i]
		t.Logf("soak: t=%s epoch %d samples %d rss %d MiB heap %d KiB goroutines %d", s.at.Round(time.Second), s.epoch, s.samples, s.rss>>20, s.heap>>10, s.goroutines)
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}
