package mmdata

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/immkit/immkit/internal/pqsafe"
	"github.com/immkit/immkit/shards"
)

// keyIndex is a set of sample keys.
type keyIndex map[string]bool

// melIndex holds the audio_mel values of every sample, since shards.Loader reads no
// list<float32> column. Row r (in shard order, train shards first) is
// Data[r*Size : (r+1)*Size], frame-major (frame f, mel m at f*NMels+m); rows whose value
// is null have Null[r] set and zeros.
type melIndex struct {
	Size  int
	Data  []float32
	Null  []bool
	Train int            // rows [0, Train) are the train split
	Row   map[string]int // key -> row
}

// get returns the mel of key, or nil when the key has a null audio_mel.
func (m *melIndex) get(key string) ([]float32, error) {
	r, ok := m.Row[key]
	if !ok {
		return nil, fmt.Errorf("mmdata: sample %q is not in the shards' audio_mel column", key)
	}
	if m.Null[r] {
		return nil, nil
	}
	return m.Data[r*m.Size : (r+1)*m.Size], nil
}

// readSide reads what the loader does not deliver: the audio_mel column when the audio
// segment is used, and the keys of null values of the used columns that have nulls in
// any split (the manifest's non_null totals say which).
func (l *Layout) readSide() error {
	l.nulls = map[string]keyIndex{}
	var nullCols []string
	used := []string{}
	if l.Image != nil {
		used = append(used, l.Image.Column)
	}
	if l.Text != nil {
		used = append(used, colTextTokens)
	}
	for _, c := range used {
		for _, t := range l.manifest.Totals {
			if t.NonNull[c] < t.Rows {
				nullCols = append(nullCols, c)
				l.nulls[c] = keyIndex{}
				break
			}
		}
	}
	if l.Audio != nil {
		l.mels = &melIndex{Size: l.Audio.Frames * l.Audio.NMels, Row: map[string]int{}}
	}
	if l.mels == nil && len(nullCols) == 0 {
		return nil
	}
	for _, split := range []string{shards.SplitTrain, shards.SplitVal} {
		for _, s := range l.manifest.SplitShards(split) {
			if err := l.readShardSide(filepath.Join(l.dir, filepath.FromSlash(s.Path)), nullCols); err != nil {
				return err
			}
		}
		if l.mels != nil && split == shards.SplitTrain {
			l.mels.Train = len(l.mels.Null)
		}
	}
	return nil
}

// readShardSide reads the key column and the side columns of one shard. A damaged shard is
// an error naming it and the row group, never a crash: reader panics are recovered, every
// batch is validated before it is indexed, and the rows must number what the footer
// declares (internal/pqsafe).
func (l *Layout) readShardSide(path string, nullCols []string) error {
	cols := append([]string{"key"}, nullCols...)
	if l.mels != nil {
		cols = append(cols, colAudioMel)
	}
	o := pqsafe.Options{BatchRows: 1024, Prefix: "mmdata: "}
	return pqsafe.ScanFile(context.Background(), path, cols, o, func(rec arrow.RecordBatch) error {
		return l.addSide(path, rec, nullCols)
	})
}

// addSide records the null keys and the mels of one validated batch.
func (l *Layout) addSide(path string, rec arrow.RecordBatch, nullCols []string) error {
	column := func(name string) (arrow.Array, error) {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) != 1 {
			return nil, fmt.Errorf("mmdata: %s has no single column %q", path, name)
		}
		return rec.Column(idx[0]), nil
	}
	ka, err := column("key")
	if err != nil {
		return err
	}
	keys, ok := ka.(*array.String)
	if !ok {
		return fmt.Errorf("mmdata: %s: key column is %s, want utf8", path, ka.DataType())
	}
	for _, c := range nullCols {
		a, err := column(c)
		if err != nil {
			return err
		}
		for i := 0; i < a.Len(); i++ {
			if a.IsNull(i) {
				l.nulls[c][keys.Value(i)] = true
			}
		}
	}
	if l.mels == nil {
		return nil
	}
	a, err := column(colAudioMel)
	if err != nil {
		return err
	}
	ll, ok := a.(array.ListLike)
	if !ok {
		return fmt.Errorf("mmdata: %s: audio_mel is %s, want list<float32>", path, a.DataType())
	}
	vals, ok := ll.ListValues().(*array.Float32)
	if !ok {
		return fmt.Errorf("mmdata: %s: audio_mel holds %s, want float32", path, ll.ListValues().DataType())
	}
	m := l.mels
	for i := 0; i < ll.Len(); i++ {
		k := keys.Value(i)
		if _, dup := m.Row[k]; dup {
			return fmt.Errorf("mmdata: key %q appears twice in the shards; the audio segment needs unique keys (audio_mel is found by key, since shards.Loader does not load it)", k)
		}
		m.Row[k] = len(m.Null)
		if ll.IsNull(i) {
			m.Null = append(m.Null, true)
			m.Data = append(m.Data, make([]float32, m.Size)...)
			continue
		}
		lo, hi := ll.ValueOffsets(i)
		if int(hi-lo) != m.Size {
			return fmt.Errorf("mmdata: %s: audio_mel of %q has %d values, want frames x n_mels = %d", path, k, hi-lo, m.Size)
		}
		m.Null = append(m.Null, false)
		m.Data = append(m.Data, vals.Float32Values()[lo:hi]...)
	}
	return nil
}
