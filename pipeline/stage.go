package pipeline

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Item is one unit of work travelling between stages.
type Item[T any] struct {
	// Seq is the item's position in its Source's emission order, from 0. Map keeps it.
	Seq int64
	// Source says where the item came from (a path, "archive.tar#member", "file.jsonl:12");
	// it is copied into the item's RejectError if a stage rejects it.
	Source string
	Value  T
}

// Option configures one stage.
type Option func(*stageOpts)

type stageOpts struct {
	workers int
	buffer  int
	ordered bool
	window  int
	bytes   func(v any) int64
}

// Workers sets the number of worker goroutines of a Map stage (default Config.Workers).
func Workers(n int) Option { return func(o *stageOpts) { o.workers = n } }

// Buffer sets the capacity of the stage's output channel (default Config.Buffer, or the
// worker count). 0 is allowed only when set explicitly: Buffer(0) gives an unbuffered channel.
func Buffer(n int) Option { return func(o *stageOpts) { o.buffer = n } }

// Ordered makes a Map stage emit its results in the order it received its inputs, with a
// reorder window of 4 x workers (see Window).
func Ordered() Option { return func(o *stageOpts) { o.ordered = true } }

// Window makes a Map stage ordered with a reorder window of n items (n >= 1): the stage
// never holds more than n items that it has taken from its input and not yet emitted, so a
// slow item delays at most n-1 later ones and the reorder buffer holds at most n results.
func Window(n int) Option { return func(o *stageOpts) { o.ordered = true; o.window = n } }

// Bytes sets a function that measures a value; the stage adds it up over its output values
// (a Sink over its accepted values) into the Bytes metric.
func Bytes(fn func(v any) int64) Option { return func(o *stageOpts) { o.bytes = fn } }

func (p *Pipeline) options(opts []Option) stageOpts {
	o := stageOpts{workers: p.cfg.Workers, buffer: -1}
	for _, f := range opts {
		f(&o)
	}
	if o.workers <= 0 {
		o.workers = p.cfg.Workers
	}
	if o.buffer < 0 {
		o.buffer = p.cfg.Buffer
		if o.buffer <= 0 {
			o.buffer = o.workers
		}
	}
	if o.ordered && o.window <= 0 {
		o.window = 4 * o.workers
	}
	return o
}

// Emitter is handed to a Source function to send items into the pipeline.
// It must be used only by the goroutine running the Source function.
type Emitter[T any] struct {
	p     *Pipeline
	s     *stage
	ctx   context.Context
	out   chan Item[T]
	seq   int64
	bytes func(any) int64
	last  time.Time // when the Source function last got control back from Emit
}

// Emit sends one input item, blocking while the pipeline is full. It returns the run
// context's error when the run is stopping; the Source function should then return it.
func (e *Emitter[T]) Emit(source string, v T) error {
	// busy time of a Source: the time between Emits, not the time blocked in them
	now := time.Now()
	e.s.busyNs.Add(int64(now.Sub(e.last)))
	if err := send(e.ctx, e.out, Item[T]{Seq: e.seq, Source: source, Value: v}); err != nil {
		return err
	}
	e.last = time.Now()
	e.seq++
	e.p.inputs.Add(1)
	e.s.in.Add(1)
	e.s.sent(len(e.out))
	if e.bytes != nil {
		e.s.bytes.Add(e.bytes(v))
	}
	return nil
}

// SetTotal announces how many inputs the run will have in all (emitted and rejected, over
// all Sources), when the Source knows it in advance; the progress display then shows the
// fraction done and an estimate of the time left.
func (e *Emitter[T]) SetTotal(n int64) { e.p.total.Store(n) }

// Reject counts one input item that the source itself cannot use (an unreadable file, a
// corrupt archive member) as an input and a reject. err is usually from Reject or Rejectf;
// another error is recorded with reason "error". A non-nil return is the reject sink's
// failure, which the Source function should return.
func (e *Emitter[T]) Reject(source string, err error) error {
	e.seq++
	e.p.inputs.Add(1)
	e.s.in.Add(1)
	return e.p.reject(e.s, asReject(e.s.name, source, err))
}

// Source adds a stage that produces the run's input items: fn calls emit.Emit for each one
// and returns nil at the end of the input. An error from fn stops the run. The output
// channel is closed when fn returns. Each emitted item counts as one input of the run.
func Source[T any](p *Pipeline, name string, fn func(ctx context.Context, emit *Emitter[T]) error, opts ...Option) <-chan Item[T] {
	o := p.options(opts)
	out := make(chan Item[T], o.buffer)
	s := &stage{name: name, kind: "source", workers: 1, queueCap: o.buffer, queueLen: func() int { return len(out) }}
	p.addStage(s)
	e := &Emitter[T]{p: p, s: s, ctx: p.ctx, out: out, bytes: o.bytes}
	p.g.Go(func() error {
		defer close(out)
		e.last = time.Now()
		err := fn(p.ctx, e)
		s.busyNs.Add(int64(time.Since(e.last)))
		return stageErr(p.ctx, name, err)
	})
	return out
}

// Map adds a stage that applies fn to every item of in with a fixed pool of workers and
// returns the channel of results. An item whose fn returns an error is not sent on:
//   - a *DropError (Drop) counts it as dropped;
//   - a *RejectError (Reject, Rejectf, also wrapped) rejects it with its Reason;
//   - an error from Fatal stops the run;
//   - the run context's error, once the run is stopping, ends the stage;
//   - any other error rejects it with reason "error".
//
// A panic inside fn is recovered and rejects the item with reason "panic" (the panic value
// and a short stack in Detail): decoders of untrusted input must not crash a run.
// Output order is unspecified unless the Ordered or Window option is given.
func Map[In, Out any](p *Pipeline, name string, in <-chan Item[In], fn func(ctx context.Context, v In) (Out, error), opts ...Option) <-chan Item[Out] {
	o := p.options(opts)
	out := make(chan Item[Out], o.buffer)
	s := &stage{
		name: name, kind: "map", workers: o.workers, ordered: o.ordered, window: o.window,
		queueCap: o.buffer, queueLen: func() int { return len(out) }, bound: o.workers,
	}
	if o.ordered {
		s.bound = o.window
	}
	p.addStage(s)
	ctx := p.ctx

	// process runs fn on one item; ok reports whether the result is to be sent on.
	process := func(it Item[In]) (res Item[Out], ok bool, err error) {
		t0 := time.Now()
		v, ferr := callMap(ctx, fn, it.Value)
		s.busyNs.Add(int64(time.Since(t0)))
		if ferr == nil {
			return Item[Out]{Seq: it.Seq, Source: it.Source, Value: v}, true, nil
		}
		return res, false, p.settle(ctx, s, it.Source, ferr, true)
	}
	emit := func(it Item[Out]) error {
		if err := send(ctx, out, it); err != nil {
			return err
		}
		s.sent(len(out))
		if o.bytes != nil {
			s.bytes.Add(o.bytes(it.Value))
		}
		return nil
	}

	var wg sync.WaitGroup
	if !o.ordered {
		for range o.workers {
			wg.Add(1)
			p.g.Go(func() error {
				defer wg.Done()
				for {
					it, more, err := recv(ctx, in)
					if err != nil || !more {
						return err
					}
					s.in.Add(1)
					s.take()
					res, ok, err := process(it)
					if err != nil {
						return err
					}
					if ok {
						if err := emit(res); err != nil {
							return err
						}
					}
					s.done()
				}
			})
		}
		p.g.Go(func() error { wg.Wait(); close(out); return nil })
		return out
	}

	// Ordered: workers take inputs under a lock that numbers them 0, 1, 2, ... in arrival
	// order, each after taking one of `window` tokens; the reorderer gives the token back
	// when it has emitted (or skipped, for a reject) the item with the next number. So every
	// number in flight lies in [next, next+window), and a ring of `window` slots indexed by
	// number % window holds every waiting result without collisions.
	type result struct {
		idx int64
		it  Item[Out]
		ok  bool
	}
	W := o.window
	tokens := make(chan struct{}, W)
	results := make(chan result, W)
	var takeMu sync.Mutex
	var nextIdx int64
	// takeNext returns the next input and its number while holding a token; more is false
	// at the end of the input.
	takeNext := func() (it Item[In], idx int64, more bool, err error) {
		if err := send(ctx, tokens, struct{}{}); err != nil {
			return it, 0, false, err
		}
		takeMu.Lock()
		it, more, err = recv(ctx, in)
		if err != nil || !more {
			takeMu.Unlock()
			<-tokens // give back the token just taken
			return it, 0, false, err
		}
		idx = nextIdx
		nextIdx++
		takeMu.Unlock()
		s.in.Add(1)
		s.take()
		return it, idx, true, nil
	}
	for range o.workers {
		wg.Add(1)
		p.g.Go(func() error {
			defer wg.Done()
			for {
				it, idx, more, err := takeNext()
				if err != nil || !more {
					return err
				}
				res, ok, err := process(it)
				if err != nil {
					return err
				}
				if err := send(ctx, results, result{idx, res, ok}); err != nil {
					return err
				}
			}
		})
	}
	p.g.Go(func() error { wg.Wait(); close(results); return nil })
	p.g.Go(func() error { // reorderer
		defer close(out)
		ring := make([]result, W)
		filled := make([]bool, W)
		var next int64
		pending := 0
		for {
			r, more, err := recv(ctx, results)
			if err != nil {
				return err
			}
			if !more {
				if pending != 0 {
					return fmt.Errorf("pipeline: %s: internal error: %d results left in the reorder buffer", name, pending)
				}
				return nil
			}
			slot := r.idx % int64(W)
			if filled[slot] {
				return fmt.Errorf("pipeline: %s: internal error: reorder slot %d taken", name, slot)
			}
			ring[slot], filled[slot] = r, true
			pending++
			maxInto(&s.reorderPeak, int64(pending))
			for {
				k := next % int64(W)
				if !filled[k] {
					break
				}
				r := ring[k]
				ring[k], filled[k] = result{}, false
				pending--
				if r.ok {
					if err := emit(r.it); err != nil {
						return err
					}
				}
				s.done()
				next++
				<-tokens
			}
		}
	})
	return out
}

// Sink adds the final stage: one goroutine calls fn for every item of in, in the order
// they arrive (wrap the previous stage with Ordered for a deterministic order). An item
// for which fn returns nil counts as accepted. fn may return Drop (dropped, e.g. a
// duplicate) or Reject/Rejectf (rejected); any other error is an output failure and stops
// the run. Panics in fn are not recovered: a Sink owns output state that a panic leaves
// undefined.
func Sink[T any](p *Pipeline, name string, in <-chan Item[T], fn func(ctx context.Context, it Item[T]) error, opts ...Option) {
	o := p.options(opts)
	s := &stage{name: name, kind: "sink", workers: 1, bound: 1}
	p.addStage(s)
	ctx := p.ctx
	p.g.Go(func() error {
		for {
			it, more, err := recv(ctx, in)
			if err != nil || !more {
				return err
			}
			s.in.Add(1)
			s.take()
			t0 := time.Now()
			err = fn(ctx, it)
			s.busyNs.Add(int64(time.Since(t0)))
			if err == nil {
				s.out.Add(1)
				p.accepted.Add(1)
				if o.bytes != nil {
					s.bytes.Add(o.bytes(it.Value))
				}
			} else if err := p.settle(ctx, s, it.Source, err, false); err != nil {
				return err
			}
			s.done()
		}
	})
}

// recv receives from in, or returns ctx's error once the run is stopping. The first,
// non-blocking attempt saves the cost of a two-channel select when a value is ready;
// ctx is checked first so that a cancelled run stops taking work.
func recv[T any](ctx context.Context, in <-chan T) (v T, more bool, err error) {
	if err := ctx.Err(); err != nil {
		return v, false, err
	}
	select {
	case v, more = <-in:
		return v, more, nil
	default:
	}
	select {
	case v, more = <-in:
		return v, more, nil
	case <-ctx.Done():
		return v, false, ctx.Err()
	}
}

// send sends v on out, or returns ctx's error once the run is stopping (see recv).
func send[T any](ctx context.Context, out chan<- T, v T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case out <- v:
		return nil
	default:
	}
	select {
	case out <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// settle accounts for an item whose stage function returned err != nil. It returns nil when
// the item was dropped or rejected, and the error that must stop the run otherwise.
// plainRejects says whether an unmarked error rejects the item (Map) or is fatal (Sink).
func (p *Pipeline) settle(ctx context.Context, s *stage, source string, err error, plainRejects bool) error {
	var de *DropError
	var fe *fatalError
	var re *RejectError
	switch {
	case errors.As(err, &fe):
		return stageErr(ctx, s.name, fe.err)
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return ctx.Err()
	case errors.As(err, &de):
		p.drop(s, de.Reason)
		return nil
	case errors.As(err, &re) || plainRejects:
		return p.reject(s, asReject(s.name, source, err))
	}
	return stageErr(ctx, s.name, err)
}

// stageErr wraps a fatal error of stage name; cancellation errors pass unchanged.
func stageErr(ctx context.Context, name string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return ctx.Err()
	}
	return fmt.Errorf("pipeline: stage %s: %w", name, err)
}

// asReject turns err into a fresh *RejectError for stage and source. A *RejectError found
// in err's chain is copied (it may be a shared value), keeping a Stage or Source it set.
func asReject(stage, source string, err error) *RejectError {
	var re *RejectError
	if errors.As(err, &re) {
		c := *re
		if c.Stage == "" {
			c.Stage = stage
		}
		if c.Source == "" {
			c.Source = source
		}
		if c.Reason == "" {
			c.Reason = ReasonError
		}
		return &c
	}
	return &RejectError{Stage: stage, Reason: ReasonError, Source: source, Err: err}
}

// callMap calls fn, turning a panic into a reject with reason "panic".
func callMap[In, Out any](ctx context.Context, fn func(context.Context, In) (Out, error), v In) (out Out, err error) {
	defer func() {
		if r := recover(); r != nil {
			pe, _ := r.(error)
			err = &RejectError{Reason: ReasonPanic, Detail: fmt.Sprintf("panic: %v\n%s", r, panicStack()), Err: pe}
		}
	}()
	return fn(ctx, v)
}

// panicStack returns up to 6 frames of the panicking goroutine's stack, starting at the
// function that panicked, one "function (file:line)" per line.
func panicStack() string {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var b strings.Builder
	seenPanic := false
	kept := 0
	for kept < 6 {
		f, more := frames.Next()
		if f.Function == "runtime.gopanic" {
			seenPanic = true
		} else if seenPanic && !strings.HasPrefix(f.Function, "runtime.") {
			if strings.Contains(f.Function, "pipeline.callMap") {
				break
			}
			fmt.Fprintf(&b, "%s (%s:%d)\n", f.Function, shortFile(f.File), f.Line)
			kept++
		}
		if !more {
			break
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func shortFile(path string) string {
	// keep the last two path elements: "pipeline/stage.go"
	i := strings.LastIndexByte(path, '/')
	if i <= 0 {
		return path
	}
	if j := strings.LastIndexByte(path[:i], '/'); j >= 0 {
		return path[j+1:]
	}
	return path
}
