package run

import (
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Progress shows a training loop's progress: on a terminal an mpb bar with the step
// counter, the loss, samples/s and the ETA; otherwise a plain line every tenth of the run
// (or nothing when both writers are nil).
type Progress struct {
	name         string
	total, start int
	log          io.Writer
	prog         *mpb.Progress
	bar          *mpb.Bar

	mu        sync.Mutex
	loss, sps float64
	began     time.Time
}

// NewProgress starts a display of a run of total steps of which done are done. term is a
// terminal for the bar (or nil), log the target of plain lines when term is nil (or nil).
func NewProgress(name string, total, done int, term, log io.Writer) *Progress {
	p := &Progress{name: name, total: total, start: done, log: log, began: time.Now(), loss: math.NaN()}
	if term != nil {
		p.prog = mpb.New(mpb.WithOutput(term), mpb.WithWidth(32))
		p.bar = p.prog.AddBar(int64(total),
			mpb.PrependDecorators(decor.Name(name+" "), decor.CountersNoUnit("%d/%d")),
			mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
				p.mu.Lock()
				defer p.mu.Unlock()
				return fmt.Sprintf(" loss %.4g  %.1f samples/s ", p.loss, p.sps)
			}), decor.AverageETA(decor.ET_STYLE_GO)))
		p.bar.SetCurrent(int64(done))
	}
	return p
}

// Update reports that step is done with this loss, at sps samples per second.
func (p *Progress) Update(step int, loss, sps float64) {
	p.mu.Lock()
	p.loss, p.sps = loss, sps
	p.mu.Unlock()
	if p.bar != nil {
		p.bar.SetCurrent(int64(step))
		return
	}
	if p.log != nil && (step%max(1, p.total/10) == 0 || step == p.total) {
		fmt.Fprintf(p.log, "%s step %d/%d loss %.5g %.1f samples/s (%.1fs)\n", p.name, step, p.total, loss, sps, time.Since(p.began).Seconds())
	}
}

// Logf writes a line to the log (or above the bar on a terminal).
func (p *Progress) Logf(format string, args ...any) {
	if p.prog != nil {
		fmt.Fprintf(p.prog, format+"\n", args...)
		return
	}
	if p.log != nil {
		fmt.Fprintf(p.log, format+"\n", args...)
	}
}

// Stop ends the display; completed says whether the run reached its total.
func (p *Progress) Stop(completed bool) {
	if p.bar == nil {
		return
	}
	if !completed {
		p.bar.Abort(false)
	} else {
		p.bar.SetCurrent(int64(p.total))
	}
	p.prog.Wait()
}
