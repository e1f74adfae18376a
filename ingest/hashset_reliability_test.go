package ingest

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestHashSetAgainstMap adds random and repeated hashes to a hashSet and to a plain map
// (the reference) across several merges and compares membership of members and
// non-members, the length and the sorted order after every merge.
func TestHashSetAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	hash := func(i uint64) [32]byte { return sha256.Sum256(binary.LittleEndian.AppendUint64(nil, i)) }
	s := newHashSet()
	ref := map[[32]byte]bool{}
	const n = 5*hashSetBuffer + 123
	for step := 0; step < n; step++ {
		i := rng.Uint64N(4 * n) // about one add in eight repeats an earlier one
		h := hash(i)
		if got, want := s.Has(h), ref[h]; got != want {
			t.Fatalf("step %d: Has = %v before Add, want %v", step, got, want)
		}
		s.Add(h)
		ref[h] = true
		if len(s.recent) == 0 && !slices.IsSortedFunc(s.sorted, cmpHash) {
			t.Fatalf("step %d: sorted part not sorted after a merge", step)
		}
	}
	if s.Len() != len(ref) {
		t.Fatalf("Len = %d, want %d", s.Len(), len(ref))
	}
	if len(s.sorted) < 4*hashSetBuffer {
		t.Fatalf("only %d members merged; the test should cross several merges", len(s.sorted))
	}
	for i := uint64(0); i < 4*n; i++ {
		h := hash(i)
		if s.Has(h) != ref[h] {
			t.Fatalf("hash of %d: Has = %v, want %v", i, s.Has(h), ref[h])
		}
	}
	for i := 1; i < len(s.sorted); i++ {
		if cmpHash(s.sorted[i-1], s.sorted[i]) >= 0 {
			t.Fatalf("sorted[%d] and [%d] out of order or equal", i-1, i)
		}
	}
}
