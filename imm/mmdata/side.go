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

// readSide reads what the loader does not deliver: the keys of null values of the used
// columns that have nulls in any split (the manifest's non_null totals say which). The
// loader gives a null list or latent as zeros, which are valid values.
func (l *Layout) readSide() error {
	l.nulls = map[string]keyIndex{}
	var nullCols []string
	used := []string{}
	if l.Image != nil {
		used = append(used, l.Image.Column)
	}
	if l.Audio != nil {
		used = append(used, colAudioMel)
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
	if len(nullCols) == 0 {
		return nil
	}
	for _, split := range []string{shards.SplitTrain, shards.SplitVal} {
		for _, s := range l.manifest.SplitShards(split) {
			if err := l.readShardSide(filepath.Join(l.dir, filepath.FromSlash(s.Path)), nullCols); err != nil {
				return err
			}
		}
	}
	return nil
}

// readShardSide reads the key column and the null-tracked columns of one shard. A damaged
// shard is an error naming it and the row group, never a crash: reader panics are
// recovered, every batch is validated before it is indexed, and the rows must number what
// the footer declares (internal/pqsafe).
func (l *Layout) readShardSide(path string, nullCols []string) error {
	cols := append([]string{"key"}, nullCols...)
	o := pqsafe.Options{BatchRows: 1024, Prefix: "mmdata: "}
	return pqsafe.ScanFile(context.Background(), path, cols, o, func(rec arrow.RecordBatch) error {
		return l.addSide(path, rec, nullCols)
	})
}

// addSide records the null keys of one validated batch.
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
	return nil
}
