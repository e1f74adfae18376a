package pipeline_test

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/immkit/immkit/pipeline"
)

// cpuTime is the CPU time (user + system) the process used so far. On a shared machine it
// is a steadier measure of per-item cost than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report adds items/s (wall) and CPU ns per item.
func report(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/item")
}

// BenchmarkNoop3 measures the engine's per-item overhead: b.N ints through a Source, three
// no-op Map stages and a Sink. Compare with BenchmarkChannels3, the same shape hand-written
// with bare channels and no metrics, rejects or cancellation.
func BenchmarkNoop3(b *testing.B) {
	for _, c := range []struct {
		name string
		opts []pipeline.Option
	}{{"unordered", nil}, {"ordered", []pipeline.Option{pipeline.Ordered()}}} {
		b.Run(c.name, func(b *testing.B) {
			cpu0 := cpuTime()
			p := pipeline.New(context.Background(), pipeline.Config{Workers: 4, Buffer: 64})
			src := pipeline.Source(p, "src", func(ctx context.Context, e *pipeline.Emitter[int]) error {
				for i := range b.N {
					if err := e.Emit("", i); err != nil {
						return err
					}
				}
				return nil
			})
			id := func(_ context.Context, v int) (int, error) { return v, nil }
			out := pipeline.Map(p, "c", pipeline.Map(p, "b", pipeline.Map(p, "a", src, id, c.opts...), id, c.opts...), id, c.opts...)
			n := 0
			pipeline.Sink(p, "sink", out, func(_ context.Context, it pipeline.Item[int]) error { n++; return nil })
			if _, err := p.Wait(); err != nil || n != b.N {
				b.Fatal(err, n)
			}
			report(b, cpu0)
		})
	}
}

func BenchmarkChannels3(b *testing.B) {
	cpu0 := cpuTime()
	src := make(chan int, 64)
	go func() {
		defer close(src)
		for i := range b.N {
			src <- i
		}
	}()
	stage := func(in <-chan int) <-chan int {
		out := make(chan int, 64)
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for v := range in {
					out <- v
				}
			}()
		}
		go func() { wg.Wait(); close(out) }()
		return out
	}
	n := 0
	for range stage(stage(stage(src))) {
		n++
	}
	if n != b.N {
		b.Fatal(n)
	}
	report(b, cpu0)
}
