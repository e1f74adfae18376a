package text

import (
	"math"
	"slices"
)

const noRank = math.MaxUint32

// rankOf returns the rank of the byte sequence b, or noRank.
func (e *Encoding) rankOf(b []byte) uint32 {
	if len(b) == 1 {
		return e.byteRank[b[0]]
	}
	return e.lookup(b, e.hash(b))
}

// smallPiece bounds the pieces merged by the quadratic scan; longer pieces use a heap.
const smallPiece = 128

// mergeState is the per-goroutine scratch space of the merge.
type mergeState struct {
	pairs  pairCache
	starts []int    // quadratic scan: start offset of each part; starts[len-1] == len(piece)
	ranks  []uint32 // quadratic scan: rank of part k merged with part k+1
	toks   []uint32 // rank of each part's token
	next   []int32  // heap merge: start of the next part, len(piece) at the end
	prev   []int32  // heap merge: start of the previous part, -1 at the start
	pr     []uint32 // heap merge: rank of the part starting here merged with the next one
	q      rankQueue
}

// bytePairMerge appends the ids of piece (len >= 2, not itself a token) to dst. It merges
// the adjacent pair of lowest rank, the leftmost among equals, until no pair is a token:
// the result of tiktoken's byte_pair_merge.
func (e *Encoding) bytePairMerge(st *mergeState, dst []int32, piece []byte) []int32 {
	if len(piece) > smallPiece {
		return e.longMerge(st, dst, piece)
	}
	return e.scanMerge(st, dst, piece)
}

// scanMerge is tiktoken's algorithm: a linear scan for the lowest rank per merge.
func (e *Encoding) scanMerge(st *mergeState, dst []int32, piece []byte) []int32 {
	n := len(piece)
	starts, ranks, toks := st.starts[:0], st.ranks[:0], st.toks[:0]
	for i := 0; i < n; i++ {
		starts = append(starts, i)
		toks = append(toks, e.byteRank[piece[i]])
	}
	starts = append(starts, n)
	for i := 0; i+1 < n; i++ {
		ranks = append(ranks, e.pairRank(&st.pairs, toks[i], toks[i+1], piece[i:i+2]))
	}
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
		toks[bi] = best
		copy(toks[bi+1:], toks[bi+2:])
		toks = toks[:len(toks)-1]
		copy(starts[bi+1:], starts[bi+2:])
		starts = starts[:len(starts)-1]
		copy(ranks[bi:], ranks[bi+1:])
		ranks = ranks[:len(ranks)-1]
		if bi < len(ranks) {
			ranks[bi] = e.pairRank(&st.pairs, toks[bi], toks[bi+1], piece[starts[bi]:starts[bi+2]])
		}
		if bi > 0 {
			ranks[bi-1] = e.pairRank(&st.pairs, toks[bi-1], toks[bi], piece[starts[bi-1]:starts[bi+1]])
		}
	}
	for _, t := range toks {
		dst = append(dst, int32(t))
	}
	st.starts, st.ranks, st.toks = starts, ranks, toks
	return dst
}

// longMerge gives the same result as scanMerge in about linear time. Parts are a doubly
// linked list indexed by start offset. Candidate pairs wait in one bucket per rank; a small
// heap orders the ranks that have candidates, and each bucket is kept in offset order (sorted
// lazily, since merges append mostly in increasing order), so the next merge is always the
// leftmost pair of lowest rank. A candidate is stale when the part's current pair rank
// differs: a part only grows to the right, so its pair's bytes, and rank, never repeat.
func (e *Encoding) longMerge(st *mergeState, dst []int32, piece []byte) []int32 {
	n := len(piece)
	next, prev, pr, toks := grow(st.next, n), grow(st.prev, n), growU(st.pr, n), growU(st.toks, n)
	q := &st.q
	q.reset(int(e.maxID) + 1)
	for i := 0; i < n; i++ {
		next[i], prev[i], toks[i] = int32(i+1), int32(i-1), e.byteRank[piece[i]]
	}
	for i := 0; i+1 < n; i++ {
		pr[i] = e.pairRank(&st.pairs, toks[i], toks[i+1], piece[i:i+2])
		if pr[i] != noRank {
			q.push(pr[i], int32(i))
		}
	}
	pr[n-1] = noRank
	for {
		r, i, ok := q.pop()
		if !ok {
			break
		}
		if pr[i] != r {
			continue
		}
		j := next[i]
		toks[i] = r
		pr[j] = noRank
		nj := next[j]
		next[i] = nj
		if int(nj) < n {
			prev[nj] = i
			end := n
			if nn := next[nj]; int(nn) < n {
				end = int(nn)
			}
			pr[i] = e.pairRank(&st.pairs, r, toks[nj], piece[i:end])
			if pr[i] != noRank {
				q.push(pr[i], i)
			}
		} else {
			pr[i] = noRank
		}
		if p := prev[i]; p >= 0 {
			pr[p] = e.pairRank(&st.pairs, toks[p], r, piece[p:nj])
			if pr[p] != noRank {
				q.push(pr[p], p)
			}
		}
	}
	for i := int32(0); int(i) < n; i = next[i] {
		dst = append(dst, int32(toks[i]))
	}
	st.next, st.prev, st.pr, st.toks = next, prev, pr, toks
	return dst
}

// rankQueue is a priority queue of (rank, offset) with one bucket of offsets per rank.
type rankQueue struct {
	slot    []int32  // slot[rank] is 1 + the bucket index holding rank, 0 if none
	buckets []bucket // in use: those named by slot
	free    []int32  // bucket indices to reuse
	ranks   []uint64 // min-heap of the ranks that have a bucket
}

type bucket struct {
	rank   uint32
	pos    []int32 // offsets; pos[cur:] are pending
	cur    int
	sorted bool // pos[cur:] is in increasing order
}

func (q *rankQueue) reset(size int) {
	if len(q.slot) < size {
		q.slot = make([]int32, size)
	}
	for _, r := range q.ranks {
		q.release(uint32(r))
	}
	q.ranks = q.ranks[:0]
}

func (q *rankQueue) release(r uint32) {
	b := q.slot[r] - 1
	q.slot[r] = 0
	q.buckets[b].pos = q.buckets[b].pos[:0]
	q.free = append(q.free, b)
}

func (q *rankQueue) push(r uint32, p int32) {
	s := q.slot[r]
	if s == 0 {
		var b int32
		if k := len(q.free); k > 0 {
			b = q.free[k-1]
			q.free = q.free[:k-1]
		} else {
			b = int32(len(q.buckets))
			q.buckets = append(q.buckets, bucket{})
		}
		q.buckets[b].rank, q.buckets[b].cur, q.buckets[b].sorted = r, 0, true
		q.slot[r] = b + 1
		s = b + 1
		q.ranks = push(q.ranks, uint64(r))
	}
	bk := &q.buckets[s-1]
	if bk.sorted && len(bk.pos) > bk.cur && bk.pos[len(bk.pos)-1] > p {
		bk.sorted = false
	}
	bk.pos = append(bk.pos, p)
}

// pop removes the leftmost offset of the lowest rank.
func (q *rankQueue) pop() (uint32, int32, bool) {
	if len(q.ranks) == 0 {
		return 0, 0, false
	}
	r := uint32(q.ranks[0])
	bk := &q.buckets[q.slot[r]-1]
	if !bk.sorted {
		slices.Sort(bk.pos[bk.cur:])
		bk.sorted = true
	}
	p := bk.pos[bk.cur]
	bk.cur++
	if bk.cur == len(bk.pos) {
		q.release(r)
		last := len(q.ranks) - 1
		q.ranks[0] = q.ranks[last]
		q.ranks = q.ranks[:last]
		if last > 0 {
			siftDown(q.ranks, 0)
		}
	}
	return r, p, true
}

func grow(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	return s[:n]
}

func growU(s []uint32, n int) []uint32 {
	if cap(s) < n {
		return make([]uint32, n)
	}
	return s[:n]
}

func siftDown(h []uint64, k int) {
	n := len(h)
	x := h[k]
	for {
		c := 2*k + 1
		if c >= n {
			break
		}
		if c+1 < n && h[c+1] < h[c] {
			c++
		}
		if h[c] >= x {
			break
		}
		h[k] = h[c]
		k = c
	}
	h[k] = x
}

func push(h []uint64, x uint64) []uint64 {
	h = append(h, x)
	k := len(h) - 1
	for k > 0 {
		p := (k - 1) / 2
		if h[p] <= x {
			break
		}
		h[k] = h[p]
		k = p
	}
	h[k] = x
	return h
}
