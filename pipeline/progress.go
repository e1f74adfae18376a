package pipeline

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progress shows a run's stages while it goes: one mpb line per stage on a terminal, or one
// slog line per stage every LogEvery otherwise; nothing when Quiet.
type progress struct {
	p    *Pipeline
	done chan struct{}
	wg   sync.WaitGroup

	bars  *mpb.Progress
	lines map[*stage]*mpb.Bar
}

// forceTerminal makes isTerminal true, for tests of the mpb display.
var forceTerminal bool

func isTerminal(w io.Writer) bool {
	if forceTerminal {
		return true
	}
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func startProgress(p *Pipeline) *progress {
	pr := &progress{p: p, done: make(chan struct{})}
	cfg := p.cfg
	if cfg.Quiet {
		return pr
	}
	if cfg.Progress != nil && isTerminal(cfg.Progress) {
		pr.bars = mpb.New(mpb.WithOutput(cfg.Progress), mpb.ForceTTY(), mpb.WithAutoRefresh(), mpb.WithRefreshRate(200*time.Millisecond))
		pr.lines = map[*stage]*mpb.Bar{}
		pr.wg.Add(1)
		go pr.loop(200*time.Millisecond, pr.addBars)
		return pr
	}
	if cfg.Logger != nil {
		pr.wg.Add(1)
		go pr.loop(cfg.LogEvery, pr.logLines)
	}
	return pr
}

func (pr *progress) loop(every time.Duration, tick func()) {
	defer pr.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-pr.done:
			return
		case <-t.C:
			tick()
		}
	}
}

// stop ends the display; it returns when the last frame is drawn.
func (pr *progress) stop() {
	close(pr.done)
	pr.wg.Wait()
	if pr.bars != nil {
		pr.addBars()
		for _, b := range pr.lines {
			b.SetTotal(-1, true)
		}
		pr.bars.Wait()
	}
}

func (pr *progress) stages() []*stage {
	pr.p.mu.Lock()
	defer pr.p.mu.Unlock()
	return append([]*stage(nil), pr.p.stages...)
}

func (pr *progress) addBars() {
	for _, s := range pr.stages() {
		if pr.lines[s] != nil {
			continue
		}
		pr.lines[s] = pr.bars.New(0, mpb.NopStyle(),
			mpb.PrependDecorators(decor.Name(s.name, decor.WC{C: decor.DSyncWidthR | decor.DextraSpace})),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
				return pr.describe(s.snapshot())
			})),
		)
	}
}

func (pr *progress) describe(m StageMetrics) string {
	el := time.Since(pr.p.start).Seconds()
	busy := 0.0
	if el > 0 && m.Workers > 0 {
		busy = 100 * m.BusySeconds / (el * float64(m.Workers))
	}
	rate := 0.0
	if el > 0 {
		rate = float64(m.ItemsOut) / el
	}
	s := fmt.Sprintf("in %d  out %d  rej %d", m.ItemsIn, m.ItemsOut, m.Rejected)
	if done, total := pr.p.settled(), pr.p.total.Load(); m.Kind == "sink" && total > 0 {
		s += fmt.Sprintf("  %.1f%% of %d", 100*float64(done)/float64(total), total)
		if done > 0 && done < total {
			s += "  eta " + (time.Duration(el*float64(total-done)/float64(done)) * time.Second).Round(time.Second).String()
		}
	}
	if m.Dropped > 0 {
		s += fmt.Sprintf("  drop %d", m.Dropped)
	}
	if m.Kind != "sink" {
		s += fmt.Sprintf("  queue %d/%d", m.QueueDepth, m.QueueCap)
	}
	return s + fmt.Sprintf("  busy %.0f%%  %.1f/s", busy, rate)
}

func (pr *progress) logLines() {
	el := time.Since(pr.p.start).Seconds()
	if total := pr.p.total.Load(); total > 0 {
		pr.p.cfg.Logger.Info("pipeline: progress", "run", pr.p.cfg.Name, "done", pr.p.settled(), "total", total)
	}
	for _, s := range pr.stages() {
		m := s.snapshot()
		rate := 0.0
		if el > 0 {
			rate = float64(m.ItemsOut) / el
		}
		pr.p.cfg.Logger.Info("pipeline: progress", "run", pr.p.cfg.Name, "stage", m.Name,
			"in", m.ItemsIn, "out", m.ItemsOut, "rejected", m.Rejected, "dropped", m.Dropped,
			"queue", m.QueueDepth, "queue_cap", m.QueueCap, "in_flight", m.InFlight,
			"busy_s", round3(m.BusySeconds), "per_s", round3(rate))
	}
}
