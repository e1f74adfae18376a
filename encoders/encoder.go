package encoders

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/float16"

	imgenc "github.com/immkit/immkit/encoders/image"
)

// Modalities of the registry.
const (
	ModImage = "image"
	ModAudio = "audio"
	ModText  = "text"
	ModLabel = "label"
	// None switches a modality off.
	None = "none"
)

// Column names of the encoded-sample schema (DESIGN.md section 2).
const (
	ColKey         = "key"
	ColSHA256      = "sha256"
	ColLabelID     = "label_id"
	ColImageLatent = "image_latent"
	ColImageTokens = "image_tokens"
	ColAudioMel    = "audio_mel"
	ColAudioTokens = "audio_tokens"
	ColTextTokens  = "text_tokens"
	ColTextLen     = "text_len"
)

// ArtefactsMetadataKey is the schema-metadata key of every output part that lists the
// encoder artefacts as JSON [{name, path, sha256}]; immdata shard copies it into index.json.
const ArtefactsMetadataKey = "immkit.artefacts"

// Sample is one raw sample (a row of the ingest schema, docs/ingest.md).
type Sample struct {
	Key    string
	Source string
	SHA256 [32]byte
	Image  []byte // original encoded image file; nil when the sample has none
	Audio  []byte // original encoded audio file; nil when none
	Text   string
	// HasText is false when the text column is null.
	HasText bool
	Label   string
}

// Encoder encodes one modality of a sample into the values of its Fields.
//
// Encode returns one value per field, in order: image.Latent for a fixed_size_list latent
// column, []float32 for a list<float32>, []int32 for a list<int32>, int32 for an int32
// column, nil for null. A sample whose media cannot be encoded gives an error made with
// pipeline.Reject (a reject with a specific reason, never a crash). Encoders are safe for
// concurrent use once fitted or loaded.
type Encoder interface {
	Name() string
	Version() string
	Fields() []arrow.Field
	Encode(s *Sample) ([]any, error)
}

// Fitter is implemented by learned encoders: Fit learns the state from data and saves it as
// artefact files in dir; Load reads them back, checking each file's sha256 against arts.
type Fitter interface {
	Fit(ctx context.Context, d *FitData, dir string) ([]Artefact, error)
	Load(dir string, arts []Artefact) error
}

// FitData is what learned encoders are fitted on.
type FitData struct {
	// Samples is the seeded fitting sample, ordered by the seeded hash.
	Samples []Sample
	// Labels are the distinct labels of the whole input, sorted.
	Labels []string
	Seed   uint64
}

// Decoder is implemented by encoders whose encoding can be inverted (to look at or listen
// to samples): Decode takes the values Encode returned and gives back an image.NRGBA, an
// audio.Mel or a string.
type Decoder interface {
	Decode(values []any) (any, error)
}

// Artefact is a file of learned encoder state, relative to the output directory.
type Artefact struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	SHA256 string `json:"sha256"` // lower-case hex
}

type factory struct {
	modality string
	new      func(c *Config) (Encoder, error)
}

var registry = map[string]factory{}

// Register adds an encoder constructor to the registry; it panics on a duplicate name
// (a programming error at init time).
func Register(name, modality string, newFn func(c *Config) (Encoder, error)) {
	if _, ok := registry[name]; ok {
		panic("encoders: duplicate encoder " + name)
	}
	registry[name] = factory{modality, newFn}
}

// Names lists the registered encoders of a modality ("" for all), sorted.
func Names(modality string) []string {
	var out []string
	for n, f := range registry {
		if modality == "" || f.modality == modality {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Lookup builds the named encoder from c.
func Lookup(name string, c *Config) (Encoder, error) {
	f, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("%w: unknown encoder %q", ErrConfig, name)
	}
	return f.new(c)
}

// Set is the encoders of one run, in column order: label, image, audio, text.
type Set struct {
	Config   Config
	Encoders []Encoder
	schema   *arrow.Schema
}

// NewSet builds the (unfitted) encoders chosen by c, which must have its defaults.
func NewSet(c Config) (*Set, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	s := &Set{Config: c}
	for _, name := range []string{c.Label.Encoder, c.Image.Encoder, c.Audio.Encoder, c.Text.Encoder} {
		if name == None {
			continue
		}
		e, err := Lookup(name, &s.Config)
		if err != nil {
			return nil, err
		}
		s.Encoders = append(s.Encoders, e)
	}
	return s, nil
}

// Learned reports whether any encoder of the set must be fitted.
func (s *Set) Learned() bool {
	for _, e := range s.Encoders {
		if _, ok := e.(Fitter); ok {
			return true
		}
	}
	return false
}

// Schema is the encoded-sample schema: key (utf8), sha256 (binary, 32 bytes), then
// every encoder's fields; arts become the ArtefactsMetadataKey schema metadata.
func (s *Set) Schema(arts []Artefact, artsJSON string) *arrow.Schema {
	fields := []arrow.Field{
		{Name: ColKey, Type: arrow.BinaryTypes.String},
		{Name: ColSHA256, Type: arrow.BinaryTypes.Binary},
	}
	for _, e := range s.Encoders {
		fields = append(fields, e.Fields()...)
	}
	var md *arrow.Metadata
	if len(arts) > 0 {
		m := arrow.NewMetadata([]string{ArtefactsMetadataKey}, []string{artsJSON})
		md = &m
	}
	return arrow.NewSchema(fields, md)
}

// EncodeRow encodes one sample with every encoder of the set: the values of the schema's
// columns after key and sha256.
func (s *Set) EncodeRow(smp *Sample) ([]any, error) {
	var row []any
	for _, e := range s.Encoders {
		v, err := e.Encode(smp)
		if err != nil {
			return nil, err
		}
		if len(v) != len(e.Fields()) {
			return nil, fmt.Errorf("encoders: %s returned %d values for %d fields", e.Name(), len(v), len(e.Fields()))
		}
		row = append(row, v...)
	}
	return row, nil
}

// appendRow appends key, sha256 and the encoded values to the builders of a record of
// schema s.
func appendRow(b *array.RecordBuilder, key string, sum [32]byte, vals []any) error {
	b.Field(0).(*array.StringBuilder).Append(key)
	b.Field(1).(*array.BinaryBuilder).Append(sum[:])
	for i, v := range vals {
		if err := appendValue(b.Field(i+2), v); err != nil {
			return fmt.Errorf("encoders: column %s: %w", b.Schema().Field(i+2).Name, err)
		}
	}
	return nil
}

func appendValue(fb array.Builder, v any) error {
	if v == nil {
		fb.AppendNull()
		return nil
	}
	switch x := v.(type) {
	case imgenc.Latent:
		lb, ok := fb.(*array.FixedSizeListBuilder)
		if !ok {
			return fmt.Errorf("latent value for a %s column", fb.Type())
		}
		return imgenc.AppendLatent(lb, x)
	case int32:
		ib, ok := fb.(*array.Int32Builder)
		if !ok {
			return fmt.Errorf("int32 value for a %s column", fb.Type())
		}
		ib.Append(x)
	case []int32:
		lb, ok := fb.(*array.ListBuilder)
		if !ok {
			return fmt.Errorf("[]int32 value for a %s column", fb.Type())
		}
		vb, ok := lb.ValueBuilder().(*array.Int32Builder)
		if !ok {
			return fmt.Errorf("[]int32 value for a %s column", fb.Type())
		}
		lb.Append(true)
		vb.AppendValues(x, nil)
	case []float32:
		lb, ok := fb.(*array.ListBuilder)
		if !ok {
			return fmt.Errorf("[]float32 value for a %s column", fb.Type())
		}
		lb.Append(true)
		switch vb := lb.ValueBuilder().(type) {
		case *array.Float32Builder:
			vb.AppendValues(x, nil)
		case *array.Float16Builder:
			for _, f := range x {
				vb.Append(float16.New(f))
			}
		default:
			return fmt.Errorf("[]float32 value for a %s column", fb.Type())
		}
	default:
		return fmt.Errorf("unsupported value type %T", v)
	}
	return nil
}

// fileArtefact hashes a file under out and returns its artefact record.
func fileArtefact(out, name, rel string) (Artefact, error) {
	sum, err := fileSHA256(filepath.Join(out, rel))
	if err != nil {
		return Artefact{}, err
	}
	return Artefact{Name: name, Path: filepath.ToSlash(rel), SHA256: sum}, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("encoders: hash artefact: %w", err)
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	if err = errors.Join(err, f.Close()); err != nil {
		return "", fmt.Errorf("encoders: hash artefact %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkArtefact finds the artefact called name in arts and checks the file's hash; it
// returns the file's path.
func checkArtefact(dir, name string, arts []Artefact) (string, error) {
	for _, a := range arts {
		if a.Name != name {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(a.Path))
		sum, err := fileSHA256(p)
		if err != nil {
			return "", err
		}
		if sum != a.SHA256 {
			return "", fmt.Errorf("encoders: artefact %s (%s) has sha256 %s, want %s", name, p, sum, a.SHA256)
		}
		return p, nil
	}
	return "", fmt.Errorf("encoders: artefact %s is missing; run immdata fit", name)
}
