package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Config configures a run. The zero value works: GOMAXPROCS workers per Map stage, channel
// buffers of one slot per worker, rejects counted but not recorded, no progress output.
type Config struct {
	// Name names the run in log lines and the summary ("ingest", "encode").
	Name string
	// Workers is the default number of worker goroutines of a Map stage;
	// <= 0 means runtime.GOMAXPROCS(0). The Workers option overrides it per stage.
	Workers int
	// Buffer is the default capacity of each stage's output channel; <= 0 means the
	// stage's worker count. The Buffer option overrides it per stage.
	Buffer int
	// Rejects receives every reject; nil means rejects are only counted.
	Rejects RejectSink
	// Logger receives periodic progress lines (when Progress is not a terminal) and the
	// final summary line; nil means no log output.
	Logger *slog.Logger
	// Progress is where progress bars are drawn when it is a terminal (*os.File on a
	// character device). When it is not a terminal, progress goes to Logger as one line
	// per stage every LogEvery.
	Progress io.Writer
	// Quiet turns off progress bars and periodic log lines (--quiet).
	Quiet bool
	// LogEvery is the period of progress log lines; <= 0 means 10s.
	LogEvery time.Duration
}

// Pipeline is one run of connected stages. Build it with New, add stages with Source, Map
// and Sink (which start their goroutines at once), then call Wait exactly once.
// A Pipeline's stage-building functions must be called from one goroutine.
type Pipeline struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	g      *errgroup.Group
	start  time.Time
	end    atomic.Int64 // UnixNano when Wait finished the run, 0 before

	mu     sync.Mutex // guards stages and waited
	stages []*stage

	countMu  sync.Mutex // guards the per reason counts over all stages
	rejectBy map[string]int64
	dropBy   map[string]int64

	sinkMu sync.Mutex // serialises calls to cfg.Rejects

	inputs   atomic.Int64
	total    atomic.Int64 // expected inputs (Emitter.SetTotal), 0 when unknown
	accepted atomic.Int64
	rejected atomic.Int64
	dropped  atomic.Int64

	progress *progress
	waited   bool
}

// New starts a run under ctx. The run's context is cancelled when a stage fails, when ctx
// is cancelled, or when Wait returns.
func New(ctx context.Context, cfg Config) *Pipeline {
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.LogEvery <= 0 {
		cfg.LogEvery = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(ctx)
	p := &Pipeline{
		cfg:      cfg,
		ctx:      gctx,
		cancel:   cancel,
		g:        g,
		start:    time.Now(),
		rejectBy: map[string]int64{},
		dropBy:   map[string]int64{},
	}
	p.progress = startProgress(p)
	return p
}

// Context returns the run's context: cancelled when a stage fails or the run ends.
func (p *Pipeline) Context() context.Context { return p.ctx }

func (p *Pipeline) addStage(s *stage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, o := range p.stages {
		if o.name == s.name {
			panic(fmt.Sprintf("pipeline: two stages named %q", s.name))
		}
	}
	if p.waited {
		panic("pipeline: stage " + s.name + " added after Wait")
	}
	p.stages = append(p.stages, s)
}

// reject records one reject of stage s. A non-nil return is the reject sink's failure.
func (p *Pipeline) reject(s *stage, r *RejectError) error {
	s.rejected.Add(1)
	p.rejected.Add(1)
	s.count(&s.rejectBy, r.Reason)
	p.countMu.Lock()
	p.rejectBy[r.Reason]++
	p.countMu.Unlock()
	if p.cfg.Rejects != nil {
		p.sinkMu.Lock()
		defer p.sinkMu.Unlock()
		if err := p.cfg.Rejects.WriteReject(r); err != nil {
			return fmt.Errorf("pipeline: %s: reject sink: %w", s.name, err)
		}
	}
	return nil
}

func (p *Pipeline) drop(s *stage, reason string) {
	s.dropped.Add(1)
	p.dropped.Add(1)
	s.count(&s.dropBy, reason)
	p.countMu.Lock()
	p.dropBy[reason]++
	p.countMu.Unlock()
}

// Summary is the JSON run summary (--stats-json). Every input item ends as exactly one of
// accepted, rejected or dropped, so Balanced is Inputs == Accepted + Rejected + Dropped;
// it can only be false when the run failed or was cancelled (then items in flight are lost),
// or when a stage lost items, which Wait reports as an error wrapping ErrUnbalanced.
type Summary struct {
	Name             string           `json:"name,omitempty"`
	Inputs           int64            `json:"inputs"`
	Accepted         int64            `json:"accepted"`
	Rejected         int64            `json:"rejected"`
	RejectedByReason map[string]int64 `json:"rejected_by_reason"`
	Dropped          int64            `json:"dropped"`
	DroppedByReason  map[string]int64 `json:"dropped_by_reason"`
	Balanced         bool             `json:"balanced"`
	Seconds          float64          `json:"seconds"`
	Stages           []StageMetrics   `json:"stages"`
	Error            string           `json:"error,omitempty"`
}

// WriteJSON writes s as indented JSON followed by a newline.
func (s *Summary) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("pipeline: encode summary: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteFile writes s as JSON to path through a temporary file and a rename, so a reader
// never sees a partial summary. "-" writes to os.Stdout.
func (s *Summary) WriteFile(path string) (err error) {
	if path == "-" {
		return s.WriteJSON(os.Stdout)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("pipeline: write summary: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if err = s.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("pipeline: write summary %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("pipeline: write summary %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("pipeline: write summary: %w", err)
	}
	return nil
}

// Metrics returns a snapshot of every stage's metrics, in the order stages were added.
// It may be called at any time, also while the run is going.
func (p *Pipeline) Metrics() []StageMetrics {
	p.mu.Lock()
	stages := append([]*stage(nil), p.stages...)
	p.mu.Unlock()
	out := make([]StageMetrics, len(stages))
	for i, s := range stages {
		out[i] = s.snapshot()
	}
	return out
}

// Summary returns a snapshot of the run's counters. After Wait it is the final summary.
func (p *Pipeline) Summary() *Summary {
	s := &Summary{
		Name:     p.cfg.Name,
		Inputs:   p.inputs.Load(),
		Accepted: p.accepted.Load(),
		Rejected: p.rejected.Load(),
		Dropped:  p.dropped.Load(),
		Seconds:  p.elapsed().Seconds(),
		Stages:   p.Metrics(),
	}
	p.countMu.Lock()
	s.RejectedByReason = copyCounts(p.rejectBy)
	s.DroppedByReason = copyCounts(p.dropBy)
	p.countMu.Unlock()
	s.Balanced = s.Inputs == s.Accepted+s.Rejected+s.Dropped
	return s
}

func copyCounts(m map[string]int64) map[string]int64 {
	c := make(map[string]int64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Wait waits for every stage to finish and returns the run summary. The error is the first
// fatal error of any stage (a Source or Sink error, a Map function's Fatal error, a reject
// sink failure, or the parent context's error); when the run finished without one but the
// counts do not balance, it wraps ErrUnbalanced. The summary is never nil.
func (p *Pipeline) Wait() (*Summary, error) {
	p.mu.Lock()
	if p.waited {
		p.mu.Unlock()
		panic("pipeline: Wait called twice")
	}
	p.waited = true
	p.mu.Unlock()

	err := p.g.Wait()
	p.end.Store(time.Now().UnixNano())
	p.cancel()
	p.progress.stop()
	sum := p.Summary()
	if err == nil && !sum.Balanced {
		err = fmt.Errorf("%w: inputs %d, accepted %d, rejected %d, dropped %d (is every stage's output consumed by a Sink?)",
			ErrUnbalanced, sum.Inputs, sum.Accepted, sum.Rejected, sum.Dropped)
	}
	if err != nil {
		sum.Error = err.Error()
	}
	if l := p.cfg.Logger; l != nil {
		attrs := []any{
			"name", p.cfg.Name, "inputs", sum.Inputs, "accepted", sum.Accepted,
			"rejected", sum.Rejected, "dropped", sum.Dropped, "seconds", round3(sum.Seconds),
		}
		if len(sum.RejectedByReason) > 0 {
			attrs = append(attrs, "rejected_by_reason", reasonList(sum.RejectedByReason))
		}
		switch {
		case errors.Is(err, ErrUnbalanced):
			l.Error("pipeline: counts do not balance", attrs...)
		case err != nil:
			l.Warn("pipeline: run failed", append(attrs, "err", err)...)
		default:
			l.Info("pipeline: done", attrs...)
		}
	}
	return sum, err
}

// settled is the number of inputs that have reached their end: accepted, rejected or dropped.
func (p *Pipeline) settled() int64 {
	return p.accepted.Load() + p.rejected.Load() + p.dropped.Load()
}

// elapsed is the run's duration so far, or its total duration after Wait.
func (p *Pipeline) elapsed() time.Duration {
	if e := p.end.Load(); e != 0 {
		return time.Unix(0, e).Sub(p.start)
	}
	return time.Since(p.start)
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

func reasonList(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf("%s=%d", k, m[k])
	}
	return s
}
