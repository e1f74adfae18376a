package shards

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
)

// corpus returns samples with duplicates: every 10th sample repeats an earlier sample's
// content under a new key, and every 25th repeats one under the same key.
func corpus(n int) (all []sample, unique map[[32]byte]string) {
	base := makeSamples(1, n, 12, "k")
	all = append(all, base...)
	for i := 0; i < n; i += 10 {
		d := base[i]
		d.key = "dup-" + d.key
		all = append(all, d)
	}
	for i := 0; i < n; i += 25 {
		all = append(all, base[i])
	}
	unique = map[[32]byte]string{}
	for _, s := range all {
		sha := s.sha()
		if k, ok := unique[sha]; !ok || s.key < k {
			unique[sha] = s.key
		}
	}
	return all, unique
}

func identity(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	return p
}

func reversed(n int) []int {
	p := identity(n)
	slices.Reverse(p)
	return p
}

func build(t *testing.T, in []string, out string, mod func(*BuildOptions)) *Manifest {
	t.Helper()
	opts := BuildOptions{Inputs: in, Out: out, Seed: 42, ValFraction: 0.2, ShardSize: 8 << 10, RowGroupBytes: 1 << 10, BucketBytes: 4 << 10}
	if mod != nil {
		mod(&opts)
	}
	res, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Inputs.Rows-res.Inputs.Duplicates != res.Manifest.Totals[SplitTrain].Rows+res.Manifest.Totals[SplitVal].Rows {
		t.Fatalf("inputs %+v do not add up to the shards' rows", res.Inputs)
	}
	lastInputs = res.Inputs
	return res.Manifest
}

var lastInputs Inputs

// dirFiles returns relative path -> content of every file under dir.
func dirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, a, b string) {
	t.Helper()
	fa, fb := dirFiles(t, a), dirFiles(t, b)
	if len(fa) != len(fb) {
		t.Fatalf("%s has %d files, %s has %d", a, len(fa), b, len(fb))
	}
	for k, v := range fa {
		if !bytes.Equal(v, fb[k]) {
			t.Fatalf("%s differs between %s and %s", k, a, b)
		}
	}
}

func TestBuildDedupSplitShuffle(t *testing.T) {
	all, unique := corpus(400)
	tmp := t.TempDir()
	in := filepath.Join(tmp, "in")
	writeParts(t, in, all, 3, identity(len(all)))
	out := filepath.Join(tmp, "out")
	m := build(t, []string{in}, out, nil)

	keys, split, lat, toks := readShardRows(t, out, m)
	if lastInputs.Rows != int64(len(all)) || lastInputs.Duplicates != int64(len(all)-len(unique)) {
		t.Fatalf("inputs %+v, want rows %d duplicates %d", lastInputs, len(all), len(all)-len(unique))
	}
	wantKeys := map[string]bool{}
	for _, k := range unique {
		wantKeys[k] = true
	}
	if len(keys) != len(wantKeys) {
		t.Fatalf("shards hold %d rows, want %d unique samples", len(keys), len(wantKeys))
	}
	byKey := map[string]sample{}
	for _, s := range all {
		byKey[s.key] = s
	}
	nval := 0
	for i, k := range keys {
		if !wantKeys[k] {
			t.Fatalf("key %q in shards is not the smallest key of its content", k)
		}
		delete(wantKeys, k)
		if (split[i] == SplitVal) != IsVal(k, 0.2) {
			t.Fatalf("key %q in split %s, IsVal says %v", k, split[i], IsVal(k, 0.2))
		}
		if split[i] == SplitVal {
			nval++
		}
		s := byKey[k]
		for j, v := range s.latent {
			if got, want := lat[i][j], float16To32(v.Uint16()); got != want {
				t.Fatalf("key %s latent[%d] = %v, want %v", k, j, got, want)
			}
		}
		if !slices.Equal(toks[i], s.tokens) {
			t.Fatalf("key %s tokens %v, want %v", k, toks[i], s.tokens)
		}
	}
	if frac := float64(nval) / float64(len(keys)); frac < 0.12 || frac > 0.28 {
		t.Errorf("val fraction %.3f, want about 0.2", frac)
	}
	// Shuffled: the train keys are not in sorted order.
	var train []string
	for i, k := range keys {
		if split[i] == SplitTrain {
			train = append(train, k)
		}
	}
	if sort.StringsAreSorted(train) {
		t.Error("train split is in key order, not shuffled")
	}
	if len(m.SplitShards(SplitTrain)) < 3 {
		t.Errorf("want several train shards at 8 KiB, got %d", len(m.SplitShards(SplitTrain)))
	}
	tt := m.Totals[SplitTrain]
	if tt.NonNull["image_latent"] != tt.Rows || tt.NonNull["text_tokens"] != tt.Rows {
		t.Errorf("non-null counts %v, want %d for the media columns", tt.NonNull, tt.Rows)
	}
	if len(m.Artefacts) != 1 || m.Artefacts[0].Name != "bpe" {
		t.Errorf("artefacts %+v, want the bpe artefact of the parts", m.Artefacts)
	}
	if _, err := Verify(context.Background(), out); err != nil {
		t.Fatal(err)
	}
}

func TestBuildIndependentOfPartLayout(t *testing.T) {
	all, _ := corpus(300)
	tmp := t.TempDir()
	one, four := filepath.Join(tmp, "one"), filepath.Join(tmp, "four")
	writeParts(t, one, all, 1, identity(len(all)))
	writeParts(t, four, all, 4, reversed(len(all)))
	a, b := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	build(t, []string{one}, a, nil)
	build(t, []string{four}, b, func(o *BuildOptions) { o.Workers = 3; o.BucketBytes = 64 << 10 })
	sameTree(t, a, b)
	// And the same again from the same input (run-to-run determinism).
	c := filepath.Join(tmp, "c")
	build(t, []string{one}, c, nil)
	sameTree(t, a, c)
}

func TestBuildSplitStableWhenDataIsAdded(t *testing.T) {
	old := makeSamples(5, 200, 5, "a")
	more := append(append([]sample{}, old...), makeSamples(6, 200, 5, "b")...)
	tmp := t.TempDir()
	writeParts(t, filepath.Join(tmp, "old"), old, 2, identity(len(old)))
	writeParts(t, filepath.Join(tmp, "more"), more, 2, identity(len(more)))
	m1 := build(t, []string{filepath.Join(tmp, "old")}, filepath.Join(tmp, "o1"), nil)
	m2 := build(t, []string{filepath.Join(tmp, "more")}, filepath.Join(tmp, "o2"), nil)
	k1, s1, _, _ := readShardRows(t, filepath.Join(tmp, "o1"), m1)
	k2, s2, _, _ := readShardRows(t, filepath.Join(tmp, "o2"), m2)
	where := map[string]string{}
	for i, k := range k2 {
		where[k] = s2[i]
	}
	for i, k := range k1 {
		if where[k] != s1[i] {
			t.Fatalf("key %s moved from %s to %s when data was added", k, s1[i], where[k])
		}
	}
	if m1.Totals[SplitVal].Rows == 0 {
		t.Fatal("no val rows; the test checks nothing")
	}
}

func TestBuildShardSizeTarget(t *testing.T) {
	all := makeSamples(9, 2000, 30, "s")
	tmp := t.TempDir()
	writeParts(t, filepath.Join(tmp, "in"), all, 2, identity(len(all)))
	const target = 32 << 10
	m := build(t, []string{filepath.Join(tmp, "in")}, filepath.Join(tmp, "out"), func(o *BuildOptions) {
		o.ValFraction = 0
		o.ShardSize = target
		o.RowGroupBytes = 4 << 10
	})
	sh := m.SplitShards(SplitTrain)
	if len(sh) < 4 {
		t.Fatalf("%d shards, want several", len(sh))
	}
	for i, s := range sh {
		st, err := os.Stat(filepath.Join(tmp, "out", s.Path))
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != s.Bytes {
			t.Errorf("%s: manifest bytes %d, file %d", s.Path, s.Bytes, st.Size())
		}
		// Every shard but the last reaches the target and overshoots by less than a row
		// group (4 KiB uncompressed) plus the footer.
		if i < len(sh)-1 && (s.Bytes < target || s.Bytes > target+8<<10) {
			t.Errorf("%s: %d bytes, want within [%d, %d]", s.Path, s.Bytes, target, target+8<<10)
		}
	}
}

func TestVerifyCatchesCorruption(t *testing.T) {
	all := makeSamples(3, 300, 10, "v")
	tmp := t.TempDir()
	writeParts(t, filepath.Join(tmp, "in"), all, 1, identity(len(all)))
	out := filepath.Join(tmp, "out")
	m := build(t, []string{filepath.Join(tmp, "in")}, out, nil)
	rep, err := Verify(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Shards != len(m.Shards) || rep.Rows != int64(len(all)) {
		t.Fatalf("verify checked %d shards %d rows, want %d and %d", rep.Shards, rep.Rows, len(m.Shards), len(all))
	}
	// Flip one byte in the middle of the second shard.
	p := filepath.Join(out, m.Shards[1].Path)
	data, _ := os.ReadFile(p)
	data[len(data)/2] ^= 0x01
	os.WriteFile(p, data, 0o644)
	rep, err = Verify(context.Background(), out)
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("verify after a flipped byte: %v, want ErrMismatch", err)
	}
	if len(rep.Mismatches) != 1 || rep.Mismatches[0].What != "sha256" || rep.Mismatches[0].Path != m.Shards[1].Path {
		t.Fatalf("mismatches %v, want one sha256 mismatch of %s", rep.Mismatches, m.Shards[1].Path)
	}
	// A truncated shard is reported too.
	p0 := filepath.Join(out, m.Shards[0].Path)
	os.Truncate(p0, 100)
	rep, err = Verify(context.Background(), out)
	if !errors.Is(err, ErrMismatch) || len(rep.Mismatches) < 3 {
		t.Fatalf("verify after truncation: %v %v", err, rep.Mismatches)
	}
}

func TestBuildRefusesAndResumes(t *testing.T) {
	all := makeSamples(4, 200, 10, "r")
	tmp := t.TempDir()
	in := filepath.Join(tmp, "in")
	writeParts(t, in, all, 2, identity(len(all)))
	ref := filepath.Join(tmp, "ref")
	build(t, []string{in}, ref, nil)

	// A finished dataset is not overwritten without Overwrite.
	_, err := Build(context.Background(), BuildOptions{Inputs: []string{in}, Out: ref, ShardSize: 8 << 10})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("build over a finished dataset: %v, want ErrExists", err)
	}
	// Leftovers of a killed run: a half-written shard, a stray shard, spill files.
	out := filepath.Join(tmp, "out")
	os.MkdirAll(filepath.Join(out, "train"), 0o755)
	os.MkdirAll(filepath.Join(out, ".build-tmp"), 0o755)
	os.WriteFile(filepath.Join(out, "train", "shard-00000.parquet.tmp"), []byte("half"), 0o644)
	os.WriteFile(filepath.Join(out, "train", "shard-00099.parquet"), []byte("stray"), 0o644)
	os.WriteFile(filepath.Join(out, ".build-tmp", "bucket-0-000000.arrows"), []byte("junk"), 0o644)
	_, err = Build(context.Background(), BuildOptions{Inputs: []string{in}, Out: out})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("build over an unfinished run without Resume: %v, want ErrExists", err)
	}
	build(t, []string{in}, out, func(o *BuildOptions) { o.Resume = true })
	sameTree(t, ref, out)

	// A run cancelled part-way leaves no manifest, and a resumed run gives the same output.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out2 := filepath.Join(tmp, "out2")
	if _, err := Build(ctx, BuildOptions{Inputs: []string{in}, Out: out2, Seed: 42, ValFraction: 0.2, ShardSize: 8 << 10}); err == nil {
		t.Fatal("cancelled build succeeded")
	}
	if _, err := os.Stat(filepath.Join(out2, ManifestName)); err == nil {
		t.Fatal("cancelled build wrote a manifest")
	}
	build(t, []string{in}, out2, func(o *BuildOptions) { o.Resume = true })
	sameTree(t, ref, out2)
}

func TestBuildRejectsBadInput(t *testing.T) {
	tmp := t.TempDir()
	a := makeSamples(1, 10, 3, "x")
	writePart(t, filepath.Join(tmp, "a", "p.parquet"), a, 5)
	// A part whose latent length differs has another schema.
	b := makeSamples(2, 10, 3, "y")
	for i := range b {
		b[i].latent = b[i].latent[:4]
	}
	writePart(t, filepath.Join(tmp, "b", "p.parquet"), b, 5)
	for name, in := range map[string][]string{
		"schema mismatch": {filepath.Join(tmp, "a"), filepath.Join(tmp, "b")},
		"missing input":   {filepath.Join(tmp, "nope")},
		"empty dir":       {t.TempDir()},
	} {
		_, err := Build(context.Background(), BuildOptions{Inputs: in, Out: filepath.Join(tmp, "out-"+name)})
		if err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
