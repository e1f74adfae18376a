package text

import (
	"container/heap"
	"math"
)

const noRank = math.MaxUint32

// rankOf returns the rank of the byte sequence b, or noRank.
func (e *Encoding) rankOf(b []byte) uint32 {
	if len(b) == 1 {
		return e.byteRank[b[0]]
	}
	if r, ok := e.ranks[string(b)]; ok {
		return r
	}
	return noRank
}

// smallPiece bounds the pieces merged by the quadratic scan; longer pieces use a heap.
const smallPiece = 256

// mergeState is the per-goroutine scratch space of the merge.
type mergeState struct {
	starts []int    // start offset of each current part; starts[len] == len(piece)
	ranks  []uint32 // rank of merging part k with part k+1
	nodes  []node
	heap   pairHeap
}

// bytePairMerge appends the ids of piece (len >= 2, not itself a token) to dst. It merges
// the adjacent pair of lowest rank, the leftmost among equals, until no pair is a token:
// the result of tiktoken's byte_pair_merge.
func (e *Encoding) bytePairMerge(st *mergeState, dst []int32, piece []byte) []int32 {
	if len(piece) > smallPiece {
		return e.heapMerge(st, dst, piece)
	}
	n := len(piece)
	starts := st.starts[:0]
	ranks := st.ranks[:0]
	for i := 0; i < n; i++ {
		starts = append(starts, i)
	}
	starts = append(starts, n)
	for i := 0; i+1 < n; i++ {
		ranks = append(ranks, e.rankOf(piece[i:i+2]))
	}
	// ranks[k] is the rank of parts k and k+1 merged; len(ranks) == len(starts)-2.
	for len(ranks) > 0 {
		best, bi := uint32(noRank), -1
		for k, r := range ranks {
			if r < best {
				best, bi = r, k
			}
		}
		if bi < 0 {
			break
		}
		// Merge part bi+1 into part bi.
		copy(starts[bi+1:], starts[bi+2:])
		starts = starts[:len(starts)-1]
		copy(ranks[bi:], ranks[bi+1:])
		ranks = ranks[:len(ranks)-1]
		if bi < len(ranks) {
			ranks[bi] = e.rankOf(piece[starts[bi]:starts[bi+2]])
		}
		if bi > 0 {
			ranks[bi-1] = e.rankOf(piece[starts[bi-1]:starts[bi+1]])
		}
	}
	for k := 0; k+1 < len(starts); k++ {
		dst = append(dst, int32(e.rankOf(piece[starts[k]:starts[k+1]])))
	}
	st.starts, st.ranks = starts, ranks
	return dst
}

// node is one part of a long piece being merged: a doubly linked list in offset order.
type node struct {
	start, end int
	prev, next int32 // indices into nodes, -1 at the ends
	alive      bool
}

// pairEntry proposes merging node left with its successor, whose end was pairEnd.
type pairEntry struct {
	rank    uint32
	left    int32
	pairEnd int
}

type pairHeap []pairEntry

func (h pairHeap) Len() int { return len(h) }
func (h pairHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].left < h[j].left // node index order is offset order
}
func (h pairHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pairHeap) Push(x any)   { *h = append(*h, x.(pairEntry)) }
func (h *pairHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// heapMerge gives the same result as the quadratic scan in O(n log n): the heap is ordered by
// (rank, left offset), so it pops the leftmost lowest-rank pair; stale entries, whose nodes
// have since merged, are recognised by their end offset and skipped.
func (e *Encoding) heapMerge(st *mergeState, dst []int32, piece []byte) []int32 {
	n := len(piece)
	nodes := st.nodes[:0]
	for i := 0; i < n; i++ {
		nodes = append(nodes, node{start: i, end: i + 1, prev: int32(i - 1), next: int32(i + 1), alive: true})
	}
	nodes[n-1].next = -1
	h := st.heap[:0]
	for i := 0; i+1 < n; i++ {
		if r := e.rankOf(piece[i : i+2]); r != noRank {
			h = append(h, pairEntry{r, int32(i), i + 2})
		}
	}
	heap.Init(&h)
	for h.Len() > 0 {
		p := heap.Pop(&h).(pairEntry)
		l := &nodes[p.left]
		if !l.alive || l.next < 0 || nodes[l.next].end != p.pairEnd {
			continue
		}
		r := &nodes[l.next]
		l.end = r.end
		r.alive = false
		l.next = r.next
		if r.next >= 0 {
			nodes[r.next].prev = p.left
			if rk := e.rankOf(piece[l.start:nodes[r.next].end]); rk != noRank {
				heap.Push(&h, pairEntry{rk, p.left, nodes[r.next].end})
			}
		}
		if l.prev >= 0 {
			pl := &nodes[l.prev]
			if rk := e.rankOf(piece[pl.start:l.end]); rk != noRank {
				heap.Push(&h, pairEntry{rk, l.prev, l.end})
			}
		}
	}
	for k := int32(0); k >= 0; k = nodes[k].next {
		dst = append(dst, int32(e.rankOf(piece[nodes[k].start:nodes[k].end])))
	}
	st.nodes, st.heap = nodes, h
	return dst
}
