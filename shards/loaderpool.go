package shards

import (
	"math/bits"
	"sync"
)

// bufferPool is an arrow memory.Allocator that keeps freed buffers and hands them out
// again, so the loader's row group reads through pqarrow (keys, tokens) reuse the memory
// of the previous row group instead of allocating, faulting in and garbage-collecting
// fresh buffers for every one. Buffers have power-of-two capacities; at most poolDepth
// are kept per capacity. Allocate and Reallocate return zeroed bytes, as arrow's Go
// allocator does.
type bufferPool struct {
	mu   sync.Mutex
	free [64][][]byte // free[c]: buffers of capacity 1<<c
}

const poolDepth = 16

func sizeClass(n int) int { return bits.Len(uint(n - 1)) }

// Allocate returns a zeroed buffer of length size.
func (p *bufferPool) Allocate(size int) []byte {
	if size <= 0 {
		return []byte{}
	}
	c := sizeClass(size)
	p.mu.Lock()
	if l := p.free[c]; len(l) > 0 {
		b := l[len(l)-1]
		p.free[c] = l[:len(l)-1]
		p.mu.Unlock()
		b = b[:size]
		clear(b)
		return b
	}
	p.mu.Unlock()
	return make([]byte, size, 1<<c)
}

// Reallocate resizes b to size, keeping its contents; new bytes are zero.
func (p *bufferPool) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) {
		old := len(b)
		b = b[:size]
		if size > old {
			clear(b[old:])
		}
		return b
	}
	nb := p.Allocate(size)
	copy(nb, b)
	p.Free(b)
	return nb
}

// Free returns b to the pool if it has a pool capacity and the pool has room.
func (p *bufferPool) Free(b []byte) {
	c := cap(b)
	if c == 0 || c&(c-1) != 0 {
		return
	}
	k := sizeClass(c)
	p.mu.Lock()
	if len(p.free[k]) < poolDepth {
		p.free[k] = append(p.free[k], b[:0])
	}
	p.mu.Unlock()
}
