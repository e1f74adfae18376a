package mmdata

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/immkit/immkit/encoders/audio"
	imgenc "github.com/immkit/immkit/encoders/image"
	"github.com/immkit/immkit/encoders/text"
	"github.com/immkit/immkit/imm"
	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/shards"
)

// Modality (segment) names, in particle order.
const (
	Image = "image"
	Audio = "audio"
	Text  = "text"
)

// Encoded-sample column names read by this package (docs/encode.md).
const (
	colLabelID     = "label_id"
	colImageLatent = "image_latent"
	colImageTokens = "image_tokens"
	colAudioMel    = "audio_mel"
	colAudioTokens = "audio_tokens"
	colTextTokens  = "text_tokens"
	colTextLen     = "text_len"
)

// Text padding modes of Options.TextPad.
const (
	// TextPadEnd puts the end token at position text_len and masks the positions after it.
	TextPadEnd = "end"
	// TextPadFill fills every position from text_len on with the end token, all unmasked.
	TextPadFill = "fill"
)

// Audio standardisations of Options.AudioNorm.
const (
	AudioNormBin    = "bin"
	AudioNormGlobal = "global"
)

// ErrUnsupported is wrapped by the errors for encodings this package cannot turn into a
// continuous segment (discrete image or audio tokens).
var ErrUnsupported = errors.New("mmdata: unsupported encoding")

// Options configure a Layout. Zero values take the defaults given per field.
type Options struct {
	ImagePatch int     // patch side P for the image segment (tokens = (H/P)*(W/P), features = C*P*P); default 4
	AudioGroup int     // mel frames per audio token (features = AudioGroup*n_mels); default 10
	TextLen    int     // text positions per particle; default 16
	TextDim    int     // width of the frozen text embedding table; default 16
	Seed       uint64  // seed of the frozen text table (Gaussian, scaled to RMS sigma_d by imm.NewTextTable)
	SigmaD     float64 // data standard deviation the segments are scaled to; default 0.5
	// Modalities is the subset of "image", "audio", "text" to use; nil means every one the
	// shards have. Naming one the shards lack is an error.
	Modalities []string
	// TextPad is TextPadEnd (default) or TextPadFill; see the package comment.
	TextPad string
	// ArtefactsDir is where the manifest's artefact paths (artefacts/bpe.json ...) are
	// looked for first: the `immdata encode` output directory. The shard directory itself
	// is tried next.
	ArtefactsDir string
	// Stats, when set, are used instead of computing the normalisation statistics from
	// the training split (save Layout.Stats with a run to sample from it later exactly).
	Stats *Stats
	// StatsSamples bounds the training samples the statistics are computed on; default 4096.
	StatsSamples int
	// GriffinLimIters is the number of Griffin-Lim iterations of Decode; default 32.
	GriffinLimIters int
	// AudioNorm is how the log-mel is standardised when the statistics are computed:
	// AudioNormGlobal (default: one mean and std over every bin, as Whisper's own
	// (x+4)/4) or AudioNormBin (each mel bin by its own mean and std). Per-bin
	// standardisation raises bins that barely vary (the silent top of a corpus of tones,
	// the empty band above a low-pass) to unit variance, and they then take most of the
	// particle's distance; global keeps their small share. Given Stats are used as they
	// are (a run's config holds them, so its normalisation never changes).
	AudioNorm string
	// MelInvert is how Decode maps a mel to a linear spectrogram before Griffin-Lim:
	// "nnls" (default, librosa's mel_to_stft) or "pinv" (pseudo-inverse, much faster,
	// see docs/multimodal-data.md).
	MelInvert string
}

func (o Options) withDefaults() Options {
	if o.ImagePatch == 0 {
		o.ImagePatch = 4
	}
	if o.AudioGroup == 0 {
		o.AudioGroup = 10
	}
	if o.TextLen == 0 {
		o.TextLen = 16
	}
	if o.TextDim == 0 {
		o.TextDim = 16
	}
	if o.SigmaD == 0 {
		o.SigmaD = 0.5
	}
	if o.TextPad == "" {
		o.TextPad = TextPadEnd
	}
	if o.StatsSamples == 0 {
		o.StatsSamples = 4096
	}
	if o.GriffinLimIters == 0 {
		o.GriffinLimIters = 32
	}
	if o.MelInvert == "" {
		o.MelInvert = string(audio.InvertNNLS)
	}
	if o.AudioNorm == "" {
		o.AudioNorm = AudioNormGlobal
	}
	return o
}

func (o Options) validate() error {
	switch {
	case o.ImagePatch < 1 || o.AudioGroup < 1 || o.TextLen < 1 || o.TextDim < 1:
		return fmt.Errorf("mmdata: image patch %d, audio group %d, text length %d and text dim %d must be >= 1", o.ImagePatch, o.AudioGroup, o.TextLen, o.TextDim)
	case !(o.SigmaD > 0):
		return fmt.Errorf("mmdata: sigma_d %v must be positive", o.SigmaD)
	case o.TextPad != TextPadEnd && o.TextPad != TextPadFill:
		return fmt.Errorf("mmdata: text padding %q, want %q or %q", o.TextPad, TextPadEnd, TextPadFill)
	case o.MelInvert != string(audio.InvertNNLS) && o.MelInvert != string(audio.InvertPinv):
		return fmt.Errorf("mmdata: mel inversion %q, want nnls or pinv", o.MelInvert)
	case o.AudioNorm != AudioNormBin && o.AudioNorm != AudioNormGlobal:
		return fmt.Errorf("mmdata: audio normalisation %q, want %q or %q", o.AudioNorm, AudioNormBin, AudioNormGlobal)
	case o.StatsSamples < 1 || o.GriffinLimIters < 1:
		return fmt.Errorf("mmdata: stats samples %d and Griffin-Lim iterations %d must be >= 1", o.StatsSamples, o.GriffinLimIters)
	}
	for _, m := range o.Modalities {
		if m != Image && m != Audio && m != Text {
			return fmt.Errorf("mmdata: unknown modality %q (want image, audio or text)", m)
		}
	}
	return nil
}

// Stats are the normalisation statistics of the continuous segments, computed on the
// training split (Samples samples) in float64.
type Stats struct {
	Samples   int       `json:"samples"`
	ImageMean []float64 `json:"image_mean,omitempty"` // per latent channel, len C
	ImageStd  []float64 `json:"image_std,omitempty"`
	AudioMean []float64 `json:"audio_mean,omitempty"` // per mel bin, len n_mels
	AudioStd  []float64 `json:"audio_std,omitempty"`
	// AudioMin and AudioMax are the per-bin range of the log-mel over the same samples.
	// Decode clamps generated mels to it (as pixels are clamped to 0..255): a guided
	// sample can overshoot the data by several log10 units, and Griffin-Lim then turns the
	// few loudest frames into clicks over silence. Configs written before they existed
	// have neither and decode unclamped.
	AudioMin []float64 `json:"audio_min,omitempty"`
	AudioMax []float64 `json:"audio_max,omitempty"`
}

// minStd floors the standard deviations, so a constant channel maps to 0 instead of
// dividing by zero.
const minStd = 1e-3

// Layout maps samples of one shard set to particles and back. It is read-only after
// NewLayout and safe for concurrent use (Decode allocates per call).
type Layout struct {
	// Segments are the particle's segments in order image, audio, text (those used).
	Segments []nn.Segment
	// Classes is the label vocabulary size (labels.json artefact); 0 = unconditional.
	Classes int
	// Labels are the class names: label_id i is Labels[i].
	Labels []string
	// Opts are the options with defaults applied.
	Opts Options
	// Stats are the normalisation statistics in use.
	Stats Stats

	Image *ImageSegment // nil when the particle has no image segment
	Audio *AudioSegment // nil when it has no audio segment
	Text  *TextSegment  // nil when it has no text segment

	dir      string
	manifest *shards.Manifest
	nulls    map[string]keyIndex // column -> keys whose value is null
}

// ImageSegment describes the image segment: an image latent of C x H x W cut into P x P
// patches, Tokens = (H/P)*(W/P), Features = C*P*P. For vq image tokens, H x W is the
// token grid, P the codes' patch side and C = 3: every token is its code's patch vector
// (feature (dy*P+dx)*3 + c, as encoders/image stores it), Tokens = H*W, Features = 3*P*P.
type ImageSegment struct {
	Encoder string // name@version from the column metadata: pixels@1, patch-pca@1, external@1, vq@1
	Column  string // image_latent, or image_tokens for vq
	C, H, W int
	P       int
	Mean    []float64 // per-channel latent mean (vq: per colour channel of the code vectors)
	Std     []float64 // per-channel latent std
	pca     *imgenc.PatchPCA
	vq      *imgenc.VQ
}

// Tokens is the number of tokens of the segment.
func (s *ImageSegment) Tokens() int {
	if s.vq != nil {
		return s.H * s.W
	}
	return (s.H / s.P) * (s.W / s.P)
}

// Features is the width of a token.
func (s *ImageSegment) Features() int { return s.C * s.P * s.P }

// AudioSegment describes the audio segment: Frames x NMels log-mel in groups of Group
// frames, Tokens = ceil(Frames/Group), Features = Group*NMels.
type AudioSegment struct {
	Encoder    string // name@version from the column metadata (whisper-80@1 ...)
	Frames     int
	NMels      int
	Hop        int
	SampleRate int
	Group      int
	Mean       []float64 // per mel bin
	Std        []float64
	Min, Max   []float64       // per mel bin: the range MelOf clamps to (nil: no clamp)
	Mel        audio.MelConfig // configuration of the mel, for Griffin-Lim
}

// TextSegment describes the text segment: Len positions of Dim-wide embeddings.
type TextSegment struct {
	Len   int
	Dim   int
	Vocab int   // tokenizer ids 0..Vocab-1
	End   int32 // the end token, = Vocab, row Vocab of Table
	PadID int32 // the column's padding id (positions past text_len)
	// Table is the frozen embedding table of Vocab+1 rows (the last is End).
	Table *imm.TextTable[float32]
	enc   *text.Encoding
}

// NewLayout reads the manifest of shardsDir, the artefacts it names (tokenizer, labels,
// image encoder state) and the normalisation statistics of the training split, and
// returns the particle layout for o.
func NewLayout(shardsDir string, o Options) (*Layout, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	m, err := shards.ReadManifest(shardsDir)
	if err != nil {
		return nil, err
	}
	l := &Layout{Opts: o, dir: shardsDir, manifest: m}
	want := func(mod string, present bool) (bool, error) {
		if o.Modalities == nil {
			return present, nil
		}
		if !slices.Contains(o.Modalities, mod) {
			return false, nil
		}
		if !present {
			return false, fmt.Errorf("mmdata: modality %s asked for, but the shards in %s have no %s column", mod, shardsDir, map[string]string{Image: colImageLatent, Audio: colAudioMel, Text: colTextTokens}[mod])
		}
		return true, nil
	}
	field := func(name string) (shards.Field, bool) { return m.Schema.Field(name) }

	// labels
	if _, ok := field(colLabelID); ok {
		if p, err := l.artefact("labels"); err == nil {
			if l.Labels, err = readLabels(p); err != nil {
				return nil, err
			}
			l.Classes = len(l.Labels)
		} else if !errors.Is(err, errNoArtefact) {
			return nil, err
		}
	}

	// image
	imgField, hasImg := field(colImageLatent)
	vqField, hasVQ := field(colImageTokens)
	if use, err := want(Image, hasImg || hasVQ); err != nil {
		return nil, err
	} else if use {
		if hasImg {
			l.Image, err = l.newImage(imgField)
		} else {
			l.Image, err = l.newVQ(vqField)
		}
		if err != nil {
			return nil, err
		}
		l.Segments = append(l.Segments, nn.Segment{Name: Image, Tokens: l.Image.Tokens(), Features: l.Image.Features()})
	}

	// audio
	melField, hasMel := field(colAudioMel)
	if _, tok := field(colAudioTokens); tok && !hasMel {
		if use, _ := want(Audio, true); use {
			return nil, fmt.Errorf("%w: the audio segment needs a log-mel (audio_mel from whisper-80/128); these shards hold audio_tokens (mulaw or audio-vq)", ErrUnsupported)
		}
	}
	if use, err := want(Audio, hasMel); err != nil {
		return nil, err
	} else if use {
		if l.Audio, err = l.newAudio(melField); err != nil {
			return nil, err
		}
		l.Segments = append(l.Segments, nn.Segment{Name: Audio, Tokens: (l.Audio.Frames + l.Audio.Group - 1) / l.Audio.Group, Features: l.Audio.Group * l.Audio.NMels})
	}

	// text
	txtField, hasTxt := field(colTextTokens)
	if use, err := want(Text, hasTxt); err != nil {
		return nil, err
	} else if use {
		if l.Text, err = l.newText(txtField); err != nil {
			return nil, err
		}
		l.Segments = append(l.Segments, nn.Segment{Name: Text, Tokens: l.Text.Len, Features: l.Text.Dim})
	}
	if len(l.Segments) == 0 {
		return nil, fmt.Errorf("mmdata: the shards in %s have no usable modality (image_latent, audio_mel or text_tokens) among %v", shardsDir, o.Modalities)
	}

	if err := l.readSide(); err != nil {
		return nil, err
	}
	if err := l.stats(); err != nil {
		return nil, err
	}
	return l, nil
}

// Dim is the particle dimension, the sum of Tokens*Features over the segments.
func (l *Layout) Dim() int { return l.config().Dim() }

// Offset is the position of the named segment in a particle and whether it exists.
func (l *Layout) Offset(name string) (int, bool) {
	for k, s := range l.Segments {
		if s.Name == name {
			return l.config().Offset(k), true
		}
	}
	return 0, false
}

func (l *Layout) config() nn.MultimodalConfig { return nn.MultimodalConfig{Segments: l.Segments} }

// LoaderOptions returns o with the Columns and SeqLen the layout needs set (label_id,
// image_latent, audio_mel, text_tokens and text_len, as present).
func (l *Layout) LoaderOptions(o shards.LoaderOptions) shards.LoaderOptions {
	var cols []string
	seqLen := func(col string, n int) {
		seq := make(map[string]int, len(o.SeqLen)+1)
		for k, v := range o.SeqLen {
			seq[k] = v
		}
		seq[col] = n
		o.SeqLen = seq
	}
	if _, ok := l.manifest.Schema.Field(colLabelID); ok && l.Classes > 0 {
		cols = append(cols, colLabelID)
	}
	if l.Image != nil {
		cols = append(cols, l.Image.Column)
		if l.Image.vq != nil {
			seqLen(colImageTokens, l.Image.Tokens())
		}
	}
	if l.Audio != nil {
		cols = append(cols, colAudioMel)
		seqLen(colAudioMel, l.Audio.melLoadLen())
	}
	if l.Text != nil {
		cols = append(cols, colTextTokens)
		if _, ok := l.manifest.Schema.Field(colTextLen); ok {
			cols = append(cols, colTextLen)
		}
		seqLen(colTextTokens, l.Text.Len)
	}
	o.Columns = cols
	return o
}

// errNoArtefact is returned by artefact when the manifest does not list the name.
var errNoArtefact = errors.New("mmdata: no such artefact")

// artefact returns the path of the named artefact, checked against its sha256.
func (l *Layout) artefact(name string) (string, error) {
	var a *shards.Artefact
	for i := range l.manifest.Artefacts {
		if l.manifest.Artefacts[i].Name == name {
			a = &l.manifest.Artefacts[i]
			break
		}
	}
	if a == nil {
		return "", fmt.Errorf("%w %q in %s", errNoArtefact, name, filepath.Join(l.dir, shards.ManifestName))
	}
	var tried []string
	for _, base := range []string{l.Opts.ArtefactsDir, l.dir} {
		if base == "" {
			continue
		}
		p := filepath.Join(base, filepath.FromSlash(a.Path))
		if filepath.IsAbs(a.Path) {
			p = a.Path
		}
		tried = append(tried, p)
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("mmdata: artefact %s: %w", name, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		err = errors.Join(err, f.Close())
		if err != nil {
			return "", fmt.Errorf("mmdata: artefact %s: %w", name, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != a.SHA256 {
			return "", fmt.Errorf("mmdata: artefact %s: %s has sha256 %s, the manifest says %s", name, p, got, a.SHA256)
		}
		return p, nil
	}
	return "", fmt.Errorf("mmdata: artefact %s (%s) not found (tried %s): set Options.ArtefactsDir to the immdata encode output directory", name, a.Path, strings.Join(tried, ", "))
}

func readLabels(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mmdata: labels: %w", err)
	}
	var f struct {
		Labels []string `json:"labels"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("mmdata: labels file %s: %w", path, err)
	}
	return f.Labels, nil
}

func metaInt(f shards.Field, key string) (int, error) {
	v, ok := f.Metadata[key]
	if !ok {
		return 0, fmt.Errorf("mmdata: column %s has no %q metadata", f.Name, key)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("mmdata: column %s: metadata %s=%q is not a count", f.Name, key, v)
	}
	return n, nil
}

func (l *Layout) newImage(f shards.Field) (*ImageSegment, error) {
	s := &ImageSegment{Encoder: f.Metadata["encoder"], Column: colImageLatent, P: l.Opts.ImagePatch}
	shape := strings.Split(f.Metadata["shape"], ",")
	var dims []int
	for _, p := range shape {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			dims = nil
			break
		}
		dims = append(dims, n)
	}
	if len(dims) != 3 {
		return nil, fmt.Errorf("mmdata: column image_latent has shape metadata %q, want C,H,W", f.Metadata["shape"])
	}
	s.C, s.H, s.W = dims[0], dims[1], dims[2]
	if s.H%s.P != 0 || s.W%s.P != 0 {
		return nil, fmt.Errorf("mmdata: image latent %dx%dx%d cannot be cut into %dx%d patches (set the image patch to a divisor of %d and %d)", s.C, s.H, s.W, s.P, s.P, s.H, s.W)
	}
	name, _, _ := strings.Cut(s.Encoder, "@")
	switch name {
	case "pixels":
		if s.C != 3 && s.C != 1 {
			return nil, fmt.Errorf("mmdata: pixels latent with %d channels, want 1 or 3", s.C)
		}
	case "patch-pca":
		p, err := l.artefact("patch-pca")
		if err != nil {
			return nil, err
		}
		if s.pca, _, err = imgenc.LoadPatchPCA(p); err != nil {
			return nil, fmt.Errorf("mmdata: %w", err)
		}
		if s.pca.D != s.C {
			return nil, fmt.Errorf("mmdata: patch-pca basis has %d components, image_latent has %d channels", s.pca.D, s.C)
		}
	case "external":
		// continuous, but no decoder: Decode leaves the pictures nil
	default:
		return nil, fmt.Errorf("%w: image_latent from encoder %q (want pixels, patch-pca or external latents)", ErrUnsupported, s.Encoder)
	}
	return s, nil
}

// newVQ describes vq image tokens: each token becomes its code's patch vector.
func (l *Layout) newVQ(f shards.Field) (*ImageSegment, error) {
	s := &ImageSegment{Encoder: f.Metadata["encoder"], Column: colImageTokens, C: 3}
	if name, _, _ := strings.Cut(s.Encoder, "@"); name != "vq" {
		return nil, fmt.Errorf("%w: image_tokens from encoder %q (want vq)", ErrUnsupported, s.Encoder)
	}
	var dims []int
	for _, p := range strings.Split(f.Metadata["shape"], ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("mmdata: column image_tokens has shape metadata %q, want H,W", f.Metadata["shape"])
		}
		dims = append(dims, n)
	}
	if len(dims) != 2 {
		return nil, fmt.Errorf("mmdata: column image_tokens has shape metadata %q, want H,W", f.Metadata["shape"])
	}
	s.H, s.W = dims[0], dims[1]
	p, err := l.artefact("vq")
	if err != nil {
		return nil, err
	}
	if s.vq, _, err = imgenc.LoadVQ(p); err != nil {
		return nil, fmt.Errorf("mmdata: %w", err)
	}
	s.P = s.vq.P
	if c, ok := f.Metadata["codes"]; ok && c != strconv.Itoa(s.vq.K) {
		return nil, fmt.Errorf("mmdata: image_tokens metadata says %s codes, the vq codebook has %d", c, s.vq.K)
	}
	return s, nil
}

// Decodable reports whether Decode can turn the image segment into pictures (pixels and
// patch-pca latents; external latents have no decoder here).
func (s *ImageSegment) Decodable() bool {
	return strings.HasPrefix(s.Encoder, "pixels@") || s.pca != nil || s.vq != nil
}

func (l *Layout) newAudio(f shards.Field) (*AudioSegment, error) {
	s := &AudioSegment{Encoder: f.Metadata["encoder"], Group: l.Opts.AudioGroup}
	var err error
	for _, m := range []struct {
		key string
		dst *int
	}{{"n_mels", &s.NMels}, {"hop", &s.Hop}, {"sample_rate", &s.SampleRate}, {"frames", &s.Frames}} {
		if *m.dst, err = metaInt(f, m.key); err != nil {
			return nil, err
		}
	}
	if s.NMels < 1 || s.Frames < 1 || s.Hop < 1 || s.SampleRate < 1 {
		return nil, fmt.Errorf("mmdata: audio_mel metadata n_mels %d, frames %d, hop %d, sample rate %d must be positive", s.NMels, s.Frames, s.Hop, s.SampleRate)
	}
	// The mel configuration: the preset named by the encoder, checked against the metadata.
	name, _, _ := strings.Cut(s.Encoder, "@")
	mc, err := audio.Preset(name)
	if err != nil {
		mc, err = audio.Preset(fmt.Sprintf("whisper-%d", s.NMels))
		if err != nil || f.Metadata["log"] != string(mc.Log) {
			return nil, fmt.Errorf("%w: audio_mel encoder %q with log %q is not a known mel preset (whisper-80, whisper-128)", ErrUnsupported, s.Encoder, f.Metadata["log"])
		}
	}
	if mc.NMels != s.NMels || mc.Hop != s.Hop || mc.SampleRate != s.SampleRate {
		return nil, fmt.Errorf("mmdata: audio_mel metadata (n_mels %d, hop %d, rate %d) differs from preset %s", s.NMels, s.Hop, s.SampleRate, name)
	}
	if v, ok := f.Metadata["n_fft"]; ok && v != strconv.Itoa(mc.NFFT) {
		return nil, fmt.Errorf("mmdata: audio_mel metadata n_fft %s differs from preset %s (%d)", v, name, mc.NFFT)
	}
	s.Mel = mc
	return s, nil
}

func (l *Layout) newText(f shards.Field) (*TextSegment, error) {
	p, err := l.artefact("bpe-config")
	if err != nil {
		return nil, err
	}
	enc, err := text.LoadConfig(p)
	if err != nil {
		return nil, fmt.Errorf("mmdata: tokenizer: %w", err)
	}
	s := &TextSegment{Len: l.Opts.TextLen, Dim: l.Opts.TextDim, enc: enc}
	s.Vocab = max(enc.VocabSize(), int(enc.MaxID())+1)
	if v, ok := f.Metadata["pad_id"]; ok {
		id, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("mmdata: text_tokens metadata pad_id=%q: %w", v, err)
		}
		s.PadID = int32(id)
	}
	s.End = int32(s.Vocab)
	rows := s.Vocab + 1
	r := rand.New(rand.NewPCG(l.Opts.Seed, 0x746578745f746162)) // "text_tab"
	raw := make([]float32, rows*s.Dim)
	for i := range raw {
		raw[i] = float32(r.NormFloat64())
	}
	if s.Table, err = imm.NewTextTable(raw, rows, s.Dim, l.Opts.SigmaD); err != nil {
		return nil, fmt.Errorf("mmdata: %w", err)
	}
	return s, nil
}
