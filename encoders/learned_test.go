package encoders_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/immkit/immkit/encoders"
	"github.com/immkit/immkit/encoders/audio"
	imgenc "github.com/immkit/immkit/encoders/image"
	"github.com/immkit/immkit/pipeline"
	"github.com/immkit/immkit/testdata/gen"
)

// column reads one list or fixed_size_list column of every part as float64 values by key.
func column(t *testing.T, out, name string) map[string][]float64 {
	t.Helper()
	res := map[string][]float64{}
	for _, rec := range readDir(t, filepath.Join(out, "parts")) {
		keys := rec.Column(0).(*array.String)
		col := rec.Column(rec.Schema().FieldIndices(name)[0])
		for i := 0; i < int(rec.NumRows()); i++ {
			var s, e int64
			var vals arrow.Array
			switch c := col.(type) {
			case *array.List:
				s, e = c.ValueOffsets(i)
				vals = c.ListValues()
			case *array.FixedSizeList:
				n := int64(c.DataType().(*arrow.FixedSizeListType).Len())
				s, e = int64(i)*n, int64(i+1)*n
				vals = c.ListValues()
			default:
				t.Fatalf("column %s is %s", name, col.DataType())
			}
			var v []float64
			for j := s; j < e; j++ {
				switch x := vals.(type) {
				case *array.Float32:
					v = append(v, float64(x.Value(int(j))))
				case *array.Int32:
					v = append(v, float64(x.Value(int(j))))
				}
			}
			res[keys.Value(i)] = v
		}
	}
	return res
}

func hashFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestLearnedEncoders fits patch-pca + audio-vq, then vq + mulaw, and checks rows against
// the saved artefacts applied with encoders/image and encoders/audio directly, artefact
// hashes against the files, and that fitting is deterministic.
func TestLearnedEncoders(t *testing.T) {
	const n = 24
	src, in, badKey := corpus(t, n)
	o := gen.Options{Seed: 3, Samples: n, ImageFormat: "png"}
	specs := map[string]gen.Spec{}
	for i := range n {
		s := o.Spec(i)
		specs[strings.TrimSuffix(s.Image, filepath.Ext(s.Image))] = s
	}
	mc, _ := audio.Preset("whisper-80")
	clip := func(key string) []float32 {
		b, _ := os.ReadFile(filepath.Join(src, specs[key].Audio))
		a, err := audio.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float32, 16000)
		copy(x, a.Mono())
		return x
	}
	pl := imgenc.Pipeline{Resizer: imgenc.Resizer{Width: 32, Height: 32, Mode: imgenc.CenterCrop, Filter: "lanczos"}}

	dir := t.TempDir()
	c := encoders.Config{Seed: 5, FitSamples: 16,
		Image: encoders.ImageConfig{Encoder: "patch-pca", Size: 32, Patch: 4, Dims: 8},
		Audio: encoders.AudioConfig{Encoder: "audio-vq", Codes: 16},
		Text:  encoders.TextConfig{Encoder: encoders.None},
	}.Defaults()
	out := filepath.Join(dir, "pca")
	res := encode(t, in, out, c, pipeline.Partition{}, 2)
	for _, a := range res.State.Artefacts {
		if got := hashFile(t, filepath.Join(out, a.Path)); got != a.SHA256 {
			t.Fatalf("artefact %s: recorded %s, file %s", a.Name, a.SHA256, got)
		}
	}
	pca, _, err := imgenc.LoadPatchPCA(filepath.Join(out, "artefacts", "patch-pca.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	cb := mustCodebook(t, filepath.Join(out, "artefacts", "audio-vq.safetensors"))
	lat, toks := column(t, out, "image_latent"), column(t, out, "audio_tokens")
	if len(lat) != n-1 || len(toks) != n-1 {
		t.Fatalf("%d latents, %d token rows, want %d", len(lat), len(toks), n-1)
	}
	if _, ok := lat[badKey]; ok {
		t.Fatal("corrupt image encoded")
	}
	checked := 0
	for key, got := range lat {
		if checked++; checked > 3 {
			break
		}
		b, _ := os.ReadFile(filepath.Join(src, specs[key].Image))
		img, _, err := pl.Load(b)
		if err != nil {
			t.Fatal(err)
		}
		want, err := pca.Encode(img)
		if err != nil {
			t.Fatal(err)
		}
		if want.C != 8 || want.H != 8 || len(got) != len(want.Data) {
			t.Fatalf("%s: latent %d values, want %dx%dx%d", key, len(got), want.C, want.H, want.W)
		}
		for i := range got {
			if math.Abs(got[i]-float64(want.Data[i])) > 1e-6 {
				t.Fatalf("%s: latent[%d] = %v, want %v", key, i, got[i], want.Data[i])
			}
		}
		m, err := audio.MelSpectrogram(clip(key), mc)
		if err != nil {
			t.Fatal(err)
		}
		wt, err := cb.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		gt := toks[key]
		if len(gt) != len(wt) || len(wt) != 100 {
			t.Fatalf("%s: %d audio tokens, want %d (100 frames)", key, len(gt), len(wt))
		}
		for i := range wt {
			if gt[i] != float64(wt[i]) {
				t.Fatalf("%s: audio token %d = %v, want %d", key, i, gt[i], wt[i])
			}
		}
	}
	// fitting again gives the same artefacts, and removes the temporary files of a fit
	// killed in the same directory (but nothing else)
	refit := filepath.Join(dir, "refit")
	stale := []string{".encode.json.tmp4137470051", "artefacts/.patch-pca.safetensors.tmp77"}
	keep := []string{"notes.tmp", "artefacts/.keep"}
	for _, f := range append(append([]string{}, stale...), keep...) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(refit, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(refit, f), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st2, err := encoders.Fit(context.Background(), in, refit, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range stale {
		if _, err := os.Stat(filepath.Join(refit, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left by a killed fit is still there after a refit (stat: %v)", f, err)
		}
	}
	for _, f := range keep {
		if _, err := os.Stat(filepath.Join(refit, f)); err != nil {
			t.Errorf("refit removed %s, which is not a fit's temporary file: %v", f, err)
		}
	}
	for i, a := range st2.Artefacts {
		if a != res.State.Artefacts[i] {
			t.Fatalf("refit artefact %+v, first fit %+v", a, res.State.Artefacts[i])
		}
	}

	// vq tokens + mulaw
	c2 := encoders.Config{Seed: 5, FitSamples: 16,
		Image: encoders.ImageConfig{Encoder: "vq", Size: 32, Patch: 8, Codes: 8},
		Audio: encoders.AudioConfig{Encoder: "mulaw", ClipSeconds: 0.5, Crop: "center"},
		Text:  encoders.TextConfig{Encoder: encoders.None},
	}.Defaults()
	out2 := filepath.Join(dir, "vq")
	encode(t, in, out2, c2, pipeline.Partition{}, 2)
	vq, _, err := imgenc.LoadVQ(filepath.Join(out2, "artefacts", "vq.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	itok, atok := column(t, out2, "image_tokens"), column(t, out2, "audio_tokens")
	for key, got := range itok {
		b, _ := os.ReadFile(filepath.Join(src, specs[key].Image))
		img, _, err := pl.Load(b)
		if err != nil {
			t.Fatal(err)
		}
		want, err := vq.Encode(img)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 16 || len(want.IDs) != 16 {
			t.Fatalf("%s: %d image tokens, want 16", key, len(got))
		}
		for i := range got {
			if got[i] != float64(want.IDs[i]) {
				t.Fatalf("%s: image token %d = %v, want %d", key, i, got[i], want.IDs[i])
			}
		}
		// mulaw of the centre 0.5 s (the clips are 1 s at 16 kHz)
		full := clip(key)
		wantA := audio.MulawEncode(full[4000:12000])
		gotA := atok[key]
		if len(gotA) != 8000 {
			t.Fatalf("%s: %d mulaw tokens, want 8000", key, len(gotA))
		}
		for i := range wantA {
			if gotA[i] != float64(wantA[i]) {
				t.Fatalf("%s: mulaw token %d = %v, want %d", key, i, gotA[i], wantA[i])
			}
		}
		break
	}
}

func mustCodebook(t *testing.T, p string) *audio.Codebook {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := audio.LoadCodebook(b)
	if err != nil {
		t.Fatal(err)
	}
	return cb
}

func TestParseConfig(t *testing.T) {
	y := "seed: 3\nimage:\n  encoder: patch-pca\n  size: 32\ntext:\n  max_len: 16\n  pad_id: 2\n"
	j := `{"seed": 3, "image": {"encoder": "patch-pca", "size": 32}, "text": {"max_len": 16, "pad_id": 2}}`
	a, err := encoders.ParseConfig([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	b, err := encoders.ParseConfig([]byte(j))
	if err != nil {
		t.Fatal(err)
	}
	if a != b || a.Seed != 3 || a.Image.Encoder != "patch-pca" || a.Image.Size != 32 || a.Text.MaxLen != 16 || a.Text.PadID != 2 {
		t.Fatalf("yaml %+v\njson %+v", a, b)
	}
	d := a.Defaults()
	if d.Audio.Encoder != "whisper-80" || d.Text.Overflow != "truncate" || d.Image.Patch != 4 || d.Validate() != nil {
		t.Fatalf("defaults %+v: %v", d, d.Validate())
	}
	for _, bad := range []string{
		"imgae: {}",                               // unknown field
		"image: {encoder: whisper-80}",            // wrong modality
		"image: {encoder: sd-vae}",                // unknown encoder
		"image: {size: 30, patch: 4}",             // patch does not divide size
		"text: {overflow: wrap}",                  // bad policy
		"audio: {clip_seconds: -1}",               // bad length
		"seed: [1, 2]",                            // wrong type
		"image: {encoder: patch-pca, gray: true}", // grey is for pixels only
	} {
		c, err := encoders.ParseConfig([]byte(bad))
		if err == nil {
			err = c.Defaults().Validate()
		}
		if !errors.Is(err, encoders.ErrConfig) {
			t.Errorf("%q: got %v, want an ErrConfig", bad, err)
		}
	}
	// the documented example parses and validates
	ex, err := encoders.LoadConfig(filepath.Join("..", "docs", "examples", "encode.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Defaults().Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestSampleRejects: a missing modality, a text over max_len with overflow: reject and an
// undecodable audio file are rejects with their specific reasons.
func TestSampleRejects(t *testing.T) {
	c := encoders.Config{Text: encoders.TextConfig{Overflow: "reject", MaxLen: 3}}.Defaults()
	set, err := encoders.NewSet(c)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	d := &encoders.FitData{Labels: []string{"a"}, Samples: []encoders.Sample{{Text: "a small red circle", HasText: true}}}
	for _, e := range set.Encoders {
		if f, ok := e.(encoders.Fitter); ok {
			if _, err := f.Fit(context.Background(), d, dir); err != nil {
				t.Fatal(err)
			}
		}
	}
	png := mustPNG(t)
	wav := mustWAV(t)
	for _, tc := range []struct {
		name   string
		s      encoders.Sample
		reason string
	}{
		{"no image", encoders.Sample{Audio: wav, Text: "a", HasText: true, Label: "a"}, encoders.ReasonMissingImage},
		{"no audio", encoders.Sample{Image: png, Text: "a", HasText: true, Label: "a"}, encoders.ReasonMissingAudio},
		{"no text", encoders.Sample{Image: png, Audio: wav, Label: "a"}, encoders.ReasonMissingText},
		{"long text", encoders.Sample{Image: png, Audio: wav, Text: "a small red circle in the middle", HasText: true, Label: "a"}, encoders.ReasonTextTooLong},
		{"bad audio", encoders.Sample{Image: png, Audio: []byte("RIFF\x10\x00\x00\x00WAVEjunk"), Text: "a", HasText: true, Label: "a"}, encoders.ReasonAudioDecode},
		{"bad image", encoders.Sample{Image: png[:40], Audio: wav, Text: "a", HasText: true, Label: "a"}, encoders.ReasonImageDecode},
		{"unknown label", encoders.Sample{Image: png, Audio: wav, Text: "a", HasText: true, Label: "b"}, encoders.ReasonUnknownLabel},
	} {
		_, err := set.EncodeRow(&tc.s)
		var re *pipeline.RejectError
		if !errors.As(err, &re) || re.Reason != tc.reason {
			t.Errorf("%s: got %v, want a reject with reason %s", tc.name, err, tc.reason)
		}
	}
	ok := encoders.Sample{Image: png, Audio: wav, Text: "a", HasText: true, Label: "a"}
	if v, err := set.EncodeRow(&ok); err != nil || v[0] != int32(0) {
		t.Fatalf("good sample: %v %v", v, err)
	}
}

func mustPNG(t *testing.T) []byte {
	f, err := (gen.Options{Seed: 1, Samples: 1, ImageFormat: "png"}).Render(0)
	if err != nil {
		t.Fatal(err)
	}
	return f.Image
}

func mustWAV(t *testing.T) []byte {
	f, err := (gen.Options{Seed: 1, Samples: 1}).Render(0)
	if err != nil {
		t.Fatal(err)
	}
	return f.Audio
}

// TestExternalLatents imports the latents of one pixels-encoded part as external latents:
// its keys get the same values, every other key is a missing_latent reject.
func TestExternalLatents(t *testing.T) {
	_, in, _ := corpus(t, 20)
	dir := t.TempDir()
	px := filepath.Join(dir, "px")
	c := encoders.Config{Image: encoders.ImageConfig{Size: 16}, Audio: encoders.AudioConfig{Encoder: encoders.None},
		Text: encoders.TextConfig{Encoder: encoders.None}}.Defaults()
	pres := encode(t, in, px, c, pipeline.Partition{}, 2)
	ext := filepath.Join(px, "parts", "part-0-00001.parquet")
	var n1 int64 // rows of that part (the corrupt image may be one of its inputs)
	for _, u := range pres.Progress.Units {
		if u.Part == filepath.Base(ext) {
			n1 = u.Rows
		}
	}
	c.Image.Encoder = "external"
	c.Image.External = encoders.ExternalConfig{Path: ext, Shape: [3]int{3, 16, 16}}
	c = c.Defaults()
	out := filepath.Join(dir, "ext")
	res := encode(t, in, out, c, pipeline.Partition{}, 2)
	want := column(t, px, "image_latent")
	got := column(t, out, "image_latent")
	rows, rej, by := res.Progress.Totals()
	if n1 < 5 || rows != n1 || rej != 20-n1 || by[encoders.ReasonNoLatent] != 20-n1 || int64(len(got)) != n1 {
		t.Fatalf("%d rows, %d rejected %v; want %d rows from %s and %d missing_latent", rows, rej, by, n1, ext, 20-n1)
	}
	for k, v := range got {
		w := want[k]
		if len(v) != 768 || len(w) != 768 {
			t.Fatalf("%s: %d values, want 768", k, len(v))
		}
		for i := range v {
			if v[i] != w[i] {
				t.Fatalf("%s: value %d = %v, want %v", k, i, v[i], w[i])
			}
		}
	}
	if a := res.State.Artefacts; len(a) != 2 || a[0].Name != "external" || a[0].SHA256 != hashFile(t, ext) {
		t.Fatalf("artefacts %+v", a)
	}
}
