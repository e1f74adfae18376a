package text

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Encoding is a byte-level BPE tokenizer: a vocabulary, a pre-tokeniser and special tokens.
// It is immutable after [New] and safe for concurrent use.
type Encoding struct {
	name     string
	pattern  Pattern
	split    splitter
	ranks    map[string]uint32
	table    rankTable
	byteRank [256]uint32
	special  map[string]int32
	first    [256]bool // first bytes of the special tokens
	// decode table: the bytes of token id are blob[span[id]>>24 : span[id]>>24 + span[id]&0xFFFFFF];
	// a zero length marks an unused id.
	blob  []byte
	span  []uint64
	nVoc  int // number of mergeable tokens
	maxID int32
	// states holds idle encode states for reuse. Unlike a sync.Pool it is not emptied by a
	// garbage collection, so the caches stay warm and the hot path does not reallocate them.
	states stateList
}

// Config describes an encoding to build.
type Config struct {
	Name    string           // e.g. "cl100k_base"; informational
	Pattern Pattern          // pre-tokeniser
	Ranks   Ranks            // mergeable tokens; must contain all 256 single bytes
	Special map[string]int32 // special tokens and their ids (not in Ranks)
}

// Standard encodings: their pattern and special tokens, as tiktoken defines them.
var standard = map[string]struct {
	pattern Pattern
	special map[string]int32
}{
	"cl100k_base": {PatternCL100k, map[string]int32{"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}},
	"o200k_base":  {PatternO200k, map[string]int32{"<|endoftext|>": 199999, "<|endofprompt|>": 200018}},
	"p50k_base":   {PatternGPT2, map[string]int32{"<|endoftext|>": 50256}},
	"p50k_edit":   {PatternGPT2, map[string]int32{"<|endoftext|>": 50256, "<|fim_prefix|>": 50281, "<|fim_middle|>": 50282, "<|fim_suffix|>": 50283}},
	"r50k_base":   {PatternGPT2, map[string]int32{"<|endoftext|>": 50256}},
	"gpt2":        {PatternGPT2, map[string]int32{"<|endoftext|>": 50256}},
}

// StandardNames lists the encodings [Standard] knows.
func StandardNames() []string {
	names := make([]string, 0, len(standard))
	for n := range standard {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Standard returns the configuration of a tiktoken encoding (cl100k_base, o200k_base,
// p50k_base, p50k_edit, r50k_base, gpt2) with the given ranks, read from its `.tiktoken` file.
func Standard(name string, ranks Ranks) (Config, error) {
	s, ok := standard[name]
	if !ok {
		return Config{}, fmt.Errorf("text: unknown encoding %q (known: %s)", name, strings.Join(StandardNames(), ", "))
	}
	return Config{Name: name, Pattern: s.pattern, Ranks: ranks, Special: maps(s.special)}, nil
}

func maps(m map[string]int32) map[string]int32 {
	c := make(map[string]int32, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// ErrUnknownToken is returned by decoding when an id is not in the vocabulary.
var ErrUnknownToken = errors.New("text: unknown token id")

// New builds an Encoding.
func New(c Config) (*Encoding, error) {
	sp := c.Pattern.splitter()
	if sp == nil {
		return nil, fmt.Errorf("text: unknown pattern %v", c.Pattern)
	}
	initClasses()
	e := &Encoding{name: c.Name, pattern: c.Pattern, split: sp, ranks: make(map[string]uint32, len(c.Ranks)), special: maps(c.Special), nVoc: len(c.Ranks)}
	for i := range e.byteRank {
		e.byteRank[i] = noRank
	}
	e.maxID = -1
	size := 0
	for t, r := range c.Ranks {
		if r < 0 || r >= maxRank || len(t) == 0 || len(t) >= 1<<24 {
			return nil, fmt.Errorf("text: token %q: rank %d or length out of range", t, r)
		}
		e.ranks[t] = uint32(r)
		if len(t) == 1 {
			e.byteRank[t[0]] = uint32(r)
		}
		e.maxID = max(e.maxID, r)
		size += len(t)
	}
	for b, r := range e.byteRank {
		if r == noRank {
			return nil, fmt.Errorf("text: byte 0x%02x has no rank; a byte-level vocabulary needs all 256 single bytes", b)
		}
	}
	for t, id := range e.special {
		if id < 0 || id >= maxRank || t == "" {
			return nil, fmt.Errorf("text: special token %q: id %d out of range", t, id)
		}
		e.maxID = max(e.maxID, id)
		size += len(t)
		e.first[t[0]] = true
	}
	e.span = make([]uint64, e.maxID+1)
	e.blob = make([]byte, 0, size)
	add := func(t string, id int32, what string) error {
		if e.span[id] != 0 {
			return fmt.Errorf("text: %s %q: id %d is already used", what, t, id)
		}
		e.span[id] = uint64(len(e.blob))<<24 | uint64(len(t))
		e.blob = append(e.blob, t...)
		return nil
	}
	for t, r := range c.Ranks {
		if err := add(t, r, "token"); err != nil {
			return nil, err
		}
	}
	for t, id := range e.special {
		if err := add(t, id, "special token"); err != nil {
			return nil, err
		}
	}
	e.table.init(len(c.Ranks))
	for t, r := range c.Ranks {
		e.table.insert(e.hash([]byte(t)), uint32(r))
	}
	return e, nil
}

// Name returns the encoding's name.
func (e *Encoding) Name() string { return e.name }

// Pattern returns the encoding's pre-tokeniser.
func (e *Encoding) Pattern() Pattern { return e.pattern }

// VocabSize returns the number of ids in use: mergeable tokens plus special tokens.
func (e *Encoding) VocabSize() int { return e.nVoc + len(e.special) }

// MaxID returns the largest id in use.
func (e *Encoding) MaxID() int32 { return e.maxID }

// Special returns a copy of the special tokens and their ids.
func (e *Encoding) Special() map[string]int32 { return maps(e.special) }

// Ranks returns a copy of the mergeable tokens and their ranks.
func (e *Encoding) Ranks() Ranks {
	r := make(Ranks, len(e.ranks))
	for t, v := range e.ranks {
		r[t] = int32(v)
	}
	return r
}

// TokenBytes returns the bytes of token id (mergeable or special), or nil if id is unused.
func (e *Encoding) TokenBytes(id int32) []byte {
	if id < 0 || int(id) >= len(e.span) {
		return nil
	}
	s := e.span[id]
	off, n := s>>24, s&0xFFFFFF
	if n == 0 {
		return nil
	}
	return e.blob[off : off+n : off+n]
}

// encodeState is the scratch space of one goroutine while it encodes: merge buffers, the
// pair and piece caches, and the id arena of a batch worker (about 600 KiB plus the arena).
type encodeState struct {
	merge   mergeState
	cache   pieceCache
	scratch []int32
	arena   []int32 // EncodeBatchInto: this worker's ids, document after document
}

// stateList is a free list of encode states, shared by the goroutines of one Encoding.
// It keeps at most maxIdle of them; a state is taken for a whole call (Encode, Count, one
// batch worker), so the lock is taken twice per call, never per piece.
type stateList struct {
	mu   sync.Mutex
	idle []*encodeState
}

// maxIdleArena bounds the id arena an idle state keeps (in ids: 32 MiB), so an Encoding
// holds at most that much per idle state after a batch of large documents.
const maxIdleArena = 8 << 20

func (l *stateList) get() *encodeState {
	l.mu.Lock()
	if n := len(l.idle); n > 0 {
		st := l.idle[n-1]
		l.idle[n-1] = nil
		l.idle = l.idle[:n-1]
		l.mu.Unlock()
		return st
	}
	l.mu.Unlock()
	return new(encodeState)
}

func (l *stateList) put(st *encodeState) {
	if cap(st.arena) > maxIdleArena {
		st.arena = nil
	}
	maxIdle := max(8, 2*runtime.GOMAXPROCS(0))
	l.mu.Lock()
	if len(l.idle) < maxIdle {
		l.idle = append(l.idle, st)
	}
	l.mu.Unlock()
}

// Encode appends the ids of text to dst, treating everything as ordinary text (special
// tokens' text included): tiktoken's encode_ordinary. It returns the extended slice.
func (e *Encoding) Encode(dst []int32, text []byte) []int32 {
	st := e.states.get()
	dst = e.encodeOrdinary(st, dst, text)
	e.states.put(st)
	return dst
}

// EncodeString is Encode for a string, into a new slice.
func (e *Encoding) EncodeString(s string) []int32 {
	return e.Encode(nil, []byte(s))
}

func (e *Encoding) encodeOrdinary(st *encodeState, dst []int32, text []byte) []int32 {
	split := e.split
	for i := 0; i < len(text); {
		j := split(text, i)
		dst = e.encodePiece(st, dst, text[i:j])
		i = j
	}
	return dst
}

// encodePiece appends the ids of one piece: the piece's own rank if it is a token, else the
// cached or freshly computed merge result.
func (e *Encoding) encodePiece(st *encodeState, dst []int32, piece []byte) []int32 {
	if len(piece) == 1 {
		return append(dst, int32(e.byteRank[piece[0]]))
	}
	h := e.hash(piece)
	if r := e.lookup(piece, h); r != noRank {
		return append(dst, int32(r))
	}
	if ids := st.cache.get(piece, h); ids != nil {
		return append(dst, ids...)
	}
	n0 := len(dst)
	dst = e.bytePairMerge(&st.merge, dst, piece)
	st.cache.put(piece, h, dst[n0:])
	return dst
}

// SpecialSet selects the special tokens that [Encoding.EncodeSpecial] recognises.
type SpecialSet struct {
	All   bool            // every special token of the encoding
	Names map[string]bool // or just these
}

// ParseSpecialSet reads "all", "none" (or "") or a comma-separated list of special tokens.
func (e *Encoding) ParseSpecialSet(s string) (SpecialSet, error) {
	switch s {
	case "all":
		return SpecialSet{All: true}, nil
	case "none", "":
		return SpecialSet{}, nil
	}
	set := SpecialSet{Names: map[string]bool{}}
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if _, ok := e.special[t]; !ok {
			return SpecialSet{}, fmt.Errorf("text: %q is not a special token of %s (it has %s)", t, e.name, strings.Join(slices.Sorted(keys(e.special)), ", "))
		}
		set.Names[t] = true
	}
	return set, nil
}

func keys(m map[string]int32) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (s SpecialSet) has(t string) bool { return s.All || s.Names[t] }

// EncodeSpecial appends the ids of text to dst, emitting the id of every special token in
// allowed where its text occurs (the leftmost, then longest, match) and encoding the rest as
// ordinary text: tiktoken's encode(text, allowed_special=allowed, disallowed_special=()).
func (e *Encoding) EncodeSpecial(dst []int32, text []byte, allowed SpecialSet) []int32 {
	if len(e.special) == 0 || (!allowed.All && len(allowed.Names) == 0) {
		return e.Encode(dst, text)
	}
	st := e.states.get()
	defer e.states.put(st)
	start := 0
	for i := 0; i < len(text); i++ {
		if !e.first[text[i]] {
			continue
		}
		best, bestID := "", int32(-1)
		for t, id := range e.special {
			if len(t) > len(best) && allowed.has(t) && len(text)-i >= len(t) && string(text[i:i+len(t)]) == t {
				best, bestID = t, id
			}
		}
		if bestID < 0 {
			continue
		}
		dst = e.encodeOrdinary(st, dst, text[start:i])
		dst = append(dst, bestID)
		i += len(best) - 1
		start = i + 1
	}
	return e.encodeOrdinary(st, dst, text[start:])
}

// Count returns the number of ids Encode would give for text, without keeping them.
func (e *Encoding) Count(text []byte) int {
	st := e.states.get()
	defer e.states.put(st)
	n := 0
	for i := 0; i < len(text); {
		j := e.split(text, i)
		st.scratch = e.encodePiece(st, st.scratch[:0], text[i:j])
		n += len(st.scratch)
		i = j
	}
	return n
}

// Batch holds the ids of a batch of documents in one arena, in the layout of an Arrow
// list<int32> column: the ids of document i are IDs[Offsets[i]:Offsets[i+1]], Offsets[0] == 0
// and len(Offsets) == number of documents + 1. A Batch is reused by passing it to
// [Encoding.EncodeBatchInto] again, which overwrites it and keeps its buffers' capacity.
type Batch struct {
	IDs     []int32 // all ids, document after document
	Offsets []int   // document boundaries in IDs

	where []docSpan // per document: the worker that encoded it and where in its arena
}

// docSpan locates one document's ids in a worker's arena: arena[start:end] of worker w.
type docSpan struct {
	w          int32
	start, end int
}

// Len returns the number of documents in b.
func (b *Batch) Len() int { return max(0, len(b.Offsets)-1) }

// Doc returns the ids of document i, a slice of b.IDs (capped, so appending copies).
func (b *Batch) Doc(i int) []int32 {
	lo, hi := b.Offsets[i], b.Offsets[i+1]
	return b.IDs[lo:hi:hi]
}

// EncodeBatch encodes docs as ordinary text on up to workers goroutines (0 means
// GOMAXPROCS) and returns their ids in the order of docs. The returned slices share one
// newly allocated array; [Encoding.EncodeBatchInto] reuses the caller's instead.
func (e *Encoding) EncodeBatch(docs [][]byte, workers int) [][]int32 {
	var b Batch
	e.encodeBatch(&b, docs, workers, true)
	out := make([][]int32, len(docs))
	for i := range out {
		out[i] = b.Doc(i)
	}
	return out
}

// EncodeBatchInto encodes docs as ordinary text on up to workers goroutines (0 means
// GOMAXPROCS) into b, in the order of docs, reusing b's buffers: once they are large enough
// it does not allocate. Each worker encodes whole documents into an arena of its own, kept
// with its encode state between calls; the arenas are then copied into b.IDs in order.
func (e *Encoding) EncodeBatchInto(b *Batch, docs [][]byte, workers int) {
	e.encodeBatch(b, docs, workers, false)
}

// encodeBatch fills b; fresh means b.IDs is allocated at its exact final size instead of
// reusing its capacity (EncodeBatch hands slices of it to the caller).
func (e *Encoding) encodeBatch(b *Batch, docs [][]byte, workers int, fresh bool) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(docs))
	b.Offsets = append(b.Offsets[:0], 0)
	if fresh {
		b.IDs = nil
	}
	if workers <= 1 {
		st := e.states.get()
		ids := b.IDs[:0]
		if fresh {
			// One document at a time into the state's arena, then one exact copy.
			ids = st.arena[:0]
		}
		for _, d := range docs {
			ids = e.encodeOrdinary(st, ids, d)
			b.Offsets = append(b.Offsets, len(ids))
		}
		if fresh {
			st.arena = ids[:0]
			ids = append([]int32(nil), ids...)
		}
		b.IDs = ids
		e.states.put(st)
		return
	}
	b.where = slices.Grow(b.where[:0], len(docs))[:len(docs)]
	states := make([]*encodeState, workers)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range states {
		st := e.states.get()
		states[w] = st
		wg.Add(1)
		go func() {
			defer wg.Done()
			arena := st.arena[:0]
			for {
				i := int(next.Add(1) - 1)
				if i >= len(docs) {
					break
				}
				start := len(arena)
				arena = e.encodeOrdinary(st, arena, docs[i])
				b.where[i] = docSpan{w: int32(w), start: start, end: len(arena)}
			}
			st.arena = arena
		}()
	}
	wg.Wait()
	for _, s := range b.where {
		b.Offsets = append(b.Offsets, b.Offsets[len(b.Offsets)-1]+s.end-s.start)
	}
	total := b.Offsets[len(docs)]
	if fresh {
		b.IDs = make([]int32, total)
	} else {
		b.IDs = slices.Grow(b.IDs[:0], total)[:total]
	}
	// Copy in parallel: worker w copies the documents it encoded.
	for w, st := range states {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, s := range b.where {
				if int(s.w) == w {
					copy(b.IDs[b.Offsets[i]:b.Offsets[i+1]], st.arena[s.start:s.end])
				}
			}
		}()
	}
	wg.Wait()
	for _, st := range states {
		e.states.put(st)
	}
}

// Decode appends the bytes of ids to dst. It fails on an id that is not in the vocabulary.
func (e *Encoding) Decode(dst []byte, ids []int32) ([]byte, error) {
	for k, id := range ids {
		b := e.TokenBytes(id)
		if b == nil {
			return dst, fmt.Errorf("%w: %d at position %d", ErrUnknownToken, id, k)
		}
		dst = append(dst, b...)
	}
	return dst, nil
}
