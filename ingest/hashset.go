package ingest

import (
	"bytes"
	"slices"
)

// hashSet is the exact dedup set of sample hashes in about 32 bytes per member, where a
// map[[32]byte]struct{} takes 40-75 bytes per entry plus the collector's headroom (which
// made ingest's RSS grow by about 130 bytes per distinct sample). Members live in sorted,
// except the most recent ones, which live in recent until it holds hashSetBuffer entries
// and is merged into sorted.
type hashSet struct {
	sorted [][32]byte // ascending, no duplicates, disjoint from recent
	recent map[[32]byte]struct{}
}

const hashSetBuffer = 1 << 14

func newHashSet() *hashSet { return &hashSet{recent: make(map[[32]byte]struct{})} }

// Len is the number of members.
func (s *hashSet) Len() int { return len(s.sorted) + len(s.recent) }

// Has reports whether h is a member.
func (s *hashSet) Has(h [32]byte) bool {
	if _, ok := s.recent[h]; ok {
		return true
	}
	_, ok := slices.BinarySearchFunc(s.sorted, h, cmpHash)
	return ok
}

// Add makes h a member; adding a member again does nothing.
func (s *hashSet) Add(h [32]byte) {
	if s.Has(h) {
		return
	}
	s.recent[h] = struct{}{}
	if len(s.recent) >= hashSetBuffer {
		s.flush()
	}
}

// flush merges recent into sorted, from the back so that sorted's array is reused.
func (s *hashSet) flush() {
	add := make([][32]byte, 0, len(s.recent))
	for h := range s.recent {
		add = append(add, h)
	}
	slices.SortFunc(add, cmpHash)
	n := len(s.sorted)
	s.sorted = slices.Grow(s.sorted, len(add))[:n+len(add)]
	i, j := n-1, len(add)-1
	for k := n + len(add) - 1; j >= 0; k-- {
		if i >= 0 && cmpHash(s.sorted[i], add[j]) > 0 {
			s.sorted[k] = s.sorted[i]
			i--
		} else {
			s.sorted[k] = add[j]
			j--
		}
	}
	clear(s.recent)
}

func cmpHash(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) }
