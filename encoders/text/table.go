package text

import (
	"bytes"
	"hash/maphash"
)

// rankTable is an open-addressing hash table from token bytes to rank, built once per
// Encoding. slots[i] is 0 (empty) or hash>>32 in the high half and rank+1 in the low half;
// the token's bytes are read from the Encoding's decode table (blob, span) to confirm a hit.
type rankTable struct {
	seed  maphash.Seed
	slots []uint64
	mask  uint64
}

func (t *rankTable) init(n int) {
	size := uint64(1)
	for size < uint64(2*n) {
		size <<= 1
	}
	t.seed = maphash.MakeSeed()
	t.slots = make([]uint64, size)
	t.mask = size - 1
}

func (t *rankTable) insert(h uint64, rank uint32) {
	i := h & t.mask
	for t.slots[i] != 0 {
		i = (i + 1) & t.mask
	}
	t.slots[i] = h>>32<<32 | uint64(rank+1)
}

// lookup returns the rank of b, whose hash is h, or noRank.
func (e *Encoding) lookup(b []byte, h uint64) uint32 {
	t := &e.table
	i := h & t.mask
	tag := h >> 32
	for {
		s := t.slots[i]
		if s == 0 {
			return noRank
		}
		if s>>32 == tag {
			id := uint32(s) - 1
			sp := e.span[id]
			if sp&0xFFFFFF == uint64(len(b)) && bytes.Equal(e.blob[sp>>24:sp>>24+uint64(len(b))], b) {
				return id
			}
		}
		i = (i + 1) & t.mask
	}
}

func (e *Encoding) hash(b []byte) uint64 { return maphash.Bytes(e.table.seed, b) }

// pairCache is a direct-mapped cache from a pair of adjacent token ranks to the rank of
// their concatenation (noRank if it is not a token), in front of the rank table.
type pairCache struct {
	keys [1 << pairCacheBits]uint64 // (left<<32 | right) + 1; 0 means empty
	vals [1 << pairCacheBits]uint32
}

const pairCacheBits = 14

// pairRank returns the rank of b, the concatenation of tokens left and right.
func (e *Encoding) pairRank(c *pairCache, left, right uint32, b []byte) uint32 {
	k := uint64(left)<<32 | uint64(right)
	i := (k * 0x9E3779B97F4A7C15) >> (64 - pairCacheBits)
	if c.keys[i] == k+1 {
		return c.vals[i]
	}
	r := e.lookup(b, e.hash(b))
	c.keys[i], c.vals[i] = k+1, r
	return r
}

// pieceCache is a direct-mapped cache of merge results of short pieces, keyed by the
// piece's hash and confirmed by its bytes. It never grows and never holds whole inputs.
type pieceCache struct {
	slots [1 << pieceCacheBits]pieceSlot
}

const (
	pieceCacheBits = 12
	cachePieceLen  = 32
	cacheIDs       = 15
)

type pieceSlot struct {
	n, k  uint8 // piece length (0: empty) and id count
	piece [cachePieceLen]byte
	ids   [cacheIDs]int32
}

func (c *pieceCache) get(piece []byte, h uint64) []int32 {
	s := &c.slots[h>>(64-pieceCacheBits)]
	if int(s.n) == len(piece) && bytes.Equal(s.piece[:s.n], piece) {
		return s.ids[:s.k]
	}
	return nil
}

func (c *pieceCache) put(piece []byte, h uint64, ids []int32) {
	if len(piece) > cachePieceLen || len(ids) > cacheIDs || len(piece) == 0 {
		return
	}
	s := &c.slots[h>>(64-pieceCacheBits)]
	s.n, s.k = uint8(len(piece)), uint8(len(ids))
	copy(s.piece[:], piece)
	copy(s.ids[:], ids)
}
