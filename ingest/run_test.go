package ingest

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"image"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/immkit/immkit/pipeline"
	"github.com/immkit/immkit/testdata/gen"
	"golang.org/x/text/unicode/norm"
)

// genCorpus writes the synthetic shapes corpus with the malformed set and tar shards.
func genCorpus(t *testing.T, samples int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shapes")
	_, err := gen.Generate(context.Background(), dir, gen.Options{Seed: 3, Samples: samples, Bad: true,
		Output: gen.OutputBoth, ShardSamples: 16, ImageFormat: gen.FormatMixed})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func testConfig(src, out string) Config {
	so := DefaultSourceOptions()
	so.Exclude = []string{gen.ManifestName}
	po := DefaultPartOptions()
	po.PartRows = 7
	return Config{Sources: []string{src}, Out: out, Source: so, Part: po, Dedup: true, Probers: 3,
		Probe: ProbeOptions{Image: ImageLimits{MaxPixels: 100_000_000}}}
}

type row struct {
	key, source   string
	image, audio  []byte
	width, height int32
	rate, ch      int32
	secs          float64
	text, label   *string
	sha           [32]byte
}

func readRows(t *testing.T, out string) []row {
	t.Helper()
	parts, err := PartFiles(out)
	if err != nil {
		t.Fatal(err)
	}
	var rows []row
	for _, p := range parts {
		err := ScanParquet(p, nil, 64, func(rec arrow.RecordBatch) error {
			str := func(name string, i int) *string {
				c := Column(rec, name).(*array.String)
				if c.IsNull(i) {
					return nil
				}
				s := c.Value(i)
				return &s
			}
			for i := 0; i < int(rec.NumRows()); i++ {
				r := row{key: *str(ColKey, i), source: *str(ColSource, i), text: str(ColText, i), label: str(ColLabel, i)}
				r.image = bytes.Clone(MediaBytes(Column(rec, ColImage), i))
				r.audio = bytes.Clone(MediaBytes(Column(rec, ColAudio), i))
				r.width = Column(rec, ColImageWidth).(*array.Int32).Value(i)
				r.height = Column(rec, ColImageHeight).(*array.Int32).Value(i)
				r.rate = Column(rec, ColAudioSampleRate).(*array.Int32).Value(i)
				r.ch = Column(rec, ColAudioChannels).(*array.Int32).Value(i)
				r.secs = Column(rec, ColAudioSeconds).(*array.Float64).Value(i)
				copy(r.sha[:], Column(rec, ColSHA256).(*array.Binary).Value(i))
				rows = append(rows, r)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return rows
}

func readRejects(t *testing.T, out string) []Reject {
	t.Helper()
	files, err := RejectFiles(out)
	if err != nil {
		t.Fatal(err)
	}
	var rs []Reject
	for _, f := range files {
		err := ScanParquet(f, nil, 1024, func(rec arrow.RecordBatch) error {
			for i := 0; i < int(rec.NumRows()); i++ {
				v := func(c int) string { return rec.Column(c).(*array.String).Value(i) }
				rs = append(rs, Reject{Source: v(0), Stage: v(1), Reason: v(2), Detail: v(3)})
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return rs
}

func hashes(rows []row) []string {
	var hs []string
	for _, r := range rows {
		hs = append(hs, hex.EncodeToString(r.sha[:]))
	}
	sort.Strings(hs)
	return hs
}

// TestIngestCorpus ingests the synthetic corpus (directory tree, tar shards holding the same
// samples, and the malformed set) and checks every row against the files on disk.
func TestIngestCorpus(t *testing.T) {
	const n = 40
	src := genCorpus(t, n)
	out := filepath.Join(t.TempDir(), "out")
	st, err := Run(context.Background(), testConfig(src, out))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	// Every malformed item is exactly one reject with its reason; nothing else is rejected.
	rejects := readRejects(t, out)
	if int64(len(rejects)) != st.Rejected || len(rejects) != len(gen.BadFiles) {
		t.Errorf("%d reject rows, stats say %d, want %d (one per bad file)", len(rejects), st.Rejected, len(gen.BadFiles))
	}
	for _, bf := range gen.BadFiles {
		want := bf.Path
		if bf.Member != "" {
			want += "#" + bf.Member
		}
		var got []Reject
		for _, r := range rejects {
			if strings.HasSuffix(r.Source, "/"+want) {
				got = append(got, r)
			}
		}
		if len(got) != 1 || got[0].Reason != bf.Reason {
			t.Errorf("%s: rejects %+v, want one with reason %s", want, got, bf.Reason)
		}
	}
	// Samples: n from the tree, n duplicates from the shards, plus ok.txt of bad/escape.tar.
	if st.Samples != n+1 || st.Duplicates != n {
		t.Errorf("samples %d duplicates %d, want %d and %d", st.Samples, st.Duplicates, n+1, n)
	}
	if st.Inputs != int64(2*n+1+len(gen.BadFiles)) {
		t.Errorf("inputs %d, want %d", st.Inputs, 2*n+1+len(gen.BadFiles))
	}
	rows := readRows(t, out)
	if int64(len(rows)) != st.Samples {
		t.Fatalf("%d rows, stats say %d samples", len(rows), st.Samples)
	}
	seen := map[[32]byte]bool{}
	var sawOK bool
	for _, r := range rows {
		if seen[r.sha] {
			t.Errorf("%s: duplicate content hash in the output", r.key)
		}
		seen[r.sha] = true
		if want := SampleHash(r.image, r.audio, r.text); want != r.sha {
			t.Errorf("%s: stored sha256 differs from the recomputed one", r.key)
		}
		if r.key == "ok" {
			sawOK = true
			continue
		}
		// The row must hold the original files byte for byte.
		dir := filepath.Join(src, filepath.FromSlash(r.key))
		imgPath := dir + ".jpg"
		if _, err := os.Stat(imgPath); err != nil {
			imgPath = dir + ".png"
		}
		img, _ := os.ReadFile(imgPath)
		wav, _ := os.ReadFile(dir + ".wav")
		txt, _ := os.ReadFile(dir + ".txt")
		if !bytes.Equal(r.image, img) || !bytes.Equal(r.audio, wav) || r.text == nil || *r.text != norm.NFC.String(string(txt)) {
			t.Errorf("%s: stored bytes differ from %s/.wav/.txt", r.key, imgPath)
			continue
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(img))
		if err != nil || int(r.width) != cfg.Width || int(r.height) != cfg.Height {
			t.Errorf("%s: size %dx%d, DecodeConfig %v %v", r.key, r.width, r.height, cfg, err)
		}
		if r.label == nil || *r.label != path.Dir(r.key) {
			t.Errorf("%s: label %v, want %s", r.key, r.label, path.Dir(r.key))
		}
		if r.rate != 16000 || r.ch != 1 || r.secs != float64((len(wav)-44)/2)/16000 {
			t.Errorf("%s: audio %d Hz %d ch %g s", r.key, r.rate, r.ch, r.secs)
		}
	}
	if !sawOK {
		t.Errorf("the safe member %s of bad/escape.tar is not a sample", gen.EscapeTarOK)
	}
	// ingest-stats.json totals the worker's progress.
	rs, err := WriteStats(out)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Samples != st.Samples || rs.Rejected != st.Rejected || !rs.Complete || rs.BytesOut == 0 {
		t.Errorf("merged stats %+v, run stats %+v", rs, st)
	}
	// A second run into the same output without --resume is refused.
	if _, err := Run(context.Background(), testConfig(src, out)); !errors.Is(err, ErrOutputExists) {
		t.Errorf("rerun without resume: %v, want ErrOutputExists", err)
	}
}

// TestIngestWorkersMatchOne runs four partitioned workers into one output and compares the
// set of content hashes with a single worker's.
func TestIngestWorkersMatchOne(t *testing.T) {
	src := genCorpus(t, 30)
	one := filepath.Join(t.TempDir(), "one")
	if _, err := Run(context.Background(), testConfig(src, one)); err != nil {
		t.Fatal(err)
	}
	four := filepath.Join(t.TempDir(), "four")
	var inputs int64
	for w := range 4 {
		cfg := testConfig(src, four)
		part := pipeline.Partition{NumWorkers: 4, WorkerIndex: w}
		cfg.Worker, cfg.NumWorkers, cfg.Owns, cfg.Part.Worker = w, 4, part.Owns, w
		st, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if st.Inputs == 0 {
			t.Errorf("worker %d got no inputs", w)
		}
		inputs += st.Inputs
	}
	rs, err := WriteStats(four)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := WriteStats(one)
	if err != nil {
		t.Fatal(err)
	}
	if !rs.Complete || len(rs.WorkersDone) != 4 || rs.Inputs != ref.Inputs || rs.Rejected != ref.Rejected || inputs != ref.Inputs {
		t.Errorf("4 workers: %+v; 1 worker: %+v", rs.Stats, ref.Stats)
	}
	// Dedup is per worker: a tar copy and a tree copy of a sample may land on different
	// workers, so compare the sets of distinct hashes.
	h1, h4 := hashes(readRows(t, one)), slices.Compact(hashes(readRows(t, four)))
	if !slices.Equal(h1, h4) {
		t.Errorf("4 workers give %d distinct hashes, 1 worker %d", len(h4), len(h1))
	}
}

// TestIngestResume cancels runs at several points and resumes them; the output must equal
// an uninterrupted run's.
func TestIngestResume(t *testing.T) {
	src := genCorpus(t, 30)
	ref := filepath.Join(t.TempDir(), "ref")
	want, err := Run(context.Background(), testConfig(src, ref))
	if err != nil {
		t.Fatal(err)
	}
	wantRows := hashes(readRows(t, ref))
	for _, stopAt := range []int{1, 9, 30, 55} {
		out := filepath.Join(t.TempDir(), "out")
		ctx, cancel := context.WithCancel(context.Background())
		cfg := testConfig(src, out)
		n := 0
		cfg.OnItem = func(int64, bool) {
			if n++; n == stopAt {
				cancel()
			}
		}
		if _, err := Run(ctx, cfg); err == nil {
			t.Fatalf("stop at %d: run was not interrupted", stopAt)
		}
		cancel()
		cfg = testConfig(src, out)
		cfg.Resume = true
		got, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("stop at %d: resume: %v", stopAt, err)
		}
		got.Seconds, want.Seconds = 0, 0
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if !bytes.Equal(gj, wj) {
			t.Errorf("stop at %d: resumed stats\n%s\nwant\n%s", stopAt, gj, wj)
		}
		if rows := hashes(readRows(t, out)); !slices.Equal(rows, wantRows) {
			t.Errorf("stop at %d: %d rows after resume, want %d identical", stopAt, len(rows), len(wantRows))
		}
		if len(readRejects(t, out)) != len(gen.BadFiles) {
			t.Errorf("stop at %d: %d rejects after resume", stopAt, len(readRejects(t, out)))
		}
	}
}

// TestPartMetadata checks the Hugging Face feature description in the Parquet footer.
func TestPartMetadata(t *testing.T) {
	src := genCorpus(t, 3)
	out := filepath.Join(t.TempDir(), "out")
	if _, err := Run(context.Background(), testConfig(src, out)); err != nil {
		t.Fatal(err)
	}
	parts, _ := PartFiles(out)
	if len(parts) == 0 {
		t.Fatal("no parts")
	}
	rdr, err := file.OpenParquetFile(parts[0], false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	kv := rdr.MetaData().KeyValueMetadata()
	v := kv.FindValue(HFMetadataKey)
	if v == nil {
		t.Fatal("no huggingface key in the footer")
	}
	var meta struct {
		Info struct {
			Features map[string]map[string]any `json:"features"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(*v), &meta); err != nil {
		t.Fatal(err)
	}
	f := meta.Info.Features
	if f["image"]["_type"] != "Image" || f["audio"]["_type"] != "Audio" || f["text"]["dtype"] != "string" || f["image_width"]["dtype"] != "int32" {
		t.Errorf("features %v", f)
	}
	// Every stored column must have a feature whose dtype is the one `datasets` derives from
	// its Arrow type (huggingface/datasets features.py, _arrow_to_datasets_dtype), or
	// load_dataset fails on the part. The table lists the Arrow types datasets accepts that
	// this schema can use; fixed_size_binary, for one, has no entry there.
	hfDtype := map[string]string{"utf8": "string", "binary": "binary", "int32": "int32", "float64": "float64"}
	sc, err := pqarrow.FromParquet(rdr.MetaData().Schema, nil, kv)
	if err != nil {
		t.Fatal(err)
	}
	for _, fld := range sc.Fields() {
		feat, ok := f[fld.Name]
		switch {
		case !ok:
			t.Errorf("column %s (%s) has no datasets feature", fld.Name, fld.Type)
		case feat["_type"] == "Image" || feat["_type"] == "Audio":
			if !arrow.TypeEqual(fld.Type, MediaType) {
				t.Errorf("column %s is %s, want %s for %s", fld.Name, fld.Type, MediaType, feat["_type"])
			}
		case hfDtype[fld.Type.String()] == "":
			t.Errorf("column %s: Arrow type %s has no datasets dtype", fld.Name, fld.Type)
		case feat["dtype"] != hfDtype[fld.Type.String()]:
			t.Errorf("column %s (%s): feature dtype %v, want %s", fld.Name, fld.Type, feat["dtype"], hfDtype[fld.Type.String()])
		}
	}
}
