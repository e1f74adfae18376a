package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/immkit/immkit/pipeline"
)

// counter is a Source emitting 0..n-1 with source "item-i".
func counter(n int) func(context.Context, *pipeline.Emitter[int]) error {
	return func(ctx context.Context, e *pipeline.Emitter[int]) error {
		for i := range n {
			if err := e.Emit(fmt.Sprintf("item-%d", i), i); err != nil {
				return err
			}
		}
		return nil
	}
}

func stageByName(t *testing.T, ms []pipeline.StageMetrics, name string) pipeline.StageMetrics {
	t.Helper()
	for _, m := range ms {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no stage %q in %+v", name, ms)
	return pipeline.StageMetrics{}
}

// TestBounds pushes 100000 items through 3 stages of 8 workers and checks that no stage
// ever held more items than its configured bound, both through the engine's metrics and
// through an independent count: items emitted by the source minus items seen by the sink.
func TestBounds(t *testing.T) {
	const n, workers, buf = 100000, 8, 16
	p := pipeline.New(context.Background(), pipeline.Config{Workers: workers, Buffer: buf})
	var emitted, consumed atomic.Int64
	var maxHeld int64
	src := pipeline.Source(p, "src", func(ctx context.Context, e *pipeline.Emitter[int]) error {
		for i := range n {
			if held := emitted.Load() - consumed.Load(); held > maxHeld {
				maxHeld = held
			}
			if err := e.Emit("", i); err != nil {
				return err
			}
			emitted.Add(1)
		}
		return nil
	})
	a := pipeline.Map(p, "a", src, func(_ context.Context, v int) (int, error) { return v + 1, nil })
	b := pipeline.Map(p, "b", a, func(_ context.Context, v int) (int, error) { return v * 2, nil }, pipeline.Window(2*workers))
	c := pipeline.Map(p, "c", b, func(_ context.Context, v int) (int, error) { return v - 2, nil })
	var sum int64
	pipeline.Sink(p, "sink", c, func(_ context.Context, it pipeline.Item[int]) error {
		consumed.Add(1)
		if int64(it.Value) != 2*it.Seq {
			return fmt.Errorf("item %d: got %d", it.Seq, it.Value)
		}
		sum += int64(it.Value)
		if it.Seq%1000 == 0 {
			time.Sleep(time.Millisecond) // let the queues fill up
		}
		return nil
	})
	s, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if s.Inputs != n || s.Accepted != n || !s.Balanced {
		t.Fatalf("summary %+v", s)
	}
	if want := int64(n) * (n - 1); sum != want {
		t.Fatalf("sum %d, want %d", sum, want)
	}
	total := 0
	for _, m := range s.Stages {
		if m.QueuePeak > m.QueueCap {
			t.Errorf("stage %s: queue peak %d > cap %d", m.Name, m.QueuePeak, m.QueueCap)
		}
		if m.InFlightPeak > m.InFlightBound {
			t.Errorf("stage %s: in-flight peak %d > bound %d", m.Name, m.InFlightPeak, m.InFlightBound)
		}
		if m.Kind == "map" && m.ItemsIn != n {
			t.Errorf("stage %s: %d in", m.Name, m.ItemsIn)
		}
		total += m.QueueCap + m.InFlightBound
	}
	// src: queue 16; a: 16 + 8 workers; b: 16 + window 16; c: 16 + 8; sink: 1
	if want := 97; total != want {
		t.Errorf("sum of bounds %d, want %d", total, want)
	}
	if maxHeld > int64(total) {
		t.Errorf("the pipeline held %d items at once, bound %d", maxHeld, total)
	}
	// The metrics must see the queues fill up behind the slow sink (else they measure nothing).
	if m := stageByName(t, s.Stages, "c"); m.QueuePeak != buf {
		t.Errorf("stage c: queue peak %d, want it full (%d)", m.QueuePeak, buf)
	}
	if maxHeld < buf {
		t.Errorf("max held %d: the sink never fell behind", maxHeld)
	}
	t.Logf("max held %d of bound %d", maxHeld, total)
}

func randomSleep(max time.Duration) {
	time.Sleep(time.Duration(rand.Int64N(int64(max))))
}

func TestOrdered(t *testing.T) {
	const n = 2000
	run := func(opts ...pipeline.Option) ([]int, *pipeline.Summary) {
		p := pipeline.New(context.Background(), pipeline.Config{Workers: 8})
		src := pipeline.Source(p, "src", counter(n))
		sleep := func(_ context.Context, v int) (int, error) { randomSleep(200 * time.Microsecond); return v, nil }
		a := pipeline.Map(p, "a", src, sleep, opts...)
		b := pipeline.Map(p, "b", a, sleep, opts...)
		var got []int
		pipeline.Sink(p, "sink", b, func(_ context.Context, it pipeline.Item[int]) error {
			got = append(got, it.Value)
			return nil
		})
		s, err := p.Wait()
		if err != nil {
			t.Fatal(err)
		}
		return got, s
	}
	got, s := run(pipeline.Ordered())
	if len(got) != n {
		t.Fatalf("got %d items", len(got))
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("ordered: position %d holds item %d", i, v)
		}
	}
	for _, name := range []string{"a", "b"} {
		m := stageByName(t, s.Stages, name)
		if m.Window != 32 || m.ReorderPeak > m.Window || m.InFlightPeak > m.Window {
			t.Errorf("stage %s: window %d reorder peak %d in-flight peak %d", name, m.Window, m.ReorderPeak, m.InFlightPeak)
		}
	}
	// The same stages without Ordered do reorder: the test above can see disorder.
	got, _ = run()
	inOrder := true
	for i, v := range got {
		inOrder = inOrder && v == i
	}
	if inOrder {
		t.Errorf("unordered run came out in order; the sleeps do not perturb the workers")
	}
}

// TestWindowBound shows the reorder window bound: while item 0 is stuck, a stage with
// Window(w) starts at most w-1 later items, however many workers it has.
func TestWindowBound(t *testing.T) {
	for _, w := range []int{1, 3, 10} {
		p := pipeline.New(context.Background(), pipeline.Config{Workers: 16})
		release := make(chan struct{})
		var started, running, maxRunning atomic.Int64
		var startedBeforeRelease int64
		src := pipeline.Source(p, "src", counter(200))
		out := pipeline.Map(p, "m", src, func(_ context.Context, v int) (int, error) {
			started.Add(1)
			r := running.Add(1)
			for {
				m := maxRunning.Load()
				if r <= m || maxRunning.CompareAndSwap(m, r) {
					break
				}
			}
			defer running.Add(-1)
			if v == 0 {
				// wait until the others had every chance to start
				<-release
			}
			return v, nil
		}, pipeline.Window(w))
		go func() {
			// wait until the window is full (w items started), then give any further
			// item time to start (none can while item 0 blocks the window)
			for deadline := time.Now().Add(10 * time.Second); started.Load() < int64(w) && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			atomic.StoreInt64(&startedBeforeRelease, started.Load())
			close(release)
		}()
		var got []int
		pipeline.Sink(p, "sink", out, func(_ context.Context, it pipeline.Item[int]) error {
			got = append(got, it.Value)
			return nil
		})
		s, err := p.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if sb := atomic.LoadInt64(&startedBeforeRelease); sb != int64(w) {
			t.Errorf("window %d: %d items started while item 0 was stuck, want %d", w, sb, w)
		}
		if mr := maxRunning.Load(); mr > int64(w) {
			t.Errorf("window %d: %d items ran at once", w, mr)
		}
		m := stageByName(t, s.Stages, "m")
		if m.ReorderPeak > w || m.InFlightPeak > w || m.InFlightBound != w {
			t.Errorf("window %d: metrics %+v", w, m)
		}
		for i, v := range got {
			if v != i {
				t.Fatalf("window %d: position %d holds %d", w, i, v)
			}
		}
	}
}

func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines left, %d before:\n%s", n, before, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitDone waits for Wait to return; the long timeout catches deadlocks, not slowness.
func waitDone(t *testing.T, p *pipeline.Pipeline) (*pipeline.Summary, error) {
	t.Helper()
	type res struct {
		s   *pipeline.Summary
		err error
	}
	ch := make(chan res, 1)
	go func() { s, err := p.Wait(); ch <- res{s, err} }()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-time.After(30 * time.Second):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("Wait did not return:\n%s", buf)
	}
	return nil, nil
}

func TestCancel(t *testing.T) {
	for _, ordered := range []bool{false, true} {
		t.Run(fmt.Sprint("ordered=", ordered), func(t *testing.T) {
			before := runtime.NumGoroutine()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var opts []pipeline.Option
			if ordered {
				opts = append(opts, pipeline.Ordered())
			}
			p := pipeline.New(ctx, pipeline.Config{Workers: 8})
			src := pipeline.Source(p, "endless", func(ctx context.Context, e *pipeline.Emitter[int]) error {
				for i := 0; ; i++ {
					if err := e.Emit("", i); err != nil {
						return err
					}
				}
			})
			a := pipeline.Map(p, "a", src, func(_ context.Context, v int) (int, error) { return v, nil }, opts...)
			b := pipeline.Map(p, "b", a, func(ctx context.Context, v int) (int, error) {
				select { // a stage that waits on something, cancellable
				case <-time.After(time.Duration(v%3) * 100 * time.Microsecond):
				case <-ctx.Done():
					return 0, ctx.Err()
				}
				return v, nil
			}, opts...)
			var seen atomic.Int64
			pipeline.Sink(p, "sink", b, func(_ context.Context, it pipeline.Item[int]) error {
				if seen.Add(1) == 500 {
					cancel()
				}
				return nil
			})
			s, err := waitDone(t, p)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err %v, want context.Canceled", err)
			}
			if s.Error == "" || s.Accepted < 500 {
				t.Errorf("summary %+v", s)
			}
			waitGoroutines(t, before)
		})
	}
}

func TestFatalStopsRun(t *testing.T) {
	errDisk := errors.New("disk full")
	errModel := errors.New("model missing")
	cases := []struct {
		name string
		want error
		mapf func(context.Context, int) (int, error)
		sink func(context.Context, pipeline.Item[int]) error
		rej  pipeline.RejectSink
	}{
		{name: "sink", want: errDisk, sink: func(_ context.Context, it pipeline.Item[int]) error {
			if it.Value == 300 {
				return errDisk
			}
			return nil
		}},
		{name: "map", want: errModel, mapf: func(_ context.Context, v int) (int, error) {
			if v == 300 {
				return 0, pipeline.Fatal(errModel)
			}
			return v, nil
		}},
		{name: "rejects", want: errDisk, rej: failingRejects{errDisk}, mapf: func(_ context.Context, v int) (int, error) {
			if v == 300 {
				return 0, pipeline.Reject("bad", nil)
			}
			return v, nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			p := pipeline.New(context.Background(), pipeline.Config{Workers: 4, Rejects: c.rej})
			src := pipeline.Source(p, "src", func(ctx context.Context, e *pipeline.Emitter[int]) error {
				for i := 0; ; i++ { // endless: only the failure can stop it
					if err := e.Emit("", i); err != nil {
						return err
					}
				}
			})
			mapf := c.mapf
			if mapf == nil {
				mapf = func(_ context.Context, v int) (int, error) { return v, nil }
			}
			sink := c.sink
			if sink == nil {
				sink = func(context.Context, pipeline.Item[int]) error { return nil }
			}
			pipeline.Sink(p, "sink", pipeline.Map(p, "m", src, mapf), sink)
			_, err := waitDone(t, p)
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			if errors.Is(err, context.Canceled) {
				t.Fatalf("err %v must not be a cancellation", err)
			}
			waitGoroutines(t, before)
		})
	}
}

type failingRejects struct{ err error }

func (f failingRejects) WriteReject(*pipeline.RejectError) error { return f.err }

func TestRejects(t *testing.T) {
	const n = 1000
	// the independent expectation, by the rules the stage functions below follow
	wantReasons := map[string]int64{}
	wantDropped := int64(0)
	wantAccepted := int64(0)
	var wantOrder []int
	for i := range n {
		switch {
		case i%50 == 0:
			wantDropped++
		case i%10 == 3:
			wantReasons["odd3"]++
		case i%10 == 5:
			wantReasons["panic"]++
		case i%10 == 7:
			wantReasons["error"]++
		case i%100 == 99:
			wantReasons["sink_reason"]++
		case i%100 == 98:
			wantDropped++
		case i%100 == 1:
			wantReasons["wrapped"]++
		default:
			wantAccepted++
			wantOrder = append(wantOrder, i)
		}
	}
	for _, ordered := range []bool{false, true} {
		t.Run(fmt.Sprint("ordered=", ordered), func(t *testing.T) {
			mem := &pipeline.MemRejects{}
			// a shared *RejectError value: the engine must copy it, not fill it in
			shared := &pipeline.RejectError{Reason: "wrapped", Detail: "shared"}
			p := pipeline.New(context.Background(), pipeline.Config{Workers: 4, Rejects: mem})
			var opts []pipeline.Option
			if ordered {
				opts = append(opts, pipeline.Ordered())
			}
			src := pipeline.Source(p, "src", counter(n))
			checked := pipeline.Map(p, "check", src, func(_ context.Context, v int) (int, error) {
				switch {
				case v%50 == 0:
					return 0, pipeline.Drop("duplicate")
				case v%10 == 3:
					return 0, pipeline.Rejectf("odd3", "value %d ends in 3", v)
				case v%10 == 5:
					var m map[string]int
					m["boom"] = v // nil map write: a runtime panic
				case v%10 == 7:
					return 0, fmt.Errorf("plain failure %d", v)
				case v%100 == 1:
					return 0, fmt.Errorf("context: %w", shared)
				}
				return v, nil
			}, opts...)
			var got []int
			pipeline.Sink(p, "sink", checked, func(_ context.Context, it pipeline.Item[int]) error {
				if it.Value%100 == 99 {
					return pipeline.Reject("sink_reason", errors.New("sink says no"))
				}
				if it.Value%100 == 98 {
					return pipeline.Drop("duplicate")
				}
				got = append(got, it.Value)
				return nil
			})
			s, err := p.Wait()
			if err != nil {
				t.Fatal(err)
			}
			var wantRejected int64
			for _, c := range wantReasons {
				wantRejected += c
			}
			if s.Inputs != n || s.Accepted != wantAccepted || s.Rejected != wantRejected || s.Dropped != wantDropped || !s.Balanced {
				t.Errorf("summary %+v; want accepted %d rejected %d dropped %d", s, wantAccepted, wantRejected, wantDropped)
			}
			if fmt.Sprint(s.RejectedByReason) != fmt.Sprint(wantReasons) {
				t.Errorf("rejected by reason %v, want %v", s.RejectedByReason, wantReasons)
			}
			if s.DroppedByReason["duplicate"] != wantDropped {
				t.Errorf("dropped by reason %v", s.DroppedByReason)
			}
			if ordered && fmt.Sprint(got) != fmt.Sprint(wantOrder) {
				t.Errorf("ordered output differs from input order")
			}
			if int64(len(got)) != wantAccepted {
				t.Errorf("sink saw %d", len(got))
			}
			rejects := mem.Rejects()
			if int64(len(rejects)) != wantRejected {
				t.Fatalf("%d rejects recorded, want %d", len(rejects), wantRejected)
			}
			for _, r := range rejects {
				var v int
				if _, err := fmt.Sscanf(r.Source, "item-%d", &v); err != nil {
					t.Fatalf("reject source %q", r.Source)
				}
				wantStage := "check"
				if r.Reason == "sink_reason" {
					wantStage = "sink"
				}
				if r.Stage != wantStage {
					t.Errorf("%s: stage %q, want %q", r.Source, r.Stage, wantStage)
				}
				switch r.Reason {
				case "panic":
					if v%10 != 5 || !strings.Contains(r.Detail, "assignment to entry in nil map") ||
						!strings.Contains(r.Detail, "pipeline_test.TestRejects") {
						t.Errorf("panic reject of %d: %q", v, r.Detail)
					}
					if lines := strings.Count(r.Detail, "\n"); lines > 7 {
						t.Errorf("panic stack is not short: %d lines", lines)
					}
				case "odd3":
					if r.Error() != fmt.Sprintf("check: odd3: item-%d: value %d ends in 3", v, v) {
						t.Errorf("Error() = %q", r.Error())
					}
				case "error":
					if r.Err == nil || r.Err.Error() != fmt.Sprintf("plain failure %d", v) {
						t.Errorf("plain error reject %+v", r)
					}
				case "sink_reason":
					if r.Unwrap() == nil || r.Unwrap().Error() != "sink says no" {
						t.Errorf("sink reject %+v", r)
					}
				case "wrapped":
					if v%100 != 1 || r.Detail != "shared" {
						t.Errorf("wrapped reject %+v", r)
					}
				}
			}
			if shared.Stage != "" || shared.Source != "" {
				t.Errorf("the shared reject value was modified: %+v", shared)
			}
			if m := stageByName(t, s.Stages, "sink"); m.Dropped != n/100 || m.DroppedByReason["duplicate"] != n/100 ||
				fmt.Sprint(m.RejectedByReason) != fmt.Sprint(map[string]int64{"sink_reason": wantReasons["sink_reason"]}) {
				t.Errorf("sink stage %+v", m)
			}
			check := stageByName(t, s.Stages, "check")
			checkReasons := map[string]int64{}
			for k, v := range wantReasons {
				if k != "sink_reason" {
					checkReasons[k] = v
				}
			}
			if fmt.Sprint(check.RejectedByReason) != fmt.Sprint(checkReasons) || check.DroppedByReason["duplicate"] != wantDropped-n/100 {
				t.Errorf("check stage by reason: rejected %v dropped %v", check.RejectedByReason, check.DroppedByReason)
			}
			if m := stageByName(t, s.Stages, "check"); m.ItemsIn != n || m.ItemsOut+m.Rejected+m.Dropped != n {
				t.Errorf("check stage %+v", m)
			}
		})
	}
}

func TestUnbalanced(t *testing.T) {
	p := pipeline.New(context.Background(), pipeline.Config{})
	out := pipeline.Map(p, "m", pipeline.Source(p, "src", counter(10)), func(_ context.Context, v int) (int, error) { return v, nil })
	for range out { // drained by hand, not by a Sink: nothing is accepted
	}
	s, err := p.Wait()
	if !errors.Is(err, pipeline.ErrUnbalanced) || s.Balanced {
		t.Fatalf("err %v, balanced %v", err, s.Balanced)
	}
}

func TestJSONLRejects(t *testing.T) {
	var buf bytes.Buffer
	p := pipeline.New(context.Background(), pipeline.Config{Rejects: pipeline.NewJSONLRejects(&buf)})
	src := pipeline.Source(p, "src", func(ctx context.Context, e *pipeline.Emitter[string]) error {
		if err := e.Reject("bad.tar#x.jpg", pipeline.Rejectf("unreadable", "truncated member")); err != nil {
			return err
		}
		return e.Emit("a.txt", "ok")
	})
	m := pipeline.Map(p, "m", src, func(_ context.Context, v string) (string, error) {
		return "", pipeline.Reject("decode", errors.New(`bad "utf-8" <x>`))
	})
	pipeline.Sink(p, "sink", m, func(context.Context, pipeline.Item[string]) error { return nil })
	s, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if s.Inputs != 2 || s.Rejected != 2 || !s.Balanced {
		t.Fatalf("summary %+v", s)
	}
	var got []pipeline.RejectRecord
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var r pipeline.RejectRecord
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	want := []pipeline.RejectRecord{
		{Source: "bad.tar#x.jpg", Stage: "src", Reason: "unreadable", Detail: "truncated member"},
		{Source: "a.txt", Stage: "m", Reason: "decode", Detail: `bad "utf-8" <x>`},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestSummaryWriteFile(t *testing.T) {
	s := &pipeline.Summary{Name: "x", Inputs: 3, Accepted: 3, Balanced: true}
	path := t.TempDir() + "/stats.json"
	if err := s.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back pipeline.Summary
	if err := json.Unmarshal(b, &back); err != nil || back.Name != "x" || back.Inputs != 3 || !back.Balanced {
		t.Fatalf("read back %+v, %v from\n%s", back, err, b)
	}
	if err := s.WriteFile(t.TempDir() + "/missing/dir/stats.json"); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
	if pipeline.Fatal(nil) != nil {
		t.Fatal("Fatal(nil) != nil")
	}
}

func TestSummaryJSON(t *testing.T) {
	p := pipeline.New(context.Background(), pipeline.Config{Name: "demo", Workers: 2})
	m := pipeline.Map(p, "m", pipeline.Source(p, "src", counter(10)), func(_ context.Context, v int) (string, error) {
		if v == 4 {
			return "", pipeline.Reject("four", nil)
		}
		return strings.Repeat("x", v), nil
	}, pipeline.Bytes(func(v any) int64 { return int64(len(v.(string))) }))
	pipeline.Sink(p, "sink", m, func(context.Context, pipeline.Item[string]) error { return nil })
	s, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := s.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Name             string           `json:"name"`
		Inputs           *int64           `json:"inputs"`
		Accepted         *int64           `json:"accepted"`
		Rejected         *int64           `json:"rejected"`
		RejectedByReason map[string]int64 `json:"rejected_by_reason"`
		Balanced         *bool            `json:"balanced"`
		Seconds          *float64         `json:"seconds"`
		Stages           []map[string]any `json:"stages"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Name != "demo" || *doc.Inputs != 10 || *doc.Accepted != 9 || *doc.Rejected != 1 ||
		doc.RejectedByReason["four"] != 1 || !*doc.Balanced || doc.Seconds == nil || len(doc.Stages) != 3 {
		t.Fatalf("summary JSON:\n%s", buf.String())
	}
	st := doc.Stages[1]
	// bytes of the strings 0..9 without 4: 45 - 4
	if st["name"] != "m" || st["bytes"] != float64(41) || st["items_in"] != float64(10) || st["items_out"] != float64(9) {
		t.Errorf("stage m: %v", st)
	}
	for _, key := range []string{"busy_seconds", "queue_depth", "queue_peak", "queue_cap", "in_flight_peak"} {
		if _, ok := st[key]; !ok {
			t.Errorf("stage JSON lacks %q: %v", key, st)
		}
	}
}

func TestProgressLogLines(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	w := writerFunc(func(b []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(b) })
	for _, quiet := range []bool{false, true} {
		buf.Reset()
		log := slog.New(slog.NewTextHandler(w, nil))
		p := pipeline.New(context.Background(), pipeline.Config{
			Name: "demo", Logger: log, Progress: io.Discard, LogEvery: 5 * time.Millisecond, Quiet: quiet,
		})
		m := pipeline.Map(p, "slow", pipeline.Source(p, "src", counter(20)), func(_ context.Context, v int) (int, error) {
			time.Sleep(3 * time.Millisecond)
			return v, nil
		}, pipeline.Workers(1))
		pipeline.Sink(p, "sink", m, func(context.Context, pipeline.Item[int]) error { return nil })
		if _, err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		out := buf.String()
		mu.Unlock()
		progress := strings.Contains(out, "pipeline: progress") && strings.Contains(out, "stage=slow")
		if progress == quiet {
			t.Errorf("quiet=%v: log:\n%s", quiet, out)
		}
		if !strings.Contains(out, "pipeline: done") || !strings.Contains(out, "accepted=20") {
			t.Errorf("quiet=%v: no final line:\n%s", quiet, out)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func TestProgressBars(t *testing.T) {
	pipeline.SetForceTerminal(true)
	defer pipeline.SetForceTerminal(false)
	var mu sync.Mutex
	var buf bytes.Buffer
	w := writerFunc(func(b []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(b) })
	p := pipeline.New(context.Background(), pipeline.Config{Progress: w})
	list := pipeline.Source(p, "list", func(ctx context.Context, e *pipeline.Emitter[int]) error {
		e.SetTotal(30)
		return counter(30)(ctx, e)
	})
	m := pipeline.Map(p, "decode", list, func(_ context.Context, v int) (int, error) {
		time.Sleep(10 * time.Millisecond)
		if v == 7 {
			return 0, pipeline.Reject("seven", nil)
		}
		return v, nil
	}, pipeline.Workers(2))
	pipeline.Sink(p, "write", m, func(context.Context, pipeline.Item[int]) error { return nil })
	if _, err := waitDone(t, p); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	// the last frame shows the final counts of every stage
	for _, want := range []string{"list", "decode", "write", "in 30  out 29  rej 1", "queue ", "100.0% of 30"} {
		if !strings.Contains(out, want) {
			t.Errorf("display lacks %q:\n%s", want, out)
		}
	}
}

// TestShapes runs small pipelines over many worker, buffer and window settings (including
// unbuffered channels and a window of 1) to catch deadlocks and miscounts at the edges.
func TestShapes(t *testing.T) {
	const n = 300
	for _, workers := range []int{1, 3} {
		for _, buf := range []int{0, 1, 5} {
			for _, window := range []int{-1, 0, 1, 2} { // -1 unordered, 0 default window
				name := fmt.Sprintf("w%d/b%d/win%d", workers, buf, window)
				opts := []pipeline.Option{pipeline.Workers(workers), pipeline.Buffer(buf)}
				switch {
				case window == 0:
					opts = append(opts, pipeline.Ordered())
				case window > 0:
					opts = append(opts, pipeline.Window(window))
				}
				p := pipeline.New(context.Background(), pipeline.Config{})
				src := pipeline.Source(p, "src", counter(n), pipeline.Buffer(buf))
				a := pipeline.Map(p, "a", src, func(_ context.Context, v int) (int, error) {
					if v%7 == 0 {
						return 0, pipeline.Reject("seven", nil)
					}
					return v, nil
				}, opts...)
				b := pipeline.Map(p, "b", a, func(_ context.Context, v int) (int, error) {
					if v%11 == 0 {
						return 0, pipeline.Drop("eleven")
					}
					return v, nil
				}, opts...)
				var got []int
				pipeline.Sink(p, "sink", b, func(_ context.Context, it pipeline.Item[int]) error {
					got = append(got, it.Value)
					return nil
				})
				s, err := waitDone(t, p)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				var want []int
				for i := range n {
					if i%7 != 0 && i%11 != 0 {
						want = append(want, i)
					}
				}
				if len(got) != len(want) || s.Rejected != int64((n+6)/7) || !s.Balanced {
					t.Fatalf("%s: %d accepted, summary %+v", name, len(got), s)
				}
				if window >= 0 && fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s: out of order", name)
				}
				for _, m := range s.Stages {
					if m.QueueCap != buf && m.Kind != "sink" {
						t.Errorf("%s: stage %s queue cap %d", name, m.Name, m.QueueCap)
					}
					if m.InFlightPeak > m.InFlightBound {
						t.Errorf("%s: stage %s in flight %d > %d", name, m.Name, m.InFlightPeak, m.InFlightBound)
					}
				}
			}
		}
	}
}
