package mmdata_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/immkit/immkit/imm/mmdata"
	"github.com/immkit/immkit/shards"
)

// withNulls rewrites the encoded parts of the fixture with audio_mel null for the keys in
// noAudio and text_tokens/text_len null for those in noText, and shards them.
func withNulls(t *testing.T, encoded string, noAudio, noText func(key string) bool) string {
	t.Helper()
	return rewriteParts(t, encoded, noAudio, noText, nil)
}

// rewriteParts is withNulls that also gives the audio_mel of a key melLen(key) values
// (its first values, then zeros) where melLen returns a length >= 0.
func rewriteParts(t *testing.T, encoded string, noAudio, noText func(key string) bool, melLen func(key string) int) string {
	t.Helper()
	dir := t.TempDir()
	parts, _ := filepath.Glob(filepath.Join(encoded, "parts", "*.parquet"))
	if len(parts) == 0 {
		t.Fatal("no encoded parts")
	}
	if err := os.MkdirAll(filepath.Join(dir, "parts"), 0o755); err != nil {
		t.Fatal(err)
	}
	mem := memory.DefaultAllocator
	for _, p := range parts {
		tbl := readTable(t, p)
		sc := tbl.Schema()
		fields := sc.Fields()
		cols := make([]arrow.Array, len(fields))
		keyIdx := sc.FieldIndices("key")[0]
		keysArr, err := array.Concatenate(tbl.Column(keyIdx).Data().Chunks(), mem)
		if err != nil {
			t.Fatal(err)
		}
		keys := keysArr.(*array.String)
		for j, fd := range fields {
			a, err := array.Concatenate(tbl.Column(j).Data().Chunks(), mem)
			if err != nil {
				t.Fatal(err)
			}
			drop := map[string]func(string) bool{"audio_mel": noAudio, "text_tokens": noText, "text_len": noText}[fd.Name]
			if drop == nil {
				cols[j] = a
				continue
			}
			fields[j].Nullable = true
			switch src := a.(type) {
			case *array.List:
				lb := array.NewListBuilder(mem, src.DataType().(*arrow.ListType).Elem())
				for i := 0; i < src.Len(); i++ {
					if drop(keys.Value(i)) {
						lb.AppendNull()
						continue
					}
					lo, hi := src.ValueOffsets(i)
					lb.Append(true)
					switch v := src.ListValues().(type) {
					case *array.Float32:
						vals := v.Float32Values()[lo:hi]
						if n := -1; melLen != nil && fd.Name == "audio_mel" {
							if n = melLen(keys.Value(i)); n >= 0 {
								vals = append(slices.Clone(vals[:min(n, len(vals))]), make([]float32, max(0, n-len(vals)))...)
							}
						}
						lb.ValueBuilder().(*array.Float32Builder).AppendValues(vals, nil)
					case *array.Int32:
						lb.ValueBuilder().(*array.Int32Builder).AppendValues(v.Int32Values()[lo:hi], nil)
					}
				}
				cols[j] = lb.NewArray()
			case *array.Int32:
				ib := array.NewInt32Builder(mem)
				for i := 0; i < src.Len(); i++ {
					if drop(keys.Value(i)) {
						ib.AppendNull()
					} else {
						ib.Append(src.Value(i))
					}
				}
				cols[j] = ib.NewArray()
			default:
				t.Fatalf("column %s is %s", fd.Name, a.DataType())
			}
		}
		md := sc.Metadata()
		out := arrow.NewSchema(fields, &md)
		rec := array.NewRecordBatch(out, cols, int64(keys.Len()))
		f, err := os.Create(filepath.Join(dir, "parts", filepath.Base(p)))
		if err != nil {
			t.Fatal(err)
		}
		w, err := pqarrow.NewFileWriter(out, f, parquet.NewWriterProperties(), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		tbl.Release()
	}
	out := filepath.Join(dir, "shards")
	if _, err := shards.Build(context.Background(), shards.BuildOptions{Inputs: []string{dir}, Out: out, Seed: 7, ValFraction: 0.1}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMissingModalities: a sample whose audio_mel or text_tokens is null has mask 0 and
// x 0 over that whole segment and its other segments as usual.
func TestMissingModalities(t *testing.T) {
	f := shapes(t)
	hash := func(k string) int { return int(k[len(k)-1]) }
	noAudio := func(k string) bool { return hash(k)%3 == 0 }
	noText := func(k string) bool { return hash(k)%4 == 1 }
	dir := withNulls(t, f.Encoded, noAudio, noText)
	l, err := mmdata.NewLayout(dir, mmdata.Options{ArtefactsDir: f.Encoded})
	if err != nil {
		t.Fatal(err)
	}
	D := l.Dim()
	imgOff, _ := l.Offset(mmdata.Image)
	audOff, _ := l.Offset(mmdata.Audio)
	txtOff, _ := l.Offset(mmdata.Text)
	var sawAudio, sawText, sawBoth int
	for _, split := range []string{shards.SplitTrain, shards.SplitVal} {
		for _, b := range batches(t, l, dir, split) {
			x, mask := make([]float32, b.Len()*D), make([]float32, b.Len()*D)
			if _, err := l.Assemble(b, x, mask); err != nil {
				t.Fatal(err)
			}
			for i, key := range b.Keys {
				p, m := x[i*D:(i+1)*D], mask[i*D:(i+1)*D]
				segs := []struct {
					name    string
					lo, hi  int
					missing bool
				}{
					{"image", imgOff, audOff, false},
					{"audio", audOff, txtOff, noAudio(key)},
					{"text", txtOff, D, noText(key)},
				}
				for _, s := range segs {
					ones := count(m[s.lo:s.hi])
					if s.missing {
						if ones != 0 {
							t.Fatalf("%s: missing %s has %d mask ones", key, s.name, ones)
						}
						for j := s.lo; j < s.hi; j++ {
							if p[j] != 0 {
								t.Fatalf("%s: missing %s has x[%d] = %v", key, s.name, j-s.lo, p[j])
							}
						}
					} else if ones < 1 {
						t.Fatalf("%s: present %s has no mask ones", key, s.name)
					}
				}
				switch {
				case noAudio(key) && noText(key):
					sawBoth++
				case noAudio(key):
					sawAudio++
				case noText(key):
					sawText++
				}
			}
		}
	}
	if sawAudio == 0 || sawText == 0 {
		t.Fatalf("the fixture has %d samples without audio, %d without text, %d without both", sawAudio, sawText, sawBoth)
	}
	t.Logf("%d samples without audio, %d without text, %d without both", sawAudio, sawText, sawBoth)
}

// TestMelLength: an audio_mel of the wrong length (shorter or longer than frames x
// n_mels) is an error naming the sample, from the statistics pass and from Assemble, not
// a silently cut or zero-filled clip.
func TestMelLength(t *testing.T) {
	f := shapes(t)
	good, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded})
	if err != nil {
		t.Fatal(err)
	}
	size := good.Audio.Frames * good.Audio.NMels
	never := func(string) bool { return false }
	bad := map[string]int{}
	dir := rewriteParts(t, f.Encoded, never, never, func(k string) int {
		switch {
		case len(bad) < 1:
			bad[k] = size - 80
		case len(bad) < 2 && bad[k] == 0:
			bad[k] = size + 80
		}
		if n, ok := bad[k]; ok {
			return n
		}
		return -1
	})
	if len(bad) != 2 {
		t.Fatalf("%d bad mels written", len(bad))
	}
	_, err = mmdata.NewLayout(dir, mmdata.Options{ArtefactsDir: f.Encoded})
	if err == nil || !strings.Contains(err.Error(), "audio statistics: audio_mel of") || !strings.Contains(err.Error(), "want frames x n_mels") {
		t.Fatalf("statistics over a bad mel: %v", err)
	}
	st := good.Stats
	l, err := mmdata.NewLayout(dir, mmdata.Options{ArtefactsDir: f.Encoded, Stats: &st})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, split := range []string{shards.SplitTrain, shards.SplitVal} {
		for _, b := range batches(t, l, dir, split) {
			_, err := l.Assemble(b, make([]float32, b.Len()*l.Dim()), make([]float32, b.Len()*l.Dim()))
			var in string
			for _, k := range b.Keys {
				if _, ok := bad[k]; ok && in == "" {
					in = k
				}
			}
			switch {
			case in == "" && err != nil:
				t.Fatalf("batch without a bad mel: %v", err)
			case in != "" && err == nil:
				t.Fatalf("batch with the %d-value mel of %s assembled", bad[in], in)
			case in != "":
				want := fmt.Sprintf("audio_mel of %q has %d values", in, bad[in])
				if bad[in] > size {
					want = fmt.Sprintf("audio_mel of %q has %d values or more", in, size+1)
				}
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("error %q, want it to say %q", err, want)
				}
				found[in] = true
			}
		}
	}
	if len(found) != 2 {
		t.Fatalf("errors for %d of the 2 bad mels", len(found))
	}
}
