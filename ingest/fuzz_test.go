package ingest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Fuzz targets of the ingest sources (tar/webdataset, jsonl, Parquet, text units). Each
// writes the fuzzed bytes as a file, runs the source and probes every candidate, and
// checks that every input item ends as a sample or a reject with a known reason, and that
// nothing outside the source's root is read or written. Seeds are built here and in
// testdata/fuzz/<target>/; `scripts/fuzz.sh` runs them for a set time.

// fuzzLimits keep the per-input work small; the probes reject larger media without
// decoding them.
var fuzzProbe = ProbeOptions{Image: ImageLimits{MaxPixels: 1 << 24}, Audio: AudioLimits{}}

// knownReasons is every reject reason of reject.go.
var knownReasons = map[string]bool{
	ReasonEmptyFile: true, ReasonFileTooLarge: true, ReasonReadError: true, ReasonUnsafePath: true,
	ReasonSymlinkOutsideRoot: true, ReasonUnknownExtension: true, ReasonKeyConflict: true,
	ReasonNotRegular: true, ReasonTarCorrupt: true, ReasonImageUnknownFormat: true,
	ReasonImageTruncated: true, ReasonImageCorrupt: true, ReasonPNGCRC: true, ReasonImageTooLarge: true,
	ReasonImageTooSmall: true, ReasonAudioUnknownFormat: true, ReasonWAVTruncated: true,
	ReasonAudioTruncated: true, ReasonAudioCorrupt: true, ReasonAudioTooLong: true,
	ReasonTextNotUTF8: true, ReasonTextTooShort: true, ReasonBadJSON: true, ReasonBadBase64: true,
	ReasonBadRow: true, ReasonNoContent: true, ReasonDecoderPanic: true,
}

// fuzzOutcome is what one source run gave: the samples and rejects of every candidate.
type fuzzOutcome struct {
	samples []*Sample
	rejects []*Reject
}

// runSource enumerates src, probes every candidate and checks the per-item invariants.
func runSource(t *testing.T, src Source) fuzzOutcome {
	t.Helper()
	var out fuzzOutcome
	ctx := context.Background()
	err := src.Units(ctx, func(u Unit) error {
		return u.Candidates(ctx, func(c *Candidate) error {
			s, rej, _ := fuzzProbe.Probe(c)
			switch {
			case (s == nil) == (rej == nil):
				t.Fatalf("candidate %q: sample %v and reject %v (want exactly one)", c.Source, s != nil, rej != nil)
			case rej != nil:
				if !knownReasons[rej.Reason] {
					t.Fatalf("candidate %q: unknown reject reason %q (%s)", c.Source, rej.Reason, rej.Detail)
				}
				if rej.Reason == ReasonDecoderPanic {
					t.Fatalf("candidate %q: a decoder panicked: %s", c.Source, rej.Detail)
				}
				out.rejects = append(out.rejects, rej)
			default:
				if s.Image == nil && s.Audio == nil && s.Text == nil {
					t.Fatalf("candidate %q: sample without content", c.Source)
				}
				if s.SHA256 != SampleHash(s.Image, s.Audio, s.Text) {
					t.Fatalf("candidate %q: sample hash differs from SampleHash of its content", c.Source)
				}
				out.samples = append(out.samples, s)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatalf("source error (want rejects only): %v", err)
	}
	return out
}

// listTree returns the relative paths of every entry under dir.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		names = append(names, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// fuzzRoot makes dir/root (the source's directory) next to dir/canary.png, a file outside
// the root with random content; it returns the root and the canary bytes.
func fuzzRoot(t *testing.T) (root string, canary []byte) {
	t.Helper()
	dir := t.TempDir()
	root = filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	canary = make([]byte, 48)
	rand.Read(canary)
	canary = append([]byte("CANARY "), canary...)
	if err := os.WriteFile(filepath.Join(dir, "canary.png"), canary, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "in.txt"), []byte("a caption inside the root"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, canary
}

// checkNoCanary fails when any sample holds the canary's bytes or the tree changed.
func checkNoCanary(t *testing.T, out fuzzOutcome, canary []byte, dir string, before []string) {
	t.Helper()
	for _, s := range out.samples {
		for _, b := range [][]byte{s.Image, s.Audio} {
			if bytes.Contains(b, canary[7:]) {
				t.Fatalf("sample %q holds the bytes of a file outside the root", s.Source)
			}
		}
		if s.Text != nil && strings.Contains(*s.Text, string(canary[7:])) {
			t.Fatalf("sample %q holds the bytes of a file outside the root", s.Source)
		}
	}
	if after := listTree(t, dir); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("the file tree changed: before %q, after %q", before, after)
	}
}

type tarEntry struct {
	name, link string
	typ        byte
	data       []byte
}

func tarBytes(t testing.TB, gz bool, entries ...tarEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Mode: 0o644, Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write(e.data)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if !gz {
		return b.Bytes()
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(b.Bytes())
	zw.Close()
	return z.Bytes()
}

func smallPNG(t testing.TB) []byte {
	for _, e := range encodeAll(t, 6, 4, 9) {
		if e.name == "png" {
			return e.data
		}
	}
	t.Fatal("no png")
	return nil
}

// FuzzTarSource feeds arbitrary bytes to the tar/tar.gz/webdataset reader.
func FuzzTarSource(f *testing.F) {
	img := smallPNG(f)
	wav := makeWAV(1, 16, 1, 8000, 16, false)
	valid := []tarEntry{
		{name: "cat/0001.png", data: img}, {name: "cat/0001.txt", data: []byte("a cat")}, {name: "cat/0001.cls", data: []byte("cat")},
		{name: "dog/0002.wav", data: wav}, {name: "dog/0002.json", data: []byte(`{"a":1}`)},
		{name: "0003.txt", data: []byte("only text\n\nsecond paragraph")},
	}
	hostile := []tarEntry{
		{name: "../escape.png", data: img}, {name: "/etc/passwd.txt", data: []byte("root")},
		{name: "link.png", link: "../../canary.png", typ: tar.TypeSymlink},
		{name: "hard.png", link: "cat/0001.png", typ: tar.TypeLink},
		{name: "dev.png", typ: tar.TypeChar}, {name: "fifo.wav", typ: tar.TypeFifo},
		{name: "a/b/../../../c.txt", data: []byte("x")}, {name: "same.png", data: img}, {name: "same.jpg", data: img},
	}
	for _, gz := range []bool{false, true} {
		f.Add(tarBytes(f, gz, valid...))
		f.Add(tarBytes(f, gz, hostile...))
	}
	v := tarBytes(f, false, valid...)
	f.Add(v[:len(v)/2])
	f.Add(v[:700])
	f.Fuzz(func(t *testing.T, data []byte) {
		root, canary := fuzzRoot(t)
		dir := filepath.Dir(root)
		p := filepath.Join(root, "shard.tar")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		before := listTree(t, dir)
		o := DefaultSourceOptions()
		o.MaxFileBytes = 1 << 20
		o.TextUnit = TextUnitParagraph
		src, err := OpenSource(p, &o)
		if err != nil {
			t.Fatalf("OpenSource of a .tar: %v", err)
		}
		out := runSource(t, src)
		for _, s := range out.samples {
			if !strings.HasPrefix(s.Source, filepath.ToSlash(p)+"#") {
				t.Fatalf("sample source %q is not a member of the archive", s.Source)
			}
			if strings.Contains(s.Source, "/../") || strings.Contains(s.Source, "#/") || strings.Contains(s.Source, "#../") {
				t.Fatalf("accepted an unsafe member: %q", s.Source)
			}
		}
		checkNoCanary(t, out, canary, dir, before)
	})
}

// FuzzJSONLSource feeds arbitrary bytes to the jsonl reader, with one image inside the
// jsonl file's directory and a canary file next to it, outside.
func FuzzJSONLSource(f *testing.F) {
	img := smallPNG(f)
	b64 := base64.StdEncoding.EncodeToString(img)
	for _, s := range []string{
		`{"id": "a", "text": "a caption", "label": "cat", "image": "img.png", "extra": [1, 2]}`,
		`{"id": 7, "text": "data url", "image": "data:image/png;base64,` + b64 + `"}`,
		`{"text": "base64", "image": "` + b64 + `", "label": 3}`,
		`{"image": "../canary.png"}` + "\n" + `{"image": "/etc/passwd"}` + "\n" + `{"image": "sub/../../canary.png"}`,
		`{"image": "up.png"}`,
		"not json\n{}\n\n{\"text\": 5}\n{\"id\": {}}\n{\"audio\": \"data:;base64,@@\"}\r\n",
		"\xef\xbb\xbf{\"text\": \"bom\"}\n{\"text\": \"\\ud800\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		root, canary := fuzzRoot(t)
		dir := filepath.Dir(root)
		if err := os.WriteFile(filepath.Join(root, "img.png"), img, 0o644); err != nil {
			t.Fatal(err)
		}
		// A symlink inside the root that points outside it, to the canary.
		if err := os.Symlink(filepath.Join(dir, "canary.png"), filepath.Join(root, "up.png")); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, "data.jsonl")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		before := listTree(t, dir)
		o := DefaultSourceOptions()
		o.MaxFileBytes = 1 << 20
		src, err := OpenSource(p, &o)
		if err != nil {
			t.Fatalf("OpenSource of a .jsonl: %v", err)
		}
		out := runSource(t, src)
		if nonblank := bytes.Count(data, []byte("\n")) + 1; len(out.samples)+len(out.rejects) > nonblank {
			t.Fatalf("%d items from %d lines", len(out.samples)+len(out.rejects), nonblank)
		}
		checkNoCanary(t, out, canary, dir, before)
	})
}

// FuzzParquetSource feeds arbitrary bytes to the Parquet source: a file that is not
// Parquet, or breaks off, is one bad_row reject (rows read before stay), never a panic.
func FuzzParquetSource(f *testing.F) {
	for _, seed := range parquetSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		root, _ := fuzzRoot(t)
		p := filepath.Join(root, "data.parquet")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		o := DefaultSourceOptions()
		src, err := OpenSource(p, &o)
		if err != nil {
			t.Fatalf("OpenSource of a .parquet: %v", err)
		}
		runSource(t, src)
	})
}

// parquetSeeds are small Parquet files with an HF image struct column, a plain binary
// audio column, an integer label, a string meta column and a float column.
func parquetSeeds(t testing.TB) [][]byte {
	img := smallPNG(t)
	var seeds [][]byte
	for _, rows := range []int{1, 3} {
		var texts []string
		var imgs [][]byte
		for i := range rows {
			texts = append(texts, fmt.Sprintf("caption %d", i))
			imgs = append(imgs, img)
		}
		seeds = append(seeds, writeMappingParquet(t, mappingRow{
			keys: []string{"k0", "k1", "k2"}[:rows], texts: texts, labels: []int64{1, 2, 3}[:rows],
			images: imgs, hfStruct: rows == 1, meta: `{"m": 1}`,
		}))
	}
	return seeds
}

// mappingRow describes a Parquet file for the mapping fuzz target.
type mappingRow struct {
	keys     []string
	texts    []string
	labels   []int64
	images   [][]byte // nil entries are null
	hfStruct bool     // image column as struct{bytes, path}, else plain binary
	meta     string
	extra    float64
}

func writeMappingParquet(t testing.TB, m mappingRow) []byte {
	t.Helper()
	mem := memory.DefaultAllocator
	imgType := arrow.DataType(arrow.BinaryTypes.Binary)
	if m.hfStruct {
		imgType = arrow.StructOf(arrow.Field{Name: "bytes", Type: arrow.BinaryTypes.Binary, Nullable: true},
			arrow.Field{Name: "path", Type: arrow.BinaryTypes.String, Nullable: true})
	}
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "label", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "image", Type: imgType, Nullable: true},
		{Name: "meta", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, sc)
	defer b.Release()
	n := len(m.keys)
	for i := range n {
		b.Field(0).(*array.StringBuilder).Append(m.keys[i])
		b.Field(1).(*array.StringBuilder).Append(m.texts[i])
		b.Field(2).(*array.Int64Builder).Append(m.labels[i])
		if m.hfStruct {
			sb := b.Field(3).(*array.StructBuilder)
			if m.images[i] == nil {
				sb.AppendNull()
			} else {
				sb.Append(true)
				sb.FieldBuilder(0).(*array.BinaryBuilder).Append(m.images[i])
				sb.FieldBuilder(1).(*array.StringBuilder).Append(fmt.Sprintf("img%d.png", i))
			}
		} else if m.images[i] == nil {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.BinaryBuilder).Append(m.images[i])
		}
		b.Field(4).(*array.StringBuilder).Append(m.meta)
		b.Field(5).(*array.Float64Builder).Append(m.extra)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	w, err := pqarrow.NewFileWriter(sc, &buf, parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(2)), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzParquetMapping builds a valid Parquet file from fuzzed values and checks the column
// mapping against those values: key, text (NFC), label (integer as decimal text), image
// bytes unchanged, remaining columns in meta.
func FuzzParquetMapping(f *testing.F) {
	img := smallPNG(f)
	f.Add("k", "a caption", int64(3), img, true, `{"m": 1}`, 0.5)
	f.Add("", "", int64(-1), []byte{}, false, `not json`, 1e300)
	f.Add("k2", "e\u0301", int64(0), []byte(nil), true, `{"score": 2}`, -0.0)
	f.Fuzz(func(t *testing.T, key, text string, label int64, image []byte, hfStruct bool, meta string, extra float64) {
		m := mappingRow{keys: []string{key}, texts: []string{text}, labels: []int64{label}, images: [][]byte{image},
			hfStruct: hfStruct, meta: meta, extra: extra}
		data := writeMappingParquet(t, m)
		root, _ := fuzzRoot(t)
		p := filepath.Join(root, "data.parquet")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		o := DefaultSourceOptions()
		src, err := OpenSource(p, &o)
		if err != nil {
			t.Fatal(err)
		}
		out := runSource(t, src)
		if n := len(out.samples) + len(out.rejects); n != 1 {
			t.Fatalf("%d items from one row", n)
		}
		if len(out.samples) == 0 {
			return
		}
		s := out.samples[0]
		if s.Key != key {
			t.Fatalf("key %q, want %q", s.Key, key)
		}
		if want := fmt.Sprint(label); s.Label == nil || *s.Label != want {
			t.Fatalf("label %v, want %q", s.Label, want)
		}
		if s.Text == nil {
			t.Fatalf("text missing, want %q", text)
		}
		want, err := NormalizeText([]byte(text), 0)
		if err != nil || *s.Text != want {
			t.Fatalf("text %q, want %q (%v)", *s.Text, want, err)
		}
		if image != nil && !bytes.Equal(s.Image, image) {
			t.Fatalf("image bytes changed: %d bytes, want %d", len(s.Image), len(image))
		}
		if finite := !math.IsNaN(extra) && !math.IsInf(extra, 0); finite && !strings.Contains(s.Meta, `"score"`) {
			t.Fatalf("meta %q lacks the score column", s.Meta)
		}
	})
}

// FuzzTextUnits splits arbitrary text into lines and paragraphs: every non-blank line is
// one item, in order, and the paragraphs hold the same lines.
func FuzzTextUnits(f *testing.F) {
	f.Add([]byte("one\ntwo\n\n\nthree\r\n  \nfour"))
	f.Add([]byte("\xff\xfe\n\x00"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		root, _ := fuzzRoot(t)
		p := filepath.Join(root, "doc.txt")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var items [2]int
		for i, unit := range []string{TextUnitLine, TextUnitParagraph} {
			o := DefaultSourceOptions()
			o.TextUnit = unit
			src, err := OpenSource(p, &o)
			if err != nil {
				t.Fatal(err)
			}
			out := runSource(t, src)
			items[i] = len(out.samples) + len(out.rejects)
		}
		if items[1] > items[0] {
			t.Fatalf("%d paragraphs but %d lines", items[1], items[0])
		}
	})
}
