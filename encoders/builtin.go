package encoders

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/immkit/immkit/encoders/audio"
	imgenc "github.com/immkit/immkit/encoders/image"
	"github.com/immkit/immkit/encoders/text"
	"github.com/immkit/immkit/pipeline"
)

// Reject reasons given by the built-in encoders.
const (
	ReasonImageDecode   = "image_decode"
	ReasonImageTooLarge = "image_too_large"
	ReasonAudioDecode   = "audio_decode"
	ReasonAudioTooLarge = "audio_too_large"
	ReasonTextTooLong   = "text_too_long"
	ReasonUnknownLabel  = "unknown_label"
	ReasonNoLatent      = "missing_latent" // external: no latent for the sample's key
	// A sample without a modality whose encoder is on is rejected: every encoded row has
	// every configured column, at its fixed length (nulls would break fixed-size batches).
	ReasonMissingImage = "missing_image"
	ReasonMissingAudio = "missing_audio"
	ReasonMissingText  = "missing_text"
)

// ArtefactsDir is where Fit writes artefacts, under the output directory.
const ArtefactsDir = "artefacts"

func init() {
	Register("labels", ModLabel, func(c *Config) (Encoder, error) { return &labelEncoder{}, nil })
	Register("pixels", ModImage, func(c *Config) (Encoder, error) { return newImageEncoder(c, "pixels"), nil })
	Register("patch-pca", ModImage, func(c *Config) (Encoder, error) { return newImageEncoder(c, "patch-pca"), nil })
	Register("vq", ModImage, func(c *Config) (Encoder, error) { return newImageEncoder(c, "vq"), nil })
	Register("external", ModImage, func(c *Config) (Encoder, error) { return &externalEncoder{cfg: c.Image.External}, nil })
	for _, p := range []string{"whisper-80", "whisper-128"} {
		Register(p, ModAudio, func(c *Config) (Encoder, error) { return newAudioEncoder(c, p) })
	}
	Register("mulaw", ModAudio, func(c *Config) (Encoder, error) { return newAudioEncoder(c, "mulaw") })
	Register("audio-vq", ModAudio, func(c *Config) (Encoder, error) { return newAudioEncoder(c, "audio-vq") })
	Register("bpe", ModText, func(c *Config) (Encoder, error) { return &bpeEncoder{cfg: c.Text}, nil })
}

// ---- labels ----

// labelEncoder maps the sorted distinct labels of the whole input to 0, 1, ...; an empty
// label gets -1.
type labelEncoder struct {
	labels []string
	ids    map[string]int32
}

func (*labelEncoder) Name() string    { return "labels" }
func (*labelEncoder) Version() string { return "1" }
func (*labelEncoder) Fields() []arrow.Field {
	return []arrow.Field{{Name: ColLabelID, Type: arrow.PrimitiveTypes.Int32}}
}

type labelFile struct {
	Labels []string `json:"labels"` // label_id i is Labels[i]
}

func (e *labelEncoder) Fit(_ context.Context, d *FitData, out string) ([]Artefact, error) {
	labels := []string{}
	for _, l := range d.Labels {
		if l != "" {
			labels = append(labels, l)
		}
	}
	sort.Strings(labels)
	b, err := json.MarshalIndent(labelFile{Labels: labels}, "", "  ")
	if err != nil {
		return nil, err
	}
	rel := filepath.Join(ArtefactsDir, "labels.json")
	if err := writeFileAtomic(filepath.Join(out, rel), append(b, '\n')); err != nil {
		return nil, err
	}
	a, err := fileArtefact(out, "labels", rel)
	if err != nil {
		return nil, err
	}
	return []Artefact{a}, e.Load(out, []Artefact{a})
}

func (e *labelEncoder) Load(out string, arts []Artefact) error {
	p, err := checkArtefact(out, "labels", arts)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("encoders: labels: %w", err)
	}
	var f labelFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("encoders: labels file %s: %w", p, err)
	}
	e.labels, e.ids = f.Labels, make(map[string]int32, len(f.Labels))
	for i, l := range f.Labels {
		e.ids[l] = int32(i)
	}
	return nil
}

func (e *labelEncoder) Encode(s *Sample) ([]any, error) {
	if e.ids == nil {
		return nil, errors.New("encoders: labels used before Fit or Load")
	}
	if s.Label == "" {
		return []any{int32(-1)}, nil
	}
	id, ok := e.ids[s.Label]
	if !ok {
		return nil, pipeline.Rejectf(ReasonUnknownLabel, "label %q is not in the fitted vocabulary of %d labels", s.Label, len(e.ids))
	}
	return []any{id}, nil
}

// Decode returns the label of a label_id.
func (e *labelEncoder) Decode(v []any) (any, error) {
	id, ok := v[0].(int32)
	if !ok || id < -1 || int(id) >= len(e.labels) {
		return nil, fmt.Errorf("encoders: label_id %v out of range", v[0])
	}
	if id == -1 {
		return "", nil
	}
	return e.labels[id], nil
}

// ---- images ----

type imageEncoder struct {
	kind string
	cfg  ImageConfig
	pipe imgenc.Pipeline
	pca  *imgenc.PatchPCA
	vq   *imgenc.VQ
}

func newImageEncoder(c *Config, kind string) *imageEncoder {
	ic := c.Image
	return &imageEncoder{kind: kind, cfg: ic, pipe: imgenc.Pipeline{Resizer: imgenc.Resizer{
		Width: ic.Size, Height: ic.Size, Mode: imgenc.Mode(ic.Resize), Filter: ic.Filter,
	}}}
}

func (e *imageEncoder) Name() string { return e.kind }

// pixels is the pixels encoder of the config (RGB, or grey with image.gray).
func (e *imageEncoder) pixels() imgenc.Pixels { return imgenc.Pixels{Gray: e.cfg.Gray} }

func (e *imageEncoder) Version() string {
	switch e.kind {
	case "pixels":
		return imgenc.Pixels{}.Version()
	case "patch-pca":
		return (*imgenc.PatchPCA)(nil).Version()
	}
	return (*imgenc.VQ)(nil).Version()
}

func (e *imageEncoder) Fields() []arrow.Field {
	s, p := e.cfg.Size, e.cfg.Patch
	id := e.Name() + "@" + e.Version()
	var f arrow.Field
	switch e.kind {
	case "pixels":
		f = imgenc.LatentField(ColImageLatent, e.pixels().Channels(), s, s, id, e.cfg.Half)
	case "patch-pca":
		f = imgenc.LatentField(ColImageLatent, e.cfg.Dims, s/p, s/p, id, e.cfg.Half)
	}
	if f.Name != "" {
		return []arrow.Field{f}
	}
	md := arrow.NewMetadata([]string{"shape", "codes", "encoder"},
		[]string{fmt.Sprintf("%d,%d", s/p, s/p), strconv.Itoa(e.cfg.Codes), id})
	return []arrow.Field{{Name: ColImageTokens, Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Metadata: md}}
}

// load decodes and resizes a sample's image; errors are rejects with a specific reason.
func (e *imageEncoder) load(data []byte) (*image.NRGBA, error) {
	img, _, err := e.pipe.Load(data)
	if errors.Is(err, imgenc.ErrTooLarge) {
		return nil, pipeline.Reject(ReasonImageTooLarge, err)
	}
	if err != nil {
		return nil, pipeline.Reject(ReasonImageDecode, err)
	}
	return img, nil
}

func (e *imageEncoder) Encode(s *Sample) ([]any, error) {
	if s.Image == nil {
		return nil, pipeline.Rejectf(ReasonMissingImage, "sample has no image (set image.encoder: none to encode without images)")
	}
	img, err := e.load(s.Image)
	if err != nil {
		return nil, err
	}
	switch e.kind {
	case "pixels":
		return []any{e.pixels().Encode(img)}, nil
	case "patch-pca":
		if e.pca == nil {
			return nil, errors.New("encoders: patch-pca used before Fit or Load")
		}
		l, err := e.pca.Encode(img)
		if err != nil {
			return nil, pipeline.Reject(ReasonImageDecode, err)
		}
		return []any{l}, nil
	}
	if e.vq == nil {
		return nil, errors.New("encoders: vq used before Fit or Load")
	}
	t, err := e.vq.Encode(img)
	if err != nil {
		return nil, pipeline.Reject(ReasonImageDecode, err)
	}
	return []any{t.IDs}, nil
}

// Decode turns a latent back into a picture (pixels, patch-pca).
func (e *imageEncoder) Decode(v []any) (any, error) {
	switch e.kind {
	case "pixels":
		if l, ok := v[0].(imgenc.Latent); ok {
			return e.pixels().Decode(l)
		}
	case "patch-pca":
		if l, ok := v[0].(imgenc.Latent); ok && e.pca != nil {
			return e.pca.Decode(l)
		}
	case "vq":
		if ids, ok := v[0].([]int32); ok && e.vq != nil {
			g := e.cfg.Size / e.cfg.Patch
			return e.vq.Decode(imgenc.Tokens{H: g, W: g, IDs: ids})
		}
	}
	return nil, fmt.Errorf("encoders: %s cannot decode %T", e.kind, v[0])
}

func (e *imageEncoder) fitImages(d *FitData) []*image.NRGBA {
	var imgs []*image.NRGBA
	for i := range d.Samples {
		if d.Samples[i].Image == nil {
			continue
		}
		if img, err := e.load(d.Samples[i].Image); err == nil {
			imgs = append(imgs, img)
		}
	}
	return imgs
}

func (e *imageEncoder) Fit(_ context.Context, d *FitData, out string) ([]Artefact, error) {
	if e.kind == "pixels" {
		return nil, nil
	}
	imgs := e.fitImages(d)
	if len(imgs) == 0 {
		return nil, fmt.Errorf("encoders: %s: no decodable image in the fitting sample", e.kind)
	}
	rel := filepath.Join(ArtefactsDir, e.kind+".safetensors")
	path := filepath.Join(out, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	const maxPatches = 200000
	var err error
	if e.kind == "patch-pca" {
		var m *imgenc.PatchPCA
		if m, _, err = imgenc.FitPatchPCA(imgs, e.cfg.Patch, e.cfg.Dims, maxPatches, d.Seed); err == nil {
			_, err = m.Save(path)
		}
	} else {
		var q *imgenc.VQ
		if q, _, err = imgenc.FitVQ(imgs, e.cfg.Patch, e.cfg.Codes, 20, maxPatches, d.Seed); err == nil {
			_, err = q.Save(path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("encoders: fit %s: %w", e.kind, err)
	}
	a, err := fileArtefact(out, e.kind, rel)
	if err != nil {
		return nil, err
	}
	return []Artefact{a}, e.Load(out, []Artefact{a})
}

func (e *imageEncoder) Load(out string, arts []Artefact) error {
	if e.kind == "pixels" {
		return nil
	}
	p, err := checkArtefact(out, e.kind, arts)
	if err != nil {
		return err
	}
	if e.kind == "patch-pca" {
		m, _, err := imgenc.LoadPatchPCA(p)
		if err != nil {
			return err
		}
		if m.P != e.cfg.Patch || m.D != e.cfg.Dims {
			return fmt.Errorf("encoders: %s has p=%d d=%d, config says patch=%d dims=%d", p, m.P, m.D, e.cfg.Patch, e.cfg.Dims)
		}
		e.pca = m
		return nil
	}
	q, _, err := imgenc.LoadVQ(p)
	if err != nil {
		return err
	}
	if q.P != e.cfg.Patch || q.K != e.cfg.Codes {
		return fmt.Errorf("encoders: %s has p=%d k=%d, config says patch=%d codes=%d", p, q.P, q.K, e.cfg.Patch, e.cfg.Codes)
	}
	e.vq = q
	return nil
}

// ---- audio ----

type audioEncoder struct {
	kind  string
	cfg   AudioConfig
	mel   audio.MelConfig
	bank  *audio.MelBank
	clipN int // samples per clip at mel.SampleRate
	cb    *audio.Codebook
}

func newAudioEncoder(c *Config, kind string) (*audioEncoder, error) {
	preset := kind
	if kind == "mulaw" || kind == "audio-vq" {
		preset = c.Audio.Mel
	}
	mc, err := audio.Preset(preset)
	if err != nil {
		return nil, fmt.Errorf("%w: audio: %v", ErrConfig, err)
	}
	bank, err := audio.NewMelBank(mc)
	if err != nil {
		return nil, err
	}
	n := int(c.Audio.ClipSeconds*float64(mc.SampleRate) + 0.5)
	return &audioEncoder{kind: kind, cfg: c.Audio, mel: mc, bank: bank, clipN: n}, nil
}

func (e *audioEncoder) Name() string { return e.kind }
func (e *audioEncoder) Version() string {
	if e.kind == "mulaw" {
		return "1"
	}
	return "1" // audio-mel@1 (audio.EncoderName) with a fixed clip
}

// Frames is the number of mel frames of every clip.
func (e *audioEncoder) Frames() int {
	n, err := e.mel.NumFrames(e.clipN)
	if err != nil {
		return 0
	}
	return n
}

func (e *audioEncoder) Fields() []arrow.Field {
	id := e.Name() + "@" + e.Version()
	clip := strconv.FormatFloat(e.cfg.ClipSeconds, 'g', -1, 64)
	switch e.kind {
	case "mulaw", "audio-vq":
		keys := []string{"encoder", "sample_rate", "clip_seconds", "crop"}
		vals := []string{id, strconv.Itoa(e.mel.SampleRate), clip, e.cfg.Crop}
		if e.kind == "audio-vq" {
			keys = append(keys, "codes", "hop", "n_mels")
			vals = append(vals, strconv.Itoa(e.cfg.Codes), strconv.Itoa(e.mel.Hop), strconv.Itoa(e.mel.NMels))
		}
		return []arrow.Field{{Name: ColAudioTokens, Type: arrow.ListOf(arrow.PrimitiveTypes.Int32),
			Metadata: arrow.NewMetadata(keys, vals)}}
	}
	f := audio.MelField(e.mel)
	keys := append(f.Metadata.Keys(), "frames", "clip_seconds", "crop")
	vals := append(f.Metadata.Values(), strconv.Itoa(e.Frames()), clip, e.cfg.Crop)
	for i, k := range keys {
		if k == "encoder" {
			vals[i] = id
		}
	}
	f.Metadata = arrow.NewMetadata(keys, vals)
	f.Nullable = false
	return []arrow.Field{f}
}

// Clip decodes, mixes to mono, resamples to the mel rate and cuts or zero-pads to the
// fixed clip length. Errors are rejects.
func (e *audioEncoder) Clip(data []byte) ([]float32, error) {
	return clipAudio(data, e.mel.SampleRate, e.clipN, e.cfg.Crop)
}

func clipAudio(data []byte, rate, n int, crop string) ([]float32, error) {
	a, err := audio.Decode(data)
	if errors.Is(err, audio.ErrTooLarge) {
		return nil, pipeline.Reject(ReasonAudioTooLarge, err)
	}
	if err != nil {
		return nil, pipeline.Reject(ReasonAudioDecode, err)
	}
	x := a.Mono()
	if a.Rate != rate {
		if x, err = audio.Resample(x, a.Rate, rate); err != nil {
			return nil, pipeline.Reject(ReasonAudioDecode, err)
		}
	}
	out := make([]float32, n)
	start := 0
	if crop == "center" && len(x) > n {
		start = (len(x) - n) / 2
	}
	if start < len(x) {
		copy(out, x[start:])
	}
	return out, nil
}

func (e *audioEncoder) Encode(s *Sample) ([]any, error) {
	if s.Audio == nil {
		return nil, pipeline.Rejectf(ReasonMissingAudio, "sample has no audio (set audio.encoder: none to encode without audio)")
	}
	x, err := e.Clip(s.Audio)
	if err != nil {
		return nil, err
	}
	if e.kind == "mulaw" {
		return []any{audio.MulawEncode(x)}, nil
	}
	m, err := e.bank.Compute(x)
	if err != nil {
		return nil, pipeline.Reject(ReasonAudioDecode, err)
	}
	if e.kind == "audio-vq" {
		if e.cb == nil {
			return nil, errors.New("encoders: audio-vq used before Fit or Load")
		}
		t, err := e.cb.Encode(m)
		if err != nil {
			return nil, pipeline.Reject(ReasonAudioDecode, err)
		}
		return []any{t}, nil
	}
	return []any{m.FrameMajor()}, nil
}

func (e *audioEncoder) Fit(_ context.Context, d *FitData, out string) ([]Artefact, error) {
	if e.kind != "audio-vq" {
		return nil, nil
	}
	var mels []*audio.Mel
	for i := range d.Samples {
		if d.Samples[i].Audio == nil {
			continue
		}
		x, err := e.Clip(d.Samples[i].Audio)
		if err != nil {
			continue
		}
		if m, err := e.bank.Compute(x); err == nil {
			mels = append(mels, m)
		}
	}
	if len(mels) == 0 {
		return nil, errors.New("encoders: audio-vq: no decodable audio in the fitting sample")
	}
	cb, err := audio.FitCodebook(mels, audio.VQOptions{K: e.cfg.Codes, Seed: d.Seed})
	if err != nil {
		return nil, fmt.Errorf("encoders: fit audio-vq: %w", err)
	}
	var buf bytes.Buffer
	if _, err := cb.Save(&buf); err != nil {
		return nil, err
	}
	rel := filepath.Join(ArtefactsDir, "audio-vq.safetensors")
	if err := writeFileAtomic(filepath.Join(out, rel), buf.Bytes()); err != nil {
		return nil, err
	}
	a, err := fileArtefact(out, "audio-vq", rel)
	if err != nil {
		return nil, err
	}
	return []Artefact{a}, e.Load(out, []Artefact{a})
}

func (e *audioEncoder) Load(out string, arts []Artefact) error {
	if e.kind != "audio-vq" {
		return nil
	}
	p, err := checkArtefact(out, "audio-vq", arts)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	cb, err := audio.LoadCodebook(b)
	if err != nil {
		return err
	}
	e.cb = cb
	return nil
}

// ---- text ----

type bpeEncoder struct {
	cfg TextConfig
	enc *text.Encoding
}

func (*bpeEncoder) Name() string    { return "bpe" }
func (*bpeEncoder) Version() string { return "1" }
func (e *bpeEncoder) Fields() []arrow.Field {
	md := arrow.NewMetadata([]string{"encoder", "max_len", "pad_id", "overflow"},
		[]string{"bpe@1", strconv.Itoa(e.cfg.MaxLen), strconv.Itoa(int(e.cfg.PadID)), e.cfg.Overflow})
	return []arrow.Field{
		{Name: ColTextTokens, Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Metadata: md},
		{Name: ColTextLen, Type: arrow.PrimitiveTypes.Int32},
	}
}

// Tokens encodes a text to exactly MaxLen ids (padded with PadID) and its true length.
func (e *bpeEncoder) Tokens(s string) ([]int32, int32, error) {
	ids := e.enc.Encode(nil, []byte(s))
	if len(ids) > e.cfg.MaxLen {
		if e.cfg.Overflow == "reject" {
			return nil, 0, pipeline.Rejectf(ReasonTextTooLong, "%d tokens > text.max_len %d", len(ids), e.cfg.MaxLen)
		}
		ids = ids[:e.cfg.MaxLen]
	}
	n := int32(len(ids))
	for len(ids) < e.cfg.MaxLen {
		ids = append(ids, e.cfg.PadID)
	}
	return ids, n, nil
}

func (e *bpeEncoder) Encode(s *Sample) ([]any, error) {
	if !s.HasText {
		return nil, pipeline.Rejectf(ReasonMissingText, "sample has no text (set text.encoder: none to encode without text)")
	}
	if e.enc == nil {
		return nil, errors.New("encoders: bpe used before Fit or Load")
	}
	ids, n, err := e.Tokens(s.Text)
	if err != nil {
		return nil, err
	}
	return []any{ids, n}, nil
}

// Decode returns the text of text_tokens cut at text_len.
func (e *bpeEncoder) Decode(v []any) (any, error) {
	ids, ok1 := v[0].([]int32)
	n, ok2 := v[1].(int32)
	if !ok1 || !ok2 || int(n) > len(ids) || n < 0 {
		return nil, errors.New("encoders: bpe: bad values to decode")
	}
	b, err := e.enc.Decode(nil, ids[:n])
	return string(b), err
}

const bpeRankFile = "bpe.tiktoken"

func (e *bpeEncoder) Fit(_ context.Context, d *FitData, out string) ([]Artefact, error) {
	var enc *text.Encoding
	var err error
	if e.cfg.Tokenizer != "" {
		enc, err = loadTokenizer(e.cfg.Tokenizer)
	} else {
		var docs [][]byte
		for i := range d.Samples {
			if d.Samples[i].HasText {
				docs = append(docs, []byte(d.Samples[i].Text))
			}
		}
		var tr *text.Trained
		tr, err = text.Train(text.TrainConfig{VocabSize: e.cfg.VocabSize, Pattern: text.PatternCL100k, Workers: 1}, docs)
		if err == nil {
			enc, err = text.New(text.Config{Name: "bpe-trained", Pattern: text.PatternCL100k, Ranks: tr.Ranks, Special: tr.Special})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("encoders: bpe: %w", err)
	}
	rel := filepath.Join(ArtefactsDir, bpeRankFile)
	if err := os.MkdirAll(filepath.Join(out, ArtefactsDir), 0o755); err != nil {
		return nil, err
	}
	if err := enc.Save(filepath.Join(out, rel)); err != nil {
		return nil, fmt.Errorf("encoders: bpe: %w", err)
	}
	a1, err := fileArtefact(out, "bpe", rel)
	if err != nil {
		return nil, err
	}
	relCfg, err := filepath.Rel(out, text.ConfigPath(filepath.Join(out, rel)))
	if err != nil {
		return nil, err
	}
	a2, err := fileArtefact(out, "bpe-config", relCfg)
	if err != nil {
		return nil, err
	}
	arts := []Artefact{a1, a2}
	return arts, e.Load(out, arts)
}

func (e *bpeEncoder) Load(out string, arts []Artefact) error {
	if _, err := checkArtefact(out, "bpe", arts); err != nil {
		return err
	}
	cfg, err := checkArtefact(out, "bpe-config", arts)
	if err != nil {
		return err
	}
	enc, err := text.LoadConfig(cfg)
	if err != nil {
		return err
	}
	e.enc = enc
	return nil
}

// loadTokenizer opens a tokenizer config .json, a .tiktoken file with its config next to
// it, or a standard encoding's .tiktoken file named after it.
func loadTokenizer(path string) (*text.Encoding, error) {
	if filepath.Ext(path) == ".json" {
		return text.LoadConfig(path)
	}
	if _, err := os.Stat(text.ConfigPath(path)); err == nil {
		return text.LoadConfig(text.ConfigPath(path))
	}
	ranks, err := text.LoadTiktoken(path)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(path)
	name = name[:len(name)-len(filepath.Ext(name))]
	c, err := text.Standard(name, ranks)
	if err != nil {
		return nil, fmt.Errorf("%s has no config next to it (%s) and %w", path, text.ConfigPath(path), err)
	}
	return text.New(c)
}

// ---- external latents ----

// externalEncoder looks up latents computed elsewhere by sample key. Its artefact is the
// external Parquet file itself (path as configured, with its sha256).
type externalEncoder struct {
	cfg     ExternalConfig
	latents map[string]imgenc.Latent
}

func (*externalEncoder) Name() string    { return "external" }
func (*externalEncoder) Version() string { return imgenc.External{}.Version() }
func (e *externalEncoder) Fields() []arrow.Field {
	s := e.cfg.Shape
	return []arrow.Field{imgenc.LatentField(ColImageLatent, s[0], s[1], s[2], "external@"+e.Version(), false)}
}

func (e *externalEncoder) Fit(_ context.Context, _ *FitData, out string) ([]Artefact, error) {
	sum, err := fileSHA256(e.cfg.Path)
	if err != nil {
		return nil, err
	}
	a := []Artefact{{Name: "external", Path: filepath.ToSlash(e.cfg.Path), SHA256: sum}}
	return a, e.Load(out, a)
}

func (e *externalEncoder) Load(_ string, arts []Artefact) error {
	for _, a := range arts {
		if a.Name != "external" {
			continue
		}
		sum, err := fileSHA256(filepath.FromSlash(a.Path))
		if err != nil {
			return err
		}
		if sum != a.SHA256 {
			return fmt.Errorf("encoders: external latents %s have sha256 %s, fitted with %s", a.Path, sum, a.SHA256)
		}
		s := e.cfg.Shape
		ls, keys, err := imgenc.External{C: s[0], H: s[1], W: s[2]}.FromParquet(e.cfg.Path, e.cfg.Column, e.cfg.KeyColumn)
		if err != nil {
			return err
		}
		e.latents = make(map[string]imgenc.Latent, len(ls))
		for i, k := range keys {
			e.latents[k] = ls[i]
		}
		return nil
	}
	return errors.New("encoders: artefact external is missing; run immdata fit")
}

func (e *externalEncoder) Encode(s *Sample) ([]any, error) {
	if e.latents == nil {
		return nil, errors.New("encoders: external used before Fit or Load")
	}
	l, ok := e.latents[s.Key]
	if !ok {
		return nil, pipeline.Rejectf(ReasonNoLatent, "no external latent for key %q in %s", s.Key, e.cfg.Path)
	}
	return []any{l}, nil
}
