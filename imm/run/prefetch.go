package run

import (
	"sync"

	"github.com/immkit/immkit/shards"
)

// prefetcher reads and assembles batches ahead of the training loop in its own
// goroutine, so that batch n+1 is prepared while step n runs (on a GPU the device works
// asynchronously until the step's loss is read back, and assembling a batch of 256 takes
// milliseconds). Only its goroutine touches the loader. Each batch carries the loader
// position after it: what a checkpoint taken after that batch's step must save, however
// far the prefetcher has read.
type prefetcher struct {
	ready, free chan *prepared
	done        chan struct{}
	wg          sync.WaitGroup
}

// prepared is one assembled batch.
type prepared struct {
	x, mask []float32
	labels  []int32
	state   shards.State // the loader position after this batch
	err     error
}

// newPrefetcher starts the goroutine: next fills a batch of n values (x and mask) and
// returns its labels, state returns the loader position; depth batches are kept ready.
func newPrefetcher(n, depth int, next func(x, mask []float32) ([]int32, error), state func() shards.State) *prefetcher {
	p := &prefetcher{ready: make(chan *prepared, depth), free: make(chan *prepared, depth+1), done: make(chan struct{})}
	for range depth + 1 {
		p.free <- &prepared{x: make([]float32, n), mask: make([]float32, n)}
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			var b *prepared
			select {
			case <-p.done:
				return
			case b = <-p.free:
			}
			b.labels, b.err = next(b.x, b.mask)
			b.state = state()
			select {
			case <-p.done:
				return
			case p.ready <- b:
			}
			if b.err != nil {
				return
			}
		}
	}()
	return p
}

// next returns the next batch (its err set if reading it failed; no batch follows one
// with an error). The caller owns it until release.
func (p *prefetcher) next() *prepared { return <-p.ready }

// release gives a batch's buffers back for reuse.
func (p *prefetcher) release(b *prepared) { p.free <- b }

// stop ends the goroutine and waits for it; the loader may be closed after.
func (p *prefetcher) stop() {
	close(p.done)
	p.wg.Wait()
}
