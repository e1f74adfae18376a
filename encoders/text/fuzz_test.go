package text

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func seedLines(f *testing.F) {
	src, err := os.ReadFile(filepath.Join("testdata", "multilingual.txt"))
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range bytes.SplitAfter(src, []byte("\n")) {
		f.Add(l)
	}
	f.Add([]byte("\n  \n\t \r\n  x"))
	f.Add([]byte("\xff\xfe it's\xe4"))
}

// FuzzRoundTrip checks Decode(Encode(x)) == x, Count == len(Encode) and that the heap merge
// agrees with the scan, on the three patterns (with trained vocabularies, so it runs without
// the rank-file cache) and on cl100k_base and o200k_base when the cache has them.
func FuzzRoundTrip(f *testing.F) {
	seedLines(f)
	encs := []*Encoding{trainedSmall(f, PatternCL100k), trainedSmall(f, PatternO200k), trainedSmall(f, PatternGPT2)}
	for _, name := range []string{"cl100k_base", "o200k_base"} {
		if _, err := os.Stat(filepath.Join(cacheDirForTest(f), rankFile(name))); err == nil {
			encs = append(encs, loadEncoding(f, name))
		}
	}
	f.Fuzz(func(t *testing.T, x []byte) {
		for _, e := range encs {
			st := new(mergeState) // its pair cache belongs to one encoding
			ids := e.Encode(nil, x)
			back, err := e.Decode(nil, ids)
			if err != nil || !bytes.Equal(back, x) {
				t.Fatalf("%s: Decode(Encode(%q)) = %q, %v", e.Name(), x, back, err)
			}
			if n := e.Count(x); n != len(ids) {
				t.Fatalf("%s: Count(%q) = %d, Encode gives %d ids", e.Name(), x, n, len(ids))
			}
			if len(x) >= 2 && e.rankOf(x) == noRank {
				if a, b := e.scanMerge(st, nil, x), e.longMerge(st, nil, x); !slices.Equal(a, b) {
					t.Fatalf("%s: merge of %q: scan %v, heap %v", e.Name(), x, a, b)
				}
			}
		}
	})
}

// FuzzReadTiktoken checks that the rank-file parser never panics and that what it accepts
// survives a write and re-read unchanged.
func FuzzReadTiktoken(f *testing.F) {
	f.Add([]byte("YQ== 0\nYg== 1\n"))
	f.Add([]byte("IQ== 0\r\n\nIg== 1"))
	f.Add([]byte("YWJj 99999999999\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ReadTiktoken(bytes.NewReader(in))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteTiktoken(&buf, r); err != nil {
			t.Fatal(err)
		}
		r2, err := ReadTiktoken(&buf)
		if err != nil {
			t.Fatalf("re-reading written ranks: %v", err)
		}
		if len(r2) != len(r) {
			t.Fatalf("%d ranks after round trip, want %d", len(r2), len(r))
		}
		for k, v := range r {
			if r2[k] != v {
				t.Fatalf("token %q: %d after round trip, want %d", k, r2[k], v)
			}
		}
	})
}
