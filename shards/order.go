package shards

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"sort"
)

// epochOrder is the global sample order of one epoch of a split, a pure function of
// (seed, epoch, shard list, block size):
//
//  1. the shards are permuted by a generator seeded with (seed, epoch);
//  2. their rows are concatenated in that order into a stream of N samples;
//  3. the stream is cut into blocks of `block` samples, and each block is permuted by a
//     generator seeded with (seed, epoch, block index).
//
// Position p of the epoch is stream sample blockStart(p) + perm_b(p - blockStart(p)). A
// sample therefore never moves further than one block, which is what bounds the memory of
// the shuffle (the shuffle buffer), and positions map to samples without simulating the
// stream from its start, which is what makes exact resume and rank slicing cheap.
type epochOrder struct {
	seed   uint64
	epoch  int
	block  int
	shards []int   // shard indices in stream order
	start  []int64 // start[i] = stream index of the first row of shards[i]; start[len] = N
	n      int64

	cacheBlock int64 // block whose permutation is in cachePerm, -1 if none
	cachePerm  []int32
}

func newEpochOrder(seed uint64, epoch int, rows []int64, block int) *epochOrder {
	o := &epochOrder{seed: seed, epoch: epoch, block: block, cacheBlock: -1}
	o.shards = make([]int, len(rows))
	for i := range o.shards {
		o.shards[i] = i
	}
	r := rand.New(rand.NewPCG(mixSeed(seed, uint64(epoch), 0, 0), mixSeed(seed, uint64(epoch), 0, 1)))
	r.Shuffle(len(o.shards), func(i, j int) { o.shards[i], o.shards[j] = o.shards[j], o.shards[i] })
	o.start = make([]int64, len(rows)+1)
	for i, s := range o.shards {
		o.start[i+1] = o.start[i] + rows[s]
	}
	o.n = o.start[len(rows)]
	return o
}

// mixSeed derives a 64-bit generator seed from the loader seed, the epoch, a block number
// and a stream selector, by SHA-256 (so nearby inputs give unrelated streams).
func mixSeed(seed, epoch, block, sel uint64) uint64 {
	var b [40]byte
	copy(b[:8], "imm.ord\x00")
	binary.LittleEndian.PutUint64(b[8:], seed)
	binary.LittleEndian.PutUint64(b[16:], epoch)
	binary.LittleEndian.PutUint64(b[24:], block)
	binary.LittleEndian.PutUint64(b[32:], sel)
	h := sha256.Sum256(b[:])
	return binary.LittleEndian.Uint64(h[:8])
}

// blockRange returns the positions [lo, hi) of block b.
func (o *epochOrder) blockRange(b int64) (int64, int64) {
	lo := b * int64(o.block)
	return lo, min(lo+int64(o.block), o.n)
}

// stream returns the stream index of the sample at position p.
func (o *epochOrder) stream(p int64) int64 {
	b := p / int64(o.block)
	if b != o.cacheBlock {
		lo, hi := o.blockRange(b)
		perm := o.cachePerm[:0]
		for i := int32(0); i < int32(hi-lo); i++ {
			perm = append(perm, i)
		}
		r := rand.New(rand.NewPCG(mixSeed(o.seed, uint64(o.epoch), uint64(b)+1, 0), mixSeed(o.seed, uint64(o.epoch), uint64(b)+1, 1)))
		r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		o.cachePerm, o.cacheBlock = perm, b
	}
	return b*int64(o.block) + int64(o.cachePerm[p-b*int64(o.block)])
}

// locate returns the shard index and row of stream index s.
func (o *epochOrder) locate(s int64) (shard int, row int64) {
	i := sort.Search(len(o.shards), func(i int) bool { return o.start[i+1] > s })
	return o.shards[i], s - o.start[i]
}

// rankRange returns the positions [lo, hi) that rank r of w receives from global batch g
// of size B in an epoch of n samples: the batch's positions are cut into w nearly equal
// consecutive slices (exactly B/w each when w divides B and the batch is full).
func rankRange(g int64, B, r, w int, n int64) (int64, int64) {
	start := g * int64(B)
	size := min(int64(B), n-start)
	return start + size*int64(r)/int64(w), start + size*int64(r+1)/int64(w)
}
