package text

import (
	"container/heap"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
)

// TrainConfig says what vocabulary [Train] learns.
type TrainConfig struct {
	// VocabSize is the number of ids of the result: 256 single bytes, the learned merges and
	// the special tokens.
	VocabSize int
	// Pattern pre-tokenises the corpus; merges never cross piece boundaries.
	Pattern Pattern
	// Special tokens get the ids after the mergeable tokens, in this order.
	Special []string
	// MinFrequency stops training when the best pair occurs fewer times (0 or 1: no limit).
	MinFrequency int64
	// Workers counts pieces in parallel (0 means GOMAXPROCS).
	Workers int
}

// Trained is the result of [Train].
type Trained struct {
	Ranks   Ranks            // bytes 0..255 have ranks 0..255, then merges in the order learned
	Special map[string]int32 // special token ids, after the ranks
	Merges  [][2]string      // the merges, in order: each pair's two tokens
}

// ErrVocabSize is returned when the requested vocabulary is smaller than the byte alphabet.
var ErrVocabSize = errors.New("text: vocabulary size must be at least 256 plus the special tokens")

// Train learns a byte-level BPE vocabulary from docs. It counts the distinct pieces of the
// pre-tokenised corpus, then repeatedly merges the most frequent adjacent pair of tokens
// (counted over all pieces, weighted by piece frequency), breaking ties by the smaller pair
// (left id, then right id). The result is deterministic. A merge whose bytes already form a
// token (another split of the same bytes) is applied but adds no id.
func Train(cfg TrainConfig, docs [][]byte) (*Trained, error) {
	target := cfg.VocabSize - len(cfg.Special)
	if target < 256 {
		return nil, fmt.Errorf("%w: got %d with %d special tokens", ErrVocabSize, cfg.VocabSize, len(cfg.Special))
	}
	sp := cfg.Pattern.splitter()
	if sp == nil {
		return nil, fmt.Errorf("text: unknown pattern %v", cfg.Pattern)
	}
	initClasses()
	counts := countPieces(sp, docs, cfg.Workers)
	t := newTrainer(counts)
	tr := &Trained{Ranks: make(Ranks, target), Special: map[string]int32{}}
	for b := range 256 {
		tr.Ranks[string([]byte{byte(b)})] = int32(b)
	}
	for len(tr.Ranks) < target {
		p, n, ok := t.best()
		if !ok || n < max(cfg.MinFrequency, 1) {
			break
		}
		a, b := int32(p>>32), int32(uint32(p))
		tok := t.tokens[a] + t.tokens[b]
		id, seen := t.byBytes[tok]
		if !seen {
			id = int32(len(t.tokens))
			t.tokens = append(t.tokens, tok)
			t.byBytes[tok] = id
			tr.Ranks[tok] = int32(len(tr.Ranks))
		}
		tr.Merges = append(tr.Merges, [2]string{t.tokens[a], t.tokens[b]})
		t.merge(a, b, id)
	}
	for i, s := range cfg.Special {
		if _, dup := tr.Special[s]; dup || s == "" {
			return nil, fmt.Errorf("text: special token %q is empty or repeated", s)
		}
		tr.Special[s] = int32(len(tr.Ranks) + i)
	}
	// Token ids inside the trainer follow creation order, which is also rank order; the
	// returned ranks are dense.
	return tr, nil
}

// countPieces returns the distinct pieces of docs and their frequencies.
func countPieces(sp splitter, docs [][]byte, workers int) map[string]int64 {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	// Cut the corpus into jobs of about 1 MiB at piece boundaries.
	type job struct{ b []byte }
	var jobs []job
	for _, d := range docs {
		for i := 0; i < len(d); {
			j := i
			for j < len(d) && j-i < 1<<20 {
				j = sp(d, j)
			}
			jobs = append(jobs, job{d[i:j]})
			i = j
		}
	}
	parts := make([]map[string]int64, workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := make(map[string]int64, 1<<16)
			for {
				mu.Lock()
				k := next
				next++
				mu.Unlock()
				if k >= len(jobs) {
					break
				}
				b := jobs[k].b
				for i := 0; i < len(b); {
					j := sp(b, i)
					m[string(b[i:j])]++
					i = j
				}
			}
			parts[w] = m
		}()
	}
	wg.Wait()
	all := parts[0]
	for _, m := range parts[1:] {
		for k, v := range m {
			all[k] += v
		}
	}
	return all
}

type pairKey = uint64

func pk(a, b int32) pairKey { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

type trainer struct {
	words   [][]int32 // symbols of each distinct piece
	freq    []int64   // frequency of each piece
	counts  map[pairKey]int64
	where   map[pairKey][]int32 // words that contained the pair when it was counted (may be stale)
	stamp   []int32             // last merge that visited each word
	round   int32
	h       pairQueue
	tokens  []string // bytes of each id
	byBytes map[string]int32
}

func newTrainer(pieces map[string]int64) *trainer {
	keys := make([]string, 0, len(pieces))
	for k := range pieces {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic word order
	t := &trainer{counts: make(map[pairKey]int64, 1<<16), where: make(map[pairKey][]int32, 1<<16), byBytes: map[string]int32{}}
	for b := range 256 {
		s := string([]byte{byte(b)})
		t.tokens = append(t.tokens, s)
		t.byBytes[s] = int32(b)
	}
	t.words = make([][]int32, len(keys))
	t.freq = make([]int64, len(keys))
	t.stamp = make([]int32, len(keys))
	for i, k := range keys {
		w := make([]int32, len(k))
		for j := range len(k) {
			w[j] = int32(k[j])
		}
		t.words[i], t.freq[i] = w, pieces[k]
		for j := 0; j+1 < len(w); j++ {
			p := pk(w[j], w[j+1])
			t.counts[p] += t.freq[i]
			if l := t.where[p]; len(l) == 0 || l[len(l)-1] != int32(i) {
				t.where[p] = append(l, int32(i))
			}
		}
	}
	t.h = make(pairQueue, 0, len(t.counts))
	for p, n := range t.counts {
		t.h = append(t.h, pairCount{p, n})
	}
	heap.Init(&t.h)
	return t
}

// best returns the most frequent pair (smallest pair on ties) and its count.
func (t *trainer) best() (pairKey, int64, bool) {
	for t.h.Len() > 0 {
		top := t.h[0]
		cur := t.counts[top.p]
		if cur == top.n {
			return top.p, cur, true
		}
		heap.Pop(&t.h)
		if cur > 0 && top.n > cur {
			heap.Push(&t.h, pairCount{top.p, cur})
		}
	}
	return 0, 0, false
}

func (t *trainer) add(p pairKey, delta int64, w int32) {
	n := t.counts[p] + delta
	if n == 0 {
		delete(t.counts, p)
	} else {
		t.counts[p] = n
	}
	if delta > 0 {
		heap.Push(&t.h, pairCount{p, n})
		if l := t.where[p]; len(l) == 0 || l[len(l)-1] != w {
			t.where[p] = append(l, w)
		}
	}
}

// merge replaces every occurrence of (a, b) by id and updates the pair counts.
func (t *trainer) merge(a, b, id int32) {
	t.round++
	p := pk(a, b)
	ws := t.where[p]
	delete(t.where, p)
	for _, wi := range ws {
		if t.stamp[wi] == t.round {
			continue
		}
		t.stamp[wi] = t.round
		w, f := t.words[wi], t.freq[wi]
		out := w[:0]
		for i := 0; i < len(w); {
			if i+1 < len(w) && w[i] == a && w[i+1] == b {
				t.add(p, -f, wi)
				if len(out) > 0 {
					prev := out[len(out)-1]
					t.add(pk(prev, a), -f, wi)
					t.add(pk(prev, id), f, wi)
				}
				if i+2 < len(w) {
					next := w[i+2]
					t.add(pk(b, next), -f, wi)
					t.add(pk(id, next), f, wi)
				}
				out = append(out, id)
				i += 2
				continue
			}
			out = append(out, w[i])
			i++
		}
		t.words[wi] = out
	}
	delete(t.counts, p)
}

type pairCount struct {
	p pairKey
	n int64
}

// pairQueue is a max-heap on count, then the smaller pair.
type pairQueue []pairCount

func (q pairQueue) Len() int { return len(q) }
func (q pairQueue) Less(i, j int) bool {
	if q[i].n != q[j].n {
		return q[i].n > q[j].n
	}
	return q[i].p < q[j].p
}
func (q pairQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *pairQueue) Push(x any)   { *q = append(*q, x.(pairCount)) }
func (q *pairQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
