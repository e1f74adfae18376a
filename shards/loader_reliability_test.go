package shards

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyDataset copies the dataset in src (index.json and the shards) to a new directory.
func copyDataset(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestLoaderDetectsCorruptShard damages one train shard of a dataset (one flipped byte in
// the data, in the footer, or a cut tail) and reads every epoch batch: the loader must stop
// with an error that names the shard, never deliver a batch built from the damaged file
// without saying so, and never panic. Verify must name the same shard.
func TestLoaderDetectsCorruptShard(t *testing.T) {
	dir, _, _ := loaderDataset(t, 600)
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	train := m.SplitShards(SplitTrain)
	victim := train[len(train)/2]
	cases := []struct {
		name   string
		damage func(b []byte) []byte
	}{
		{"flip-middle", func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b }},
		{"flip-early", func(b []byte) []byte { b[64] ^= 0x80; return b }},
		{"flip-footer", func(b []byte) []byte { b[len(b)-12] ^= 0x01; return b }},
		{"truncate-tail", func(b []byte) []byte { return b[:len(b)-100] }},
		{"truncate-half", func(b []byte) []byte { return b[:len(b)/2] }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := copyDataset(t, dir)
			path := filepath.Join(d, filepath.FromSlash(victim.Path))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, c.damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			rep, verr := Verify(t.Context(), d)
			if !errors.Is(verr, ErrMismatch) || len(rep.Mismatches) == 0 || rep.Mismatches[0].Path != victim.Path {
				t.Errorf("Verify: err %v, report %+v; want a mismatch naming %s", verr, rep, victim.Path)
			}
			l, err := NewLoader(d, LoaderOptions{GlobalBatch: 16, Epochs: 1})
			if err == nil {
				defer l.Close()
				for {
					_, err = l.Next()
					if err != nil {
						break
					}
				}
			}
			if errors.Is(err, io.EOF) {
				t.Fatalf("the loader read a whole epoch over %s without an error", victim.Path)
			}
			if !strings.Contains(err.Error(), victim.Path) {
				t.Errorf("loader error %q does not name %s", err, victim.Path)
			}
			t.Logf("loader: %v", err)
		})
	}
}
