package audio

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// EncoderName is recorded as name@version in the audio_mel field metadata.
const EncoderName = "audio-mel@1"

// MelField returns the audio_mel column of the encoded-sample schema: list<float32> of
// Frames x NMels values (frame-major, see Mel.FrameMajor) with field metadata n_mels,
// hop, sample_rate, n_fft, log and encoder.
func MelField(c MelConfig) arrow.Field {
	md := arrow.NewMetadata(
		[]string{"n_mels", "hop", "sample_rate", "n_fft", "log", "encoder"},
		[]string{strconv.Itoa(c.NMels), strconv.Itoa(c.Hop), strconv.Itoa(c.SampleRate), strconv.Itoa(c.NFFT), string(c.Log), EncoderName},
	)
	return arrow.Field{Name: "audio_mel", Type: arrow.ListOf(arrow.PrimitiveTypes.Float32), Nullable: true, Metadata: md}
}

// MelSchema is the schema WriteMelParquet writes: key (utf8) and audio_mel (MelField).
func MelSchema(c MelConfig) *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{{Name: "key", Type: arrow.BinaryTypes.String}, MelField(c)}, nil)
}

// WriteMelParquet writes one Parquet file (zstd) with one row per (key, mel) pair, the
// mel values frame-major as in the encoded-sample audio_mel column. All mels must share
// the configuration of the first.
func WriteMelParquet(w io.Writer, keys []string, mels []*Mel) (err error) {
	if len(keys) != len(mels) || len(mels) == 0 {
		return fmt.Errorf("audio: write parquet: %d keys for %d mels", len(keys), len(mels))
	}
	cfg := mels[0].Config
	schema := MelSchema(cfg)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	kb := b.Field(0).(*array.StringBuilder)
	lb := b.Field(1).(*array.ListBuilder)
	vb := lb.ValueBuilder().(*array.Float32Builder)
	for i, m := range mels {
		if m.Config != cfg {
			return fmt.Errorf("audio: write parquet: mel %d has a different configuration", i)
		}
		kb.Append(keys[i])
		lb.Append(true)
		vb.AppendValues(m.FrameMajor(), nil)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd))
	// The writer closes a sink that is an io.Closer; the caller owns w, so hide Close.
	fw, err := pqarrow.NewFileWriter(schema, struct{ io.Writer }{w}, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return fmt.Errorf("audio: write parquet: %w", err)
	}
	if err := fw.Write(rec); err != nil {
		return fmt.Errorf("audio: write parquet: %w", errors.Join(err, fw.Close()))
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("audio: write parquet: %w", err)
	}
	return nil
}
