package shards

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"golang.org/x/sync/semaphore"

	"github.com/immkit/immkit/internal/pqsafe"
)

// LoaderOptions configures a Loader. Zero values give a single-rank loader over the train
// split, one epoch, batches of 64.
type LoaderOptions struct {
	Split       string // SplitTrain (default) or SplitVal
	Seed        uint64 // order seed
	GlobalBatch int    // samples per step over all ranks; default 64
	Rank, World int    // this rank and the number of ranks; World defaults to 1
	// ShuffleBlock is the shuffle buffer in samples: positions are shuffled within blocks
	// of this many consecutive samples of the shard-permuted stream. Default 8192.
	ShuffleBlock int
	// Prefetch bounds the decoded batches queued ahead of the consumer, in bytes (the batch
	// being consumed counts until the next call to Next). At least one batch is always
	// queued. Default 64 MiB.
	Prefetch int64
	Columns  []string       // columns to load (latent, token, float-list and int32 columns); nil means all
	SeqLen   map[string]int // padded length of token and float-list columns; absent or 0 means the longest in the batch
	Epochs   int            // epochs to stream before io.EOF; 0 means no end
	DropLast bool           // drop the last, partial global batch of each epoch
	// ReuseBatches recycles the buffers of the batch returned by Next at the following
	// call to Next, which saves allocating and clearing every batch; the caller must not
	// keep a batch (or its slices) past the next call.
	ReuseBatches bool
	// NoVerify skips checking a shard's size and sha256 against the manifest the first
	// time this loader opens it. The check costs one extra sequential read of each shard
	// per Loader and turns a damaged shard (a flipped byte, a cut tail) into an error
	// wrapping ErrMismatch that names the shard, where Parquet alone may decode it into
	// wrong samples without a word.
	NoVerify bool
}

// Batch is this rank's part of one global batch. Row i of every field is the same sample.
type Batch struct {
	Epoch     int
	Step      int     // global batch index within the epoch
	Positions []int64 // Positions[i]: position of row i in the epoch's global order
	Keys      []string
	Latents   map[string]*Latent // fixed_size_list<float16|float32> columns
	Tokens    map[string]*Tokens // list<int32> columns
	Floats    map[string]*Floats // list<float32> columns (audio_mel)
	Ints      map[string][]int32 // int32 columns (label_id), Ints[name][i]
}

// Len is the number of samples in the batch.
func (b *Batch) Len() int { return len(b.Keys) }

// Latent is a batch of fixed-shape tensors decoded to float32.
type Latent struct {
	Shape []int // per-sample shape: the column's "shape" metadata (C,H,W), else [Size]
	Size  int   // elements per sample, the product of Shape
	// Data holds sample i at Data[i*Size : (i+1)*Size], row-major in Shape (for C,H,W:
	// Data[i*Size + (c*H+h)*W + w]). Null values are zeros.
	Data []float32
}

// Tokens is a batch of token sequences padded to a common length.
type Tokens struct {
	SeqLen int
	// IDs holds sample i at IDs[i*SeqLen : (i+1)*SeqLen]; positions at or past Lengths[i]
	// are 0. Sequences longer than SeqLen are truncated.
	IDs     []int32
	Lengths []int32 // Lengths[i]: tokens of sample i kept, <= SeqLen
}

// Floats is a batch of float32 lists padded with zeros to a common length.
type Floats struct {
	Len int // values per sample: LoaderOptions.SeqLen[name] when > 0, else the longest list in the batch
	// Data holds sample i at Data[i*Len : (i+1)*Len]; values at or past Lengths[i] are 0.
	// Lists longer than Len are truncated.
	Data    []float32
	Lengths []int32 // Lengths[i]: values of sample i kept, <= Len (0 for a null list)
}

// State is a loader position: the next global batch to deliver. It does not depend on the
// rank or the world size, so it can be saved by one rank and restored on any rank of a
// world of any size with the same GlobalBatch.
type State struct {
	Epoch       int    `json:"epoch"`
	Step        int    `json:"step"` // next global batch within Epoch
	Seed        uint64 `json:"seed"`
	GlobalBatch int    `json:"global_batch"`
	Split       string `json:"split"`
	Dataset     string `json:"dataset"` // hash of the split's shard hashes
}

// ErrState is returned by Resume for a state that belongs to another configuration.
var ErrState = errors.New("shards: loader state does not match the loader")

type colKind int

const (
	kindLatent colKind = iota
	kindTokens
	kindFloats
	kindInt32
)

type loadCol struct {
	name  string
	kind  colKind
	size  int // latent elements per sample
	shape []int
	f16   bool
}

// Loader streams batches of one split of a dataset for one rank. Next, State, Resume and
// Close are not safe for concurrent use; one background goroutine reads ahead.
type Loader struct {
	dir      string
	opts     LoaderOptions
	shards   []Shard
	rows     []int64
	n        int64 // samples per epoch
	steps    int64 // global batches per epoch
	cols     []loadCol
	dataset  string
	verified []bool // verified[i]: shard i matched the manifest (used by the reader goroutine only)

	pos      State // next batch to hand out
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	batches  chan queued
	budget   *semaphore.Weighted
	held     int64       // budget held by the batch last returned
	last     *Batch      // batch last returned, recycled at the next Next when ReuseBatches
	free     chan *Batch // recycled batches for the reader
	err      error       // sticky
	finished bool
}

type queued struct {
	b    *Batch
	cost int64
	err  error
}

// NewLoader opens the dataset in dir for reading with opts. It reads the manifest and the
// schema of the first shard; reading starts at the first call to Next.
func NewLoader(dir string, opts LoaderOptions) (*Loader, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if opts.Split == "" {
		opts.Split = SplitTrain
	}
	if opts.GlobalBatch == 0 {
		opts.GlobalBatch = 64
	}
	if opts.World == 0 {
		opts.World = 1
	}
	if opts.ShuffleBlock == 0 {
		opts.ShuffleBlock = 8192
	}
	if opts.Prefetch == 0 {
		opts.Prefetch = 64 << 20
	}
	switch {
	case opts.Split != SplitTrain && opts.Split != SplitVal:
		return nil, fmt.Errorf("shards: loader split %q is neither %q nor %q", opts.Split, SplitTrain, SplitVal)
	case opts.GlobalBatch < 0 || opts.World < 0 || opts.ShuffleBlock < 0 || opts.Prefetch < 0 || opts.Epochs < 0:
		return nil, errors.New("shards: negative loader option")
	case opts.Rank < 0 || opts.Rank >= opts.World:
		return nil, fmt.Errorf("shards: rank %d outside world of %d", opts.Rank, opts.World)
	case opts.GlobalBatch%opts.World != 0:
		return nil, fmt.Errorf("shards: global batch %d is not a multiple of the world size %d", opts.GlobalBatch, opts.World)
	}
	l := &Loader{dir: dir, opts: opts, shards: m.SplitShards(opts.Split)}
	l.verified = make([]bool, len(l.shards))
	if len(l.shards) == 0 {
		return nil, fmt.Errorf("shards: %s has no %s shards", dir, opts.Split)
	}
	h := sha256.New()
	for _, s := range l.shards {
		l.rows = append(l.rows, s.Rows)
		l.n += s.Rows
		h.Write([]byte(s.SHA256))
	}
	l.dataset = hex.EncodeToString(h.Sum(nil))[:32]
	l.steps = (l.n + int64(opts.GlobalBatch) - 1) / int64(opts.GlobalBatch)
	if opts.DropLast {
		l.steps = l.n / int64(opts.GlobalBatch)
	}
	if l.steps == 0 {
		return nil, fmt.Errorf("shards: the %s split has %d samples, less than one global batch of %d with DropLast", opts.Split, l.n, opts.GlobalBatch)
	}
	if l.cols, err = l.columns(); err != nil {
		return nil, err
	}
	l.pos = State{Seed: opts.Seed, GlobalBatch: opts.GlobalBatch, Split: opts.Split, Dataset: l.dataset}
	return l, nil
}

// StepsPerEpoch is the number of global batches in an epoch.
func (l *Loader) StepsPerEpoch() int { return int(l.steps) }

// Samples is the number of samples of the split (one epoch).
func (l *Loader) Samples() int64 { return l.n }

// columns picks the loadable columns from the first shard's schema.
func (l *Loader) columns() ([]loadCol, error) {
	pf, err := openParquet(filepath.Join(l.dir, filepath.FromSlash(l.shards[0].Path)), 0)
	if err != nil {
		return nil, err
	}
	sc, err := pf.Arrow.Schema()
	pf.Close()
	if err != nil {
		return nil, fmt.Errorf("shards: schema of %s: %w", l.shards[0].Path, err)
	}
	var out []loadCol
	for _, f := range sc.Fields() {
		c := loadCol{name: f.Name}
		switch t := f.Type.(type) {
		case *arrow.FixedSizeListType:
			switch t.Elem().ID() {
			case arrow.FLOAT16:
				c.f16 = true
			case arrow.FLOAT32:
			default:
				continue
			}
			c.kind, c.size = kindLatent, int(t.Len())
			c.shape = []int{c.size}
			if s, ok := f.Metadata.GetValue("shape"); ok {
				if shape, ok := parseShape(s); ok && prod(shape) == c.size {
					c.shape = shape
				}
			}
		case *arrow.ListType, *arrow.LargeListType:
			switch t.(arrow.ListLikeType).Elem().ID() {
			case arrow.INT32:
				c.kind = kindTokens
			case arrow.FLOAT32:
				c.kind = kindFloats
			default:
				continue
			}
		default:
			if f.Type.ID() != arrow.INT32 {
				continue
			}
			c.kind = kindInt32
		}
		if l.opts.Columns != nil && !slices.Contains(l.opts.Columns, f.Name) {
			continue
		}
		out = append(out, c)
	}
	for _, name := range l.opts.Columns {
		if !slices.ContainsFunc(out, func(c loadCol) bool { return c.name == name }) {
			return nil, fmt.Errorf("shards: column %q is not a loadable column (fixed_size_list<float16|float32>, list<int32>, list<float32> or int32) of %s", name, l.dir)
		}
	}
	return out, nil
}

func parseShape(s string) ([]int, bool) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v <= 0 {
			return nil, false
		}
		out = append(out, v)
	}
	return out, len(out) > 0
}

func prod(s []int) int {
	p := 1
	for _, v := range s {
		p *= v
	}
	return p
}

// State returns the position after the last batch Next returned.
func (l *Loader) State() State { return l.pos }

// Resume moves the loader to s: the next batch is global batch s.Step of epoch s.Epoch,
// sliced for this loader's rank. s must come from a loader with the same seed, global
// batch, split and dataset; the world size may differ.
func (l *Loader) Resume(s State) error {
	switch {
	case s.Seed != l.opts.Seed, s.GlobalBatch != l.opts.GlobalBatch, s.Split != l.opts.Split, s.Dataset != l.dataset:
		return fmt.Errorf("%w: state %+v, loader seed %d global batch %d split %s dataset %s", ErrState, s, l.opts.Seed, l.opts.GlobalBatch, l.opts.Split, l.dataset)
	case s.Epoch < 0 || s.Step < 0 || int64(s.Step) > l.steps:
		return fmt.Errorf("%w: epoch %d step %d outside an epoch of %d steps", ErrState, s.Epoch, s.Step, l.steps)
	}
	l.stop()
	l.pos, l.err, l.finished = s, nil, false
	return nil
}

// Next returns this rank's part of the next global batch, or io.EOF after opts.Epochs
// epochs. Errors are sticky.
func (l *Loader) Next() (*Batch, error) {
	if l.err != nil {
		return nil, l.err
	}
	if l.held > 0 {
		l.budget.Release(l.held)
		l.held = 0
	}
	if l.last != nil {
		select {
		case l.free <- l.last:
		default:
		}
		l.last = nil
	}
	if l.batches == nil {
		l.start()
	}
	q, ok := <-l.batches
	if !ok {
		l.err = io.EOF
		return nil, io.EOF
	}
	if q.err != nil {
		l.err = q.err
		return nil, q.err
	}
	l.held = q.cost
	if l.opts.ReuseBatches {
		l.last = q.b
	}
	l.pos.Epoch, l.pos.Step = q.b.Epoch, q.b.Step+1
	if int64(l.pos.Step) == l.steps {
		l.pos.Epoch, l.pos.Step = l.pos.Epoch+1, 0
	}
	return q.b, nil
}

// Close stops the reader goroutine and waits for it. The loader can be resumed afterwards.
func (l *Loader) Close() error {
	l.stop()
	return nil
}

func (l *Loader) stop() {
	if l.cancel != nil {
		l.cancel()
		for range l.batches {
		}
		l.wg.Wait()
	}
	l.cancel, l.batches, l.budget, l.held, l.last, l.free = nil, nil, nil, 0, nil, nil
}

func (l *Loader) start() {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.batches = make(chan queued, 64)
	l.budget = semaphore.NewWeighted(l.opts.Prefetch)
	l.free = make(chan *Batch, 4)
	free := l.free
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(l.batches)
		r := &reader{l: l, files: map[int]*parquetFile{}, free: free, stage: map[string][]int32{}, fstage: map[string][]float32{}}
		defer r.close()
		err := func() (err error) {
			defer pqsafe.Recover(&err, l.dir)
			return r.run(ctx, l.pos.Epoch, l.pos.Step)
		}()
		if err != nil && ctx.Err() == nil {
			select {
			case l.batches <- queued{err: err}:
			case <-ctx.Done():
			}
		}
	}()
}

// reader is the state of the background goroutine.
type reader struct {
	l     *Loader
	files map[int]*parquetFile
	ord   *epochOrder

	// The decoded samples of the current block that this rank needs, by slot. Slots are
	// numbered in stream order, so the rows a row group gives to the block fill
	// consecutive slots and its latent pages are copied out in one sweep.
	blk     int64   // current block, -1 none
	blkLo   int64   // first position of the block
	slotOf  []int32 // position - blkLo -> slot, -1 if not needed
	keys    []string
	lat     [][]float32 // per float32 latent column: slot*size
	latBits [][]uint16  // per float16 latent column: slot*size half bit patterns
	tokOff  [][]int32   // per token column: offsets by slot (len slots+1)
	tokVal  [][]int32
	fltOff  [][]int32 // per float-list column: offsets by slot (len slots+1)
	fltVal  [][]float32
	ints    [][]int32
	reqs    []request
	rgRows  []int64 // rows (relative to the row group) of the requests being decoded

	// The key and non-latent columns (l.cols order) of the record batch being decoded, and
	// the last row group read whole in one batch, kept (lastRec, its shard and row group).
	recCols []arrow.Array
	lastRec arrow.RecordBatch
	lastRG  [2]int

	// Per latent column (l.cols order): the page reader, and the general reader's chunk
	// with the shard and row group it holds (for chunks the page reader does not take).
	pages   []*latentPages
	chunks  []*latentChunk
	chunkRG [][2]int

	pool   bufferPool           // memory of the pqarrow row group reads
	free   chan *Batch          // recycled batches (ReuseBatches)
	stage  map[string][]int32   // unpadded token values of the batch being filled
	fstage map[string][]float32 // unpadded float-list values of the batch being filled
}

func (r *reader) close() {
	for _, f := range r.files {
		f.Close()
	}
	r.releaseRecord()
}

func (r *reader) run(ctx context.Context, epoch, step int) error {
	l := r.l
	B, w, rank := l.opts.GlobalBatch, l.opts.World, l.opts.Rank
	for ; l.opts.Epochs == 0 || epoch < l.opts.Epochs; epoch, step = epoch+1, 0 {
		r.ord = newEpochOrder(l.opts.Seed, epoch, l.rows, l.opts.ShuffleBlock)
		r.blk = -1
		for ; int64(step) < l.steps; step++ {
			lo, hi := rankRange(int64(step), B, rank, w, l.n)
			b := r.newBatch(epoch, step, int(hi-lo))
			for p := lo; p < hi; p++ {
				if blk := p / int64(l.opts.ShuffleBlock); blk != r.blk {
					if err := r.loadBlock(ctx, blk, p); err != nil {
						return err
					}
				}
				r.emit(b, int(p-lo), p)
			}
			r.finishBatch(b)
			cost := batchBytes(b)
			if err := l.budget.Acquire(ctx, min(cost, l.opts.Prefetch)); err != nil {
				return err
			}
			select {
			case l.batches <- queued{b: b, cost: min(cost, l.opts.Prefetch)}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

func (r *reader) newBatch(epoch, step, n int) *Batch {
	for k := range r.stage {
		r.stage[k] = r.stage[k][:0]
	}
	for k := range r.fstage {
		r.fstage[k] = r.fstage[k][:0]
	}
	select {
	case b := <-r.free:
		b.Epoch, b.Step = epoch, step
		b.Positions, b.Keys = resize(b.Positions, n), resize(b.Keys, n)
		for _, c := range r.l.cols {
			switch c.kind {
			case kindLatent:
				l := b.Latents[c.name]
				l.Data = resize(l.Data, n*c.size)
			case kindTokens:
				t := b.Tokens[c.name]
				t.Lengths = resize(t.Lengths, n)
			case kindFloats:
				f := b.Floats[c.name]
				f.Lengths = resize(f.Lengths, n)
			case kindInt32:
				b.Ints[c.name] = resize(b.Ints[c.name], n)
			}
		}
		return b
	default:
	}
	b := &Batch{Epoch: epoch, Step: step, Positions: make([]int64, n), Keys: make([]string, n),
		Latents: map[string]*Latent{}, Tokens: map[string]*Tokens{}, Floats: map[string]*Floats{}, Ints: map[string][]int32{}}
	for _, c := range r.l.cols {
		switch c.kind {
		case kindLatent:
			b.Latents[c.name] = &Latent{Shape: c.shape, Size: c.size, Data: make([]float32, n*c.size)}
		case kindTokens:
			b.Tokens[c.name] = &Tokens{Lengths: make([]int32, n)}
		case kindFloats:
			b.Floats[c.name] = &Floats{Lengths: make([]int32, n)}
		case kindInt32:
			b.Ints[c.name] = make([]int32, n)
		}
	}
	return b
}

func batchBytes(b *Batch) int64 {
	n := int64(len(b.Positions)) * 8
	for _, k := range b.Keys {
		n += int64(len(k)) + 16
	}
	for _, v := range b.Latents {
		n += int64(len(v.Data)) * 4
	}
	for _, v := range b.Tokens {
		n += int64(len(v.IDs)+len(v.Lengths)) * 4
	}
	for _, v := range b.Floats {
		n += int64(len(v.Data)+len(v.Lengths)) * 4
	}
	for _, v := range b.Ints {
		n += int64(len(v)) * 4
	}
	return n
}

// emit copies the sample at position p into row i of b. Token and float-list values are
// staged unpadded (Lengths holds the full lengths) until finishBatch lays them out.
func (r *reader) emit(b *Batch, i int, p int64) {
	s := int(r.slotOf[p-r.blkLo])
	b.Positions[i] = p
	b.Keys[i] = r.keys[s]
	li, ti, fi, ii := 0, 0, 0, 0
	for _, c := range r.l.cols {
		switch c.kind {
		case kindLatent:
			dst := b.Latents[c.name].Data[i*c.size : (i+1)*c.size]
			if c.f16 {
				Float16ToFloat32(dst, r.latBits[li][s*c.size:(s+1)*c.size])
			} else {
				copy(dst, r.lat[li][s*c.size:(s+1)*c.size])
			}
			li++
		case kindTokens:
			t := b.Tokens[c.name]
			toks := r.tokVal[ti][r.tokOff[ti][s]:r.tokOff[ti][s+1]]
			r.stage[c.name] = append(r.stage[c.name], toks...)
			t.Lengths[i] = int32(len(toks))
			ti++
		case kindFloats:
			vals := r.fltVal[fi][r.fltOff[fi][s]:r.fltOff[fi][s+1]]
			r.fstage[c.name] = append(r.fstage[c.name], vals...)
			b.Floats[c.name].Lengths[i] = int32(len(vals))
			fi++
		case kindInt32:
			b.Ints[c.name][i] = r.ints[ii][s]
			ii++
		}
	}
}

// finishBatch pads the staged token and float-list columns of b to their lengths.
func (r *reader) finishBatch(b *Batch) {
	for name, t := range b.Tokens {
		t.IDs, t.SeqLen = pad(t.IDs, r.stage[name], t.Lengths, r.l.opts.SeqLen[name])
	}
	for name, f := range b.Floats {
		f.Data, f.Len = pad(f.Data, r.fstage[name], f.Lengths, r.l.opts.SeqLen[name])
	}
}

// pad lays out the staged values of consecutive samples (lengths[i] each) in rows of L
// values (L <= 0: the longest), zero-padded or truncated, in dst (reused when large
// enough); it sets lengths to the values kept.
func pad[E int32 | float32](dst, staged []E, lengths []int32, L int) ([]E, int) {
	if L <= 0 {
		for _, n := range lengths {
			L = max(L, int(n))
		}
	}
	dst = resize(dst, len(lengths)*L)
	clear(dst)
	off := 0
	for i, n := range lengths {
		k := min(int(n), L)
		copy(dst[i*L:i*L+k], staged[off:off+k])
		off += int(n)
		lengths[i] = int32(k)
	}
	return dst, L
}

// request is one sample of a block to decode into a slot.
type request struct {
	pos   int64 // position in the epoch
	strm  int64 // stream index
	shard int
	row   int64
}

// loadBlock decodes the samples of block blk that this rank receives at positions >= from.
func (r *reader) loadBlock(ctx context.Context, blk, from int64) error {
	l := r.l
	B, w, rank := l.opts.GlobalBatch, l.opts.World, l.opts.Rank
	lo, hi := r.ord.blockRange(blk)
	r.blk, r.blkLo = blk, lo
	r.slotOf = slices.Grow(r.slotOf[:0], int(hi-lo))[:hi-lo]
	for i := range r.slotOf {
		r.slotOf[i] = -1
	}
	reqs := r.reqs[:0]
	first := max(lo, from)
	for g := first / int64(B); g*int64(B) < hi && g < l.steps; g++ {
		a, c := rankRange(g, B, rank, w, l.n)
		for q := max(a, first); q < min(c, hi); q++ {
			s := r.ord.stream(q)
			shard, row := r.ord.locate(s)
			reqs = append(reqs, request{pos: q, strm: s, shard: shard, row: row})
		}
	}
	// Slots in stream order: decoding walks each row group once, front to back.
	slices.SortFunc(reqs, func(a, b request) int { return cmp.Compare(a.strm, b.strm) })
	r.reqs = reqs
	for i, q := range reqs {
		r.slotOf[q.pos-lo] = int32(i)
	}
	n := len(reqs)
	r.keys = slices.Grow(r.keys[:0], n)[:n]
	if r.pages == nil {
		for _, c := range l.cols {
			switch c.kind {
			case kindLatent:
				r.lat, r.latBits = append(r.lat, nil), append(r.latBits, nil)
				r.pages, r.chunks = append(r.pages, &latentPages{}), append(r.chunks, &latentChunk{})
				r.chunkRG = append(r.chunkRG, [2]int{-1, -1})
			case kindTokens:
				r.tokOff, r.tokVal = append(r.tokOff, nil), append(r.tokVal, nil)
			case kindFloats:
				r.fltOff, r.fltVal = append(r.fltOff, nil), append(r.fltVal, nil)
			case kindInt32:
				r.ints = append(r.ints, nil)
			}
		}
	}
	li, ti, fi, ii := 0, 0, 0, 0
	for _, c := range l.cols {
		switch c.kind {
		case kindLatent:
			if c.f16 {
				r.latBits[li] = resize(r.latBits[li], n*c.size)
			} else {
				r.lat[li] = resize(r.lat[li], n*c.size)
			}
			li++
		case kindTokens:
			r.tokOff[ti] = slices.Grow(r.tokOff[ti][:0], n+1)[:n+1]
			r.tokOff[ti][0] = 0
			r.tokVal[ti] = r.tokVal[ti][:0]
			ti++
		case kindFloats:
			r.fltOff[fi] = slices.Grow(r.fltOff[fi][:0], n+1)[:n+1]
			r.fltOff[fi][0] = 0
			// One allocation for the block when the length is known (a mel is 32 KB a
			// sample, and growing by appends copied tens of MB at a time).
			r.fltVal[fi] = slices.Grow(r.fltVal[fi][:0], n*max(0, l.opts.SeqLen[c.name]))
			fi++
		case kindInt32:
			r.ints[ii] = slices.Grow(r.ints[ii][:0], n)[:n]
			ii++
		}
	}
	// Decode the requests row group by row group: requests i..j-1 fall in one row group
	// and fill slots i..j-1.
	for i := 0; i < n; {
		if err := ctx.Err(); err != nil {
			return err
		}
		q := reqs[i]
		pf, rg, base, rows, err := r.rowGroupOf(q.shard, q.row)
		if err != nil {
			return err
		}
		j := i + 1
		for j < n && reqs[j].shard == q.shard && reqs[j].row < base+rows {
			j++
		}
		if err := r.decodeRowGroup(ctx, pf, q.shard, rg, base, rows, i, j); err != nil {
			return fmt.Errorf("shards: %s row group %d: %w", l.shards[q.shard].Path, rg, err)
		}
		i = j
	}
	return nil
}

// rowGroupOf opens shard if needed and returns the row group holding row, its first row
// and its number of rows.
func (r *reader) rowGroupOf(shard int, row int64) (*parquetFile, int, int64, int64, error) {
	pf := r.files[shard]
	if pf == nil {
		path := filepath.Join(r.l.dir, filepath.FromSlash(r.l.shards[shard].Path))
		if !r.l.opts.NoVerify && !r.l.verified[shard] {
			if err := checkShardFile(path, r.l.shards[shard]); err != nil {
				return nil, 0, 0, 0, err
			}
			r.l.verified[shard] = true
		}
		var err error
		if pf, err = openParquet(path, 0); err != nil {
			return nil, 0, 0, 0, err
		}
		// Row groups are read through pqarrow with recycled buffers (see bufferPool).
		if pf.Arrow, err = pqarrow.NewFileReader(pf.Reader, pqarrow.ArrowReadProperties{BatchSize: 1024}, &r.pool); err != nil {
			return nil, 0, 0, 0, errors.Join(fmt.Errorf("shards: read schema of %s: %w", r.l.shards[shard].Path, err), pf.Close())
		}
		r.files[shard] = pf
	}
	md := pf.Reader.MetaData()
	base := int64(0)
	for rg := 0; rg < md.NumRowGroups(); rg++ {
		n := md.RowGroup(rg).NumRows()
		if row < base+n {
			return pf, rg, base, n, nil
		}
		base += n
	}
	return nil, 0, 0, 0, fmt.Errorf("shards: %s has no row %d", r.l.shards[shard].Path, row)
}

// checkShardFile compares the size and sha256 of the file at path with the manifest's s.
func checkShardFile(path string, s Shard) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("shards: open %s: %w", s.Path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("shards: read %s: %w", s.Path, err)
	}
	if n != s.Bytes {
		return fmt.Errorf("%w: %s: %d bytes, manifest says %d (truncated or replaced)", ErrMismatch, s.Path, n, s.Bytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != s.SHA256 {
		return fmt.Errorf("%w: %s: sha256 %s, manifest says %s (damaged)", ErrMismatch, s.Path, got, s.SHA256)
	}
	return nil
}

// decodeRowGroup decodes requests i..j-1, rows of row group rg of shard (which starts at
// row base and has rows rows), into slots i..j-1.
func (r *reader) decodeRowGroup(ctx context.Context, pf *parquetFile, shard, rg int, base, rows int64, i, j int) error {
	r.rgRows = r.rgRows[:0]
	for _, q := range r.reqs[i:j] {
		r.rgRows = append(r.rgRows, q.row-base)
	}
	li := 0
	for _, c := range r.l.cols {
		if c.kind != kindLatent {
			continue
		}
		if err := r.decodeLatent(pf, shard, rg, rows, li, c, i, j); err != nil {
			return err
		}
		li++
	}
	return r.decodeRecords(ctx, pf, shard, rg, base, i, j)
}

// decodeLatent fills slots i..j-1 of latent column li (c) from row group rg: through the
// page reader when the chunk allows it, else from the whole chunk decoded by the general
// reader (kept for the next block).
func (r *reader) decodeLatent(pf *parquetFile, shard, rg int, rows int64, li int, c loadCol, i, j int) error {
	leaf, err := pf.Leaves(c.name)
	if err != nil {
		return err
	}
	if len(leaf) != 1 {
		return fmt.Errorf("latent column %s has %d Parquet columns", c.name, len(leaf))
	}
	var dst []byte
	if c.f16 {
		s := r.latBits[li][i*c.size : j*c.size]
		dst = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*2)
	} else {
		s := r.lat[li][i*c.size : j*c.size]
		dst = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*4)
	}
	ok, err := r.pages[li].read(pf, rg, leaf[0], c, rows, r.rgRows, dst)
	if err != nil {
		return fmt.Errorf("column %s: %w", c.name, err)
	}
	if ok {
		return nil
	}
	ch := r.chunks[li]
	if r.chunkRG[li] != [2]int{shard, rg} {
		r.chunkRG[li] = [2]int{-1, -1}
		if err := readLatentChunk(pf, rg, leaf[0], c, rows, ch); err != nil {
			return err
		}
		r.chunkRG[li] = [2]int{shard, rg}
	}
	// Chunks already hold zeros for null rows.
	for k, row := range r.rgRows {
		s := i + k
		if c.f16 {
			copy(r.latBits[li][s*c.size:(s+1)*c.size], ch.bits[row*int64(c.size):(row+1)*int64(c.size)])
		} else {
			copy(r.lat[li][s*c.size:(s+1)*c.size], ch.f32[row*int64(c.size):(row+1)*int64(c.size)])
		}
	}
	return nil
}

// recBatchBytes bounds the uncompressed bytes of the key and non-latent columns read at a
// time. A row group holds up to about 32 MB per column, and reading a list<float32>
// column (a mel is 32 KB per sample) a whole row group at a time kept several times that
// in pqarrow's buffers; token and key columns are small, and their row groups are read
// whole, as before. A variable for tests.
var recBatchBytes int64 = 8 << 20

// decodeRecords decodes the key and non-latent values of requests i..j-1 (rows of row
// group rg of shard, which starts at row base, in increasing order) into their slots. A
// row group whose columns fit in recBatchBytes is read in one record batch, kept for the
// next call on the same row group (the next block often starts in it); a larger one is
// read front to back in batches of about recBatchBytes, up to the last request.
func (r *reader) decodeRecords(ctx context.Context, pf *parquetFile, shard, rg int, base int64, i, j int) error {
	names := []string{ColKey}
	for _, c := range r.l.cols {
		if c.kind != kindLatent {
			names = append(names, c.name)
		}
	}
	cached := r.lastRec != nil && r.lastRG == [2]int{shard, rg}
	var rr pqarrow.RecordReader
	nrows := pf.Reader.MetaData().RowGroup(rg).NumRows()
	if !cached {
		r.releaseRecord()
		leaves, err := pf.Leaves(names...)
		if err != nil {
			return err
		}
		md := pf.Reader.MetaData().RowGroup(rg)
		var bytes int64
		for _, c := range leaves {
			if cc, err := md.ColumnChunk(c); err == nil {
				bytes += cc.TotalUncompressedSize()
			}
		}
		batch := max(1, nrows)
		if bytes > recBatchBytes {
			batch = max(1, nrows*recBatchBytes/bytes)
		}
		pf.Arrow.Props.BatchSize = batch
		if rr, err = pf.Arrow.GetRecordReader(ctx, leaves, []int{rg}); err != nil {
			return fmt.Errorf("read: %w", err)
		}
		defer rr.Release()
	}
	start, rows := int64(0), nrows // the current record: its first row and its rows
	for k := i; k < j; start += rows {
		if !cached {
			if !rr.Next() {
				err := rr.Err()
				if err == nil {
					err = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("read at row %d of %d the footer declares: %w", start, nrows, err)
			}
			rec := rr.RecordBatch()
			if rows = rec.NumRows(); rows < 1 || start+rows > nrows {
				return fmt.Errorf("read %d rows at row %d, the footer says %d in all", rows, start, nrows)
			}
			r.recCols = r.recCols[:0]
			for _, name := range names {
				idx := rec.Schema().FieldIndices(name)
				if len(idx) != 1 {
					return fmt.Errorf("no single column %q", name)
				}
				r.recCols = append(r.recCols, rec.Column(idx[0]))
			}
			if rows == nrows { // the whole row group: keep it for the next call
				rec.Retain()
				r.lastRec, r.lastRG = rec, [2]int{shard, rg}
			}
		}
		for ; k < j && r.reqs[k].row-base < start+rows; k++ {
			if err := r.decodeRow(int(r.reqs[k].row-base-start), k); err != nil {
				return fmt.Errorf("row %d: %w", r.reqs[k].row, err)
			}
		}
	}
	return nil
}

// releaseRecord drops the kept record batch.
func (r *reader) releaseRecord() {
	if r.lastRec != nil {
		r.lastRec.Release()
		r.lastRec = nil
	}
}

// decodeRow copies the key, token, float-list and int32 values of row i of the current row
// group into slot s. Slots are decoded in increasing order, so list values are appended.
func (r *reader) decodeRow(i, s int) error {
	keys, ok := r.recCols[0].(stringArray)
	if !ok {
		return errors.New("key column is not utf8")
	}
	r.keys[s] = strings.Clone(keys.Value(i))
	ti, fi, ii, ci := 0, 0, 0, 1
	for _, c := range r.l.cols {
		if c.kind == kindLatent {
			continue
		}
		a := r.recCols[ci]
		ci++
		switch c.kind {
		case kindTokens:
			v, lo, hi, err := listRow[*array.Int32](a, c.name, i)
			if err != nil {
				return err
			}
			if v != nil {
				r.tokVal[ti] = append(r.tokVal[ti], v.Int32Values()[lo:hi]...)
			}
			r.tokOff[ti][s+1] = int32(len(r.tokVal[ti]))
			ti++
		case kindFloats:
			v, lo, hi, err := listRow[*array.Float32](a, c.name, i)
			if err != nil {
				return err
			}
			if v != nil {
				if len(r.fltVal[fi])+int(hi-lo) > math.MaxInt32 {
					return fmt.Errorf("column %s: a block holds more than 2^31 list values", c.name)
				}
				r.fltVal[fi] = append(r.fltVal[fi], v.Float32Values()[lo:hi]...)
			}
			r.fltOff[fi][s+1] = int32(len(r.fltVal[fi]))
			fi++
		case kindInt32:
			v, ok := a.(*array.Int32)
			if !ok {
				return fmt.Errorf("column %s is %s, not int32", c.name, a.DataType())
			}
			r.ints[ii][s] = v.Value(i)
			ii++
		}
	}
	return nil
}

// listRow returns the values array and the value range of row i of the list column a
// (named name), or a nil values array for a null row.
func listRow[V arrow.Array](a arrow.Array, name string, i int) (vals V, lo, hi int64, err error) {
	ll, ok := a.(array.ListLike)
	if !ok {
		return vals, 0, 0, fmt.Errorf("column %s is %s, not a list", name, a.DataType())
	}
	if ll.IsNull(i) {
		return vals, 0, 0, nil
	}
	if vals, ok = ll.ListValues().(V); !ok {
		return vals, 0, 0, fmt.Errorf("column %s has values of type %s", name, ll.ListValues().DataType())
	}
	lo, hi = ll.ValueOffsets(i)
	return vals, lo, hi, nil
}

// rawUint16 returns the bit patterns of a float16 array's values.
func rawUint16(a *array.Float16) []uint16 {
	d := a.Data()
	buf := d.Buffers()[1].Bytes()
	if len(buf) < 2 {
		return nil
	}
	u := unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(buf))), len(buf)/2)
	return u[d.Offset() : d.Offset()+d.Len()]
}
