package mmdata

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

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

func (l *Layout) readShardSide(path string, nullCols []string) (err error) {
	f, err := file.OpenParquetFile(path, false)
	if err != nil {
		return fmt.Errorf("mmdata: open %s: %w", path, err)
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	fr, err := pqarrow.NewFileReader(f, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("mmdata: read %s: %w", path, err)
	}
	sc, err := fr.Schema()
	if err != nil {
		return fmt.Errorf("mmdata: schema of %s: %w", path, err)
	}
	rows := f.NumRows()
	column := func(name string) (arrow.Array, error) {
		idx := sc.FieldIndices(name)
		if len(idx) != 1 {
			return nil, fmt.Errorf("mmdata: %s has no single column %q", path, name)
		}
		cr, err := fr.GetColumn(context.Background(), idx[0])
		if err != nil {
			return nil, fmt.Errorf("mmdata: read %s of %s: %w", name, path, err)
		}
		ch, err := cr.NextBatch(rows)
		if err != nil {
			return nil, fmt.Errorf("mmdata: read %s of %s: %w", name, path, err)
		}
		defer ch.Release()
		if ch.Len() != int(rows) {
			return nil, fmt.Errorf("mmdata: %s of %s has %d values for %d rows", name, path, ch.Len(), rows)
		}
		return array.Concatenate(ch.Chunks(), memory.DefaultAllocator)
	}
	ka, err := column("key")
	if err != nil {
		return err
	}
	defer ka.Release()
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
		a.Release()
	}
	if l.mels == nil {
		return nil
	}
	a, err := column(colAudioMel)
	if err != nil {
		return err
	}
	defer a.Release()
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
