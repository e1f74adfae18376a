package ingest

import (
	"encoding/json"

	"github.com/apache/arrow-go/v18/arrow"
)

// Column names of the raw-sample schema.
const (
	ColKey             = "key"
	ColSource          = "source"
	ColImage           = "image"
	ColImageWidth      = "image_width"
	ColImageHeight     = "image_height"
	ColAudio           = "audio"
	ColAudioSampleRate = "audio_sample_rate"
	ColAudioChannels   = "audio_channels"
	ColAudioSeconds    = "audio_seconds"
	ColText            = "text"
	ColLabel           = "label"
	ColMeta            = "meta"
	ColSHA256          = "sha256"
)

// MediaType is the Hugging Face `datasets` storage type of Image and Audio features:
// struct{bytes: binary, path: string}.
var MediaType = arrow.StructOf(
	arrow.Field{Name: "bytes", Type: arrow.BinaryTypes.Binary, Nullable: true},
	arrow.Field{Name: "path", Type: arrow.BinaryTypes.String, Nullable: true},
)

// HFMetadataKey is the schema metadata key under which Hugging Face `datasets` stores its
// feature description ({"info": {"features": {...}}}).
const HFMetadataKey = "huggingface"

// hfFeatures is the `datasets` feature description of the raw-sample columns.
func hfFeatures() string {
	v := func(dtype string) map[string]any { return map[string]any{"dtype": dtype, "_type": "Value"} }
	feats := map[string]any{
		ColKey:             v("string"),
		ColSource:          v("string"),
		ColImage:           map[string]any{"_type": "Image"},
		ColImageWidth:      v("int32"),
		ColImageHeight:     v("int32"),
		ColAudio:           map[string]any{"_type": "Audio"},
		ColAudioSampleRate: v("int32"),
		ColAudioChannels:   v("int32"),
		ColAudioSeconds:    v("float64"),
		ColText:            v("string"),
		ColLabel:           v("string"),
		ColMeta:            v("string"),
		ColSHA256:          v("binary"),
	}
	b, err := json.Marshal(map[string]any{"info": map[string]any{"features": feats}})
	if err != nil {
		panic(err) // static data
	}
	return string(b)
}

// RawSchema is the Arrow schema of ingest output (DESIGN.md section 2), with the Hugging Face
// feature description in its metadata so that images and audio are typed as Image and Audio.
var RawSchema = arrow.NewSchema([]arrow.Field{
	{Name: ColKey, Type: arrow.BinaryTypes.String},
	{Name: ColSource, Type: arrow.BinaryTypes.String},
	{Name: ColImage, Type: MediaType, Nullable: true},
	{Name: ColImageWidth, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: ColImageHeight, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: ColAudio, Type: MediaType, Nullable: true},
	{Name: ColAudioSampleRate, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: ColAudioChannels, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: ColAudioSeconds, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColText, Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: ColLabel, Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: ColMeta, Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: ColSHA256, Type: arrow.BinaryTypes.Binary},
}, func() *arrow.Metadata {
	m := arrow.NewMetadata([]string{HFMetadataKey}, []string{hfFeatures()})
	return &m
}())

// RejectSchema is the Arrow schema of OUT/rejects/*.parquet: one row per rejected input.
var RejectSchema = arrow.NewSchema([]arrow.Field{
	{Name: "source", Type: arrow.BinaryTypes.String},
	{Name: "stage", Type: arrow.BinaryTypes.String},
	{Name: "reason", Type: arrow.BinaryTypes.String},
	{Name: "detail", Type: arrow.BinaryTypes.String},
}, nil)
