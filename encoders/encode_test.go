package encoders_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/immkit/immkit/encoders"
	"github.com/immkit/immkit/encoders/audio"
	imgenc "github.com/immkit/immkit/encoders/image"
	"github.com/immkit/immkit/encoders/text"
	"github.com/immkit/immkit/ingest"
	"github.com/immkit/immkit/pipeline"
	"github.com/immkit/immkit/pipeline/pipelinetest"
	"github.com/immkit/immkit/testdata/gen"
)

// corpus generates the shapes corpus (PNG images, so one can be corrupted in a way the
// ingest probe accepts), corrupts the IDAT data of one image (CRC fixed up) and ingests it
// into parts of 7 rows. It returns the corpus dir, the ingest output and the corrupted key.
func corpus(t *testing.T, n int) (src, in, badKey string) {
	t.Helper()
	dir := t.TempDir()
	src = filepath.Join(dir, "shapes")
	if _, err := gen.Generate(context.Background(), src, gen.Options{Seed: 3, Samples: n, ImageFormat: "png"}); err != nil {
		t.Fatal(err)
	}
	badKey = "square/000003"
	if _, err := os.Stat(filepath.Join(src, badKey+".png")); err != nil {
		// pick any key
		m, _ := filepath.Glob(filepath.Join(src, "*", "*.png"))
		sort.Strings(m)
		rel, _ := filepath.Rel(src, m[len(m)/2])
		badKey = strings.TrimSuffix(filepath.ToSlash(rel), ".png")
	}
	corruptIDAT(t, filepath.Join(src, badKey+".png"))
	in = filepath.Join(dir, "ingested")
	so := ingest.DefaultSourceOptions()
	so.Exclude = []string{gen.ManifestName}
	po := ingest.DefaultPartOptions()
	po.PartRows = 7
	st, err := ingest.Run(context.Background(), ingest.Config{Sources: []string{src}, Out: in, Source: so, Part: po,
		Dedup: true, NumWorkers: 1, Quiet: true, Probe: ingest.ProbeOptions{Image: ingest.ImageLimits{MaxPixels: 100_000_000}}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Samples != int64(n) {
		t.Fatalf("ingest kept %d samples of %d (rejects %v): the corrupted PNG must pass the probe", st.Samples, n, st.RejectedByReason)
	}
	return src, in, badKey
}

// corruptIDAT flips the compressed bytes of the first IDAT chunk and fixes its CRC, so the
// file's structure is valid but inflating it fails.
func corruptIDAT(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for off := 8; off+12 <= len(b); {
		n := int(binary.BigEndian.Uint32(b[off:]))
		if string(b[off+4:off+8]) == "IDAT" {
			data := b[off+8 : off+8+n]
			for i := 2; i < len(data); i++ { // keep the zlib header
				data[i] ^= 0x5a
			}
			binary.BigEndian.PutUint32(b[off+8+n:], crc32.ChecksumIEEE(b[off+4:off+8+n]))
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		off += 12 + n
	}
	t.Fatal("no IDAT chunk")
}

func encode(t *testing.T, in, out string, c encoders.Config, p pipeline.Partition, workers int) *encoders.Result {
	t.Helper()
	res, err := encoders.Run(context.Background(), encoders.RunOptions{In: in, Out: out, Config: c, Fit: true,
		Partition: p, Workers: workers, Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// partBytes maps every file name under out/parts and out/rejects to its content.
func partBytes(t *testing.T, out string) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for _, d := range []string{"parts", "rejects"} {
		fs, _ := filepath.Glob(filepath.Join(out, d, "*.parquet"))
		for _, f := range fs {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m[d+"/"+filepath.Base(f)] = b
		}
	}
	return m
}

func sameFiles(t *testing.T, what string, a, b map[string][]byte) {
	t.Helper()
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("%s: %d files vs %d", what, len(a), len(b))
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			t.Fatalf("%s: %s differs", what, k)
		}
	}
}

// readTable reads every part of out into one record per part, keyed by sample key.
type row struct {
	labelID int32
	latent  []float32
	mel     []float32
	tokens  []int32
	textLen int32
}

func readRows(t *testing.T, out string) (map[string]row, *arrow.Schema) {
	t.Helper()
	rows := map[string]row{}
	var schema *arrow.Schema
	fs, _ := filepath.Glob(filepath.Join(out, "parts", "*.parquet"))
	for _, p := range fs {
		f, err := file.OpenParquetFile(p, false)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := pqarrow.NewFileReader(f, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := fr.ReadTable(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if schema, err = fr.Schema(); err != nil {
			t.Fatal(err)
		}
		tr := array.NewTableReader(tbl, 1<<20)
		for tr.Next() {
			rec := tr.RecordBatch()
			col := func(name string) arrow.Array { return rec.Column(rec.Schema().FieldIndices(name)[0]) }
			keys := col("key").(*array.String)
			lat := col("image_latent").(*array.FixedSizeList)
			latv := lat.ListValues().(*array.Float32)
			mel := col("audio_mel").(*array.List)
			melv := mel.ListValues().(*array.Float32)
			tok := col("text_tokens").(*array.List)
			tokv := tok.ListValues().(*array.Int32)
			for i := 0; i < int(rec.NumRows()); i++ {
				r := row{labelID: col("label_id").(*array.Int32).Value(i), textLen: col("text_len").(*array.Int32).Value(i)}
				n := lat.DataType().(*arrow.FixedSizeListType).Len()
				r.latent = append(r.latent, latv.Float32Values()[i*int(n):(i+1)*int(n)]...)
				s, e := mel.ValueOffsets(i)
				r.mel = append(r.mel, melv.Float32Values()[s:e]...)
				s, e = tok.ValueOffsets(i)
				r.tokens = append(r.tokens, tokv.Int32Values()[s:e]...)
				rows[keys.Value(i)] = r
			}
		}
		tr.Release()
		tbl.Release()
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return rows, schema
}

// TestEncodeGray: image.gray stores one channel, shape "1,S,S", whose values are
// color.GrayModel's luma of the decoded, resized picture; a config without it keeps the
// JSON (and so the resume check) of configs written before the field existed.
func TestEncodeGray(t *testing.T) {
	const n, size = 8, 32
	src, in, badKey := corpus(t, n)
	c := encoders.Config{Seed: 7, Image: encoders.ImageConfig{Size: size, Gray: true}}.Defaults()
	out := filepath.Join(t.TempDir(), "grey")
	encode(t, in, out, c, pipeline.Partition{}, 2)
	rows, schema := readRows(t, out)
	if len(rows) != n-1 {
		t.Fatalf("%d rows, want %d", len(rows), n-1)
	}
	f, _ := schema.FieldsByName("image_latent")
	if v, _ := f[0].Metadata.GetValue("shape"); v != "1,32,32" {
		t.Fatalf("image_latent shape %q, want 1,32,32", v)
	}
	pl := imgenc.Pipeline{Resizer: imgenc.Resizer{Width: size, Height: size, Mode: imgenc.CenterCrop, Filter: "lanczos"}}
	o := gen.Options{Seed: 3, Samples: n, ImageFormat: "png"}
	for i := range n {
		sp := o.Spec(i)
		key := strings.TrimSuffix(sp.Image, filepath.Ext(sp.Image))
		if key == badKey {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(src, sp.Image))
		img, _, err := pl.Load(b)
		if err != nil {
			t.Fatal(err)
		}
		r := rows[key]
		if len(r.latent) != size*size {
			t.Fatalf("%s: %d latent values, want %d", key, len(r.latent), size*size)
		}
		for y := range size {
			for x := range size {
				g := color.GrayModel.Convert(img.NRGBAAt(x, y)).(color.Gray).Y
				if got, want := float64(r.latent[y*size+x]), float64(g)/127.5-1; math.Abs(got-want) > 1e-6 {
					t.Fatalf("%s: latent[%d,%d] = %v, want luma %d (%v)", key, y, x, got, g, want)
				}
			}
		}
	}
	rgb, err := json.Marshal(encoders.Config{}.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rgb, []byte("gray")) {
		t.Errorf("an RGB config's JSON names gray: %s", rgb)
	}
}

// TestEncodeEndToEnd: synthetic corpus -> ingest -> encode; every modality of sample rows
// equals an independent computation from the original files, a corrupt image is a reject,
// two runs and 4 partitioned workers give byte-identical parts, and shard metadata is set.
func TestEncodeEndToEnd(t *testing.T) {
	const n = 40
	src, in, badKey := corpus(t, n)
	c := encoders.Config{Seed: 7}.Defaults()
	dir := t.TempDir()
	out1 := filepath.Join(dir, "a")
	res := encode(t, in, out1, c, pipeline.Partition{}, 3)
	rowsN, rej, by := res.Progress.Totals()
	if rowsN != n-1 || rej != 1 || by[encoders.ReasonImageDecode] != 1 {
		t.Fatalf("rows %d rejected %d %v, want %d rows and 1 image_decode reject", rowsN, rej, by, n-1)
	}
	if res.Summary.Rejected != 1 || res.Summary.Accepted != n-1 || !res.Summary.Balanced {
		t.Fatalf("summary %+v", res.Summary)
	}
	rows, schema := readRows(t, out1)
	if _, ok := rows[badKey]; ok || len(rows) != n-1 {
		t.Fatalf("%d rows; corrupt key present: %v", len(rows), ok)
	}
	// the reject row names the sample and the reason
	rejRows := readRejects(t, out1)
	if len(rejRows) != 1 || rejRows[0][2] != encoders.ReasonImageDecode || !strings.Contains(rejRows[0][0], filepath.FromSlash(badKey)) || rejRows[0][1] != "encode" {
		t.Fatalf("rejects %q", rejRows)
	}
	// schema metadata carries the artefacts; field metadata the shapes
	if v, ok := schema.Metadata().GetValue(encoders.ArtefactsMetadataKey); !ok || !strings.Contains(v, "labels.json") {
		t.Fatalf("artefacts metadata %q", v)
	}
	f, _ := schema.FieldsByName("image_latent")
	if v, _ := f[0].Metadata.GetValue("shape"); v != "3,64,64" {
		t.Fatalf("image_latent shape %q", v)
	}

	// independent references
	enc, err := text.LoadConfig(filepath.Join(out1, "artefacts", "bpe.json"))
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]bool{}
	specs := map[string]gen.Spec{}
	o := gen.Options{Seed: 3, Samples: n, ImageFormat: "png"}
	for i := range n {
		s := o.Spec(i)
		labels[s.Label] = true
		specs[strings.TrimSuffix(s.Image, filepath.Ext(s.Image))] = s
	}
	var sorted []string
	for l := range labels {
		sorted = append(sorted, l)
	}
	sort.Strings(sorted)
	mc, _ := audio.Preset("whisper-80")
	checked := 0
	for key, r := range rows {
		sp, ok := specs[key]
		if !ok {
			t.Fatalf("unexpected key %q", key)
		}
		if sorted[r.labelID] != sp.Label {
			t.Fatalf("%s: label_id %d = %q, want %q", key, r.labelID, sorted[r.labelID], sp.Label)
		}
		if checked >= 4 {
			continue
		}
		checked++
		// image: decode + resize + pixels directly on the original bytes
		b, _ := os.ReadFile(filepath.Join(src, sp.Image))
		pl := imgenc.Pipeline{Resizer: imgenc.Resizer{Width: 64, Height: 64, Mode: imgenc.CenterCrop, Filter: "lanczos"}}
		img, _, err := pl.Load(b)
		if err != nil {
			t.Fatal(err)
		}
		for y := 0; y < 64; y++ {
			for x := 0; x < 64; x++ {
				for ch := 0; ch < 3; ch++ {
					want := float64(img.Pix[y*img.Stride+x*4+ch])/127.5 - 1
					if got := r.latent[(ch*64+y)*64+x]; math.Abs(float64(got)-want) > 1e-6 {
						t.Fatalf("%s: latent[%d,%d,%d] = %v, want %v", key, ch, y, x, got, want)
					}
				}
			}
		}
		// text: the caption through the saved tokenizer, padded to 32
		want := enc.Encode(nil, []byte(sp.Caption))
		if int(r.textLen) != min(len(want), 32) || len(r.tokens) != 32 {
			t.Fatalf("%s: text_len %d, %d tokens; caption has %d", key, r.textLen, len(r.tokens), len(want))
		}
		for i := range r.tokens {
			w := int32(0)
			if i < len(want) {
				w = want[i]
			}
			if r.tokens[i] != w {
				t.Fatalf("%s: token %d = %d, want %d", key, i, r.tokens[i], w)
			}
		}
		if back, _ := enc.Decode(nil, r.tokens[:r.textLen]); len(want) <= 32 && string(back) != sp.Caption {
			t.Fatalf("%s: tokens decode to %q, want %q", key, back, sp.Caption)
		}
		// audio: the WAV, mono, cut/padded to 16000 samples, MelSpectrogram, frame-major
		wb, _ := os.ReadFile(filepath.Join(src, sp.Audio))
		a, err := audio.Decode(wb)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float32, 16000)
		copy(x, a.Mono())
		m, err := audio.MelSpectrogram(x, mc)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.mel) != m.Frames*80 || m.Frames != 100 {
			t.Fatalf("%s: %d mel values, want %d x 80 (100 frames)", key, len(r.mel), m.Frames)
		}
		for f := 0; f < m.Frames; f++ {
			for k := 0; k < 80; k++ {
				if got, want := r.mel[f*80+k], m.Data[k*m.Frames+f]; math.Abs(float64(got-want)) > 1e-5 {
					t.Fatalf("%s: mel frame %d channel %d = %v, want %v", key, f, k, got, want)
				}
			}
		}
	}

	// determinism: a second run, and 4 partitioned workers, give the same bytes
	out2 := filepath.Join(dir, "b")
	encode(t, in, out2, c, pipeline.Partition{}, 1)
	sameFiles(t, "second run", partBytes(t, out1), partBytes(t, out2))
	out4 := filepath.Join(dir, "c")
	for w := range 4 {
		encode(t, in, out4, c, pipeline.Partition{NumWorkers: 4, WorkerIndex: w}, 2)
	}
	sameFiles(t, "4 workers", partBytes(t, out1), partBytes(t, out4))

	// a fresh run into an existing output is refused; --resume of a finished run is a no-op
	if _, err := encoders.Run(context.Background(), encoders.RunOptions{In: in, Out: out2, Config: c, Quiet: true}); err == nil {
		t.Fatal("second run into the same output succeeded without resume/overwrite")
	}
	res, err = encoders.Run(context.Background(), encoders.RunOptions{In: in, Out: out2, Config: c, Resume: true, Quiet: true})
	if err != nil || res.Summary.Inputs != 0 {
		t.Fatalf("resume of a finished run: %v, %+v", err, res.Summary)
	}
	sameFiles(t, "resumed finished run", partBytes(t, out1), partBytes(t, out2))
	// a different config on the same output is refused
	c2 := c
	c2.Text.MaxLen = 8
	if _, err := encoders.Run(context.Background(), encoders.RunOptions{In: in, Out: out2, Config: c2, Resume: true, Quiet: true}); err == nil {
		t.Fatal("resume with another config succeeded")
	}
}

func readRejects(t *testing.T, out string) [][4]string {
	t.Helper()
	var rs [][4]string
	for _, rec := range readDir(t, filepath.Join(out, "rejects")) {
		for i := 0; i < int(rec.NumRows()); i++ {
			var r [4]string
			for j := range 4 {
				r[j] = rec.Column(j).(*array.String).Value(i)
			}
			rs = append(rs, r)
		}
	}
	return rs
}

// readDir reads every Parquet file of dir (in name order) as record batches, released when
// the test ends.
func readDir(t *testing.T, dir string) []arrow.RecordBatch {
	t.Helper()
	fs, err := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []arrow.RecordBatch
	for _, p := range fs {
		tbl, err := pipelinetest.ReadParquetFile(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tbl.Release)
		recs = append(recs, pipelinetest.TableRecords(t, tbl)...)
	}
	return recs
}
