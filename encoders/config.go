package encoders

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("encoders: bad config")

// Config chooses the encoders of a run, one per modality, and their parameters. It is read
// from YAML or JSON (the same field names, see docs/encode.md and docs/examples/encode.yaml);
// every zero field takes the default that works on the demo corpus (see [Config.Defaults]).
type Config struct {
	// Seed seeds the choice of the fitting sample and every learned encoder's fit.
	Seed uint64 `json:"seed"`
	// FitSamples is the number of samples the learned encoders are fitted on (default 1000),
	// chosen by a seeded hash of (key, sha256), so independent of part and worker layout.
	FitSamples int `json:"fit_samples"`
	// RowGroupRows is the number of rows per Parquet row group of the output (default 1024).
	RowGroupRows int         `json:"row_group_rows"`
	Image        ImageConfig `json:"image"`
	Audio        AudioConfig `json:"audio"`
	Text         TextConfig  `json:"text"`
	Label        LabelConfig `json:"label"`
}

// ImageConfig configures the image encoder.
type ImageConfig struct {
	// Encoder is pixels (default), patch-pca, vq or none.
	Encoder string `json:"encoder"`
	// Size is the output width and height in pixels (default 64).
	Size int `json:"size"`
	// Resize is center-crop (default), keep-ratio or pad.
	Resize string `json:"resize"`
	// Filter is the resampling filter (default lanczos).
	Filter string `json:"filter"`
	// Half stores latents as float16 instead of float32.
	Half bool `json:"half"`
	// Gray makes the pixels encoder store one luma channel (1×H×W) instead of RGB, for
	// grey corpora such as MNIST. Omitted when false, so configs written before it hash
	// as they did.
	Gray bool `json:"gray,omitempty"`
	// Patch is the patch side of patch-pca and vq (default 4).
	Patch int `json:"patch"`
	// Dims is the number of PCA components of patch-pca (default 16).
	Dims int `json:"dims"`
	// Codes is the codebook size of vq (default 256).
	Codes int `json:"codes"`
	// External says where the external encoder finds latents computed elsewhere (e.g.
	// SD-VAE): a Parquet file with a key column and a latent column of fixed-size lists or
	// lists of float32/float16/float64, each of Shape.
	External ExternalConfig `json:"external"`
}

// ExternalConfig locates imported latents.
type ExternalConfig struct {
	Path      string `json:"path"`
	Column    string `json:"column"`     // default image_latent
	KeyColumn string `json:"key_column"` // default key
	Shape     [3]int `json:"shape"`      // C, H, W
}

// AudioConfig configures the audio encoder.
type AudioConfig struct {
	// Encoder is whisper-80 (default), whisper-128 (log-mel, column audio_mel), mulaw or
	// audio-vq (tokens, column audio_tokens), or none.
	Encoder string `json:"encoder"`
	// ClipSeconds is the fixed clip length (default 1.0): audio is mixed to mono, resampled
	// to the mel preset's rate (16 kHz for the Whisper presets), then cut or zero-padded at
	// the end to exactly ClipSeconds.
	ClipSeconds float64 `json:"clip_seconds"`
	// Crop says which part of a longer clip is kept: start (default) or center.
	Crop string `json:"crop"`
	// Mel is the mel preset audio-vq quantises (default whisper-80).
	Mel string `json:"mel"`
	// Codes is the codebook size of audio-vq (default 256).
	Codes int `json:"codes"`
}

// TextConfig configures the text encoder.
type TextConfig struct {
	// Encoder is bpe (default) or none.
	Encoder string `json:"encoder"`
	// Tokenizer is a .tiktoken rank file (with the config Encoding.Save writes next to it,
	// or named after a standard encoding such as cl100k_base.tiktoken) or a tokenizer config
	// .json. Empty: a byte-level BPE of VocabSize ids is trained on the fitting sample.
	Tokenizer string `json:"tokenizer"`
	// VocabSize is the vocabulary size of a trained tokenizer (default 512).
	VocabSize int `json:"vocab_size"`
	// MaxLen is the fixed number of tokens per sample (default 32).
	MaxLen int `json:"max_len"`
	// Overflow says what happens to longer texts: truncate (default, keep the first MaxLen
	// tokens) or reject (the sample becomes a reject with reason text_too_long).
	Overflow string `json:"overflow"`
	// PadID fills the positions after the text (default 0); text_len holds the true length.
	PadID int32 `json:"pad_id"`
}

// LabelConfig configures the label vocabulary.
type LabelConfig struct {
	// Encoder is labels (default: the sorted distinct labels of the whole input get ids
	// 0, 1, ...) or none.
	Encoder string `json:"encoder"`
}

// Defaults returns c with every zero field set to its default.
func (c Config) Defaults() Config {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	defInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	defInt(&c.FitSamples, 1000)
	defInt(&c.RowGroupRows, 1024)
	def(&c.Image.Encoder, "pixels")
	defInt(&c.Image.Size, 64)
	def(&c.Image.Resize, "center-crop")
	def(&c.Image.Filter, "lanczos")
	defInt(&c.Image.Patch, 4)
	defInt(&c.Image.Dims, 16)
	defInt(&c.Image.Codes, 256)
	def(&c.Image.External.Column, "image_latent")
	def(&c.Image.External.KeyColumn, "key")
	def(&c.Audio.Encoder, "whisper-80")
	if c.Audio.ClipSeconds == 0 {
		c.Audio.ClipSeconds = 1
	}
	def(&c.Audio.Crop, "start")
	def(&c.Audio.Mel, "whisper-80")
	defInt(&c.Audio.Codes, 256)
	def(&c.Text.Encoder, "bpe")
	defInt(&c.Text.VocabSize, 512)
	defInt(&c.Text.MaxLen, 32)
	def(&c.Text.Overflow, "truncate")
	def(&c.Label.Encoder, "labels")
	return c
}

// Validate checks a config after Defaults.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if c.FitSamples < 1 || c.RowGroupRows < 1 {
		return bad("fit_samples and row_group_rows must be >= 1")
	}
	for _, m := range []struct{ mod, name string }{
		{ModImage, c.Image.Encoder}, {ModAudio, c.Audio.Encoder}, {ModText, c.Text.Encoder}, {ModLabel, c.Label.Encoder},
	} {
		if m.name == None {
			continue
		}
		f, ok := registry[m.name]
		if !ok {
			return bad("%s encoder %q is unknown (known: %s)", m.mod, m.name, strings.Join(Names(m.mod), ", "))
		}
		if f.modality != m.mod {
			return bad("%q is a %s encoder, not a %s encoder", m.name, f.modality, m.mod)
		}
	}
	if c.Image.Size < 1 || c.Image.Size > 4096 {
		return bad("image.size %d is outside 1..4096", c.Image.Size)
	}
	if c.Image.Patch < 1 || c.Image.Size%c.Image.Patch != 0 {
		return bad("image.patch %d must divide image.size %d", c.Image.Patch, c.Image.Size)
	}
	if c.Image.Dims < 1 || c.Image.Dims > 3*c.Image.Patch*c.Image.Patch {
		return bad("image.dims %d is outside 1..3*patch*patch", c.Image.Dims)
	}
	if c.Image.Gray && c.Image.Encoder != "pixels" {
		return bad("image.gray applies to the pixels encoder only, not %q", c.Image.Encoder)
	}
	if c.Image.Encoder == "external" {
		x := c.Image.External
		if x.Path == "" || x.Shape[0] < 1 || x.Shape[1] < 1 || x.Shape[2] < 1 {
			return bad("image.encoder external needs image.external.path and a positive image.external.shape [C, H, W]")
		}
	}
	if c.Image.Codes < 2 || c.Audio.Codes < 2 {
		return bad("codes must be >= 2")
	}
	if !(c.Audio.ClipSeconds > 0 && c.Audio.ClipSeconds <= 600) {
		return bad("audio.clip_seconds %v is outside (0, 600]", c.Audio.ClipSeconds)
	}
	if c.Audio.Crop != "start" && c.Audio.Crop != "center" {
		return bad("audio.crop %q: want start or center", c.Audio.Crop)
	}
	if c.Text.MaxLen < 1 || c.Text.MaxLen > 1<<20 {
		return bad("text.max_len %d is outside 1..2^20", c.Text.MaxLen)
	}
	if c.Text.Overflow != "truncate" && c.Text.Overflow != "reject" {
		return bad("text.overflow %q: want truncate or reject", c.Text.Overflow)
	}
	if c.Text.VocabSize < 257 {
		return bad("text.vocab_size %d must be at least 257", c.Text.VocabSize)
	}
	if c.Text.PadID < 0 {
		return bad("text.pad_id %d is negative", c.Text.PadID)
	}
	return nil
}

// ParseConfig reads a YAML or JSON config (JSON is YAML); unknown fields are an error.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	js, err := yaml.YAMLToJSON(b)
	if err != nil {
		return c, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return c, nil
	}
	d := json.NewDecoder(bytes.NewReader(js))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return c, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return c, nil
}

// LoadConfig reads a config file.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("encoders: read config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
