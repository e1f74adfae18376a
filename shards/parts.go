package shards

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/immkit/immkit/internal/pqsafe"
)

// ErrNoParts is returned when the inputs hold no Parquet part files.
var ErrNoParts = errors.New("shards: no part files found")

// part is one input Parquet file.
type part struct {
	path     string
	rows     int64
	rawBytes int64 // uncompressed size of all column chunks, from the footer
	schema   *arrow.Schema
}

// findParts expands the inputs into a sorted list of Parquet files: a file is taken as
// is; a directory contributes DIR/parts/*.parquet when DIR/parts exists, else DIR/*.parquet.
func findParts(inputs []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, in := range inputs {
		st, err := os.Stat(in)
		if err != nil {
			return nil, fmt.Errorf("shards: input: %w", err)
		}
		var found []string
		if !st.IsDir() {
			found = []string{in}
		} else {
			dir := in
			if st2, err := os.Stat(filepath.Join(in, "parts")); err == nil && st2.IsDir() {
				dir = filepath.Join(in, "parts")
			}
			found, err = filepath.Glob(filepath.Join(dir, "*.parquet"))
			if err != nil {
				return nil, fmt.Errorf("shards: list %s: %w", dir, err)
			}
			if len(found) == 0 {
				return nil, fmt.Errorf("%w in %s", ErrNoParts, dir)
			}
		}
		for _, f := range found {
			abs, err := filepath.Abs(f)
			if err != nil {
				return nil, fmt.Errorf("shards: input %s: %w", f, err)
			}
			if !seen[abs] {
				seen[abs] = true
				out = append(out, abs)
			}
		}
	}
	if len(out) == 0 {
		return nil, ErrNoParts
	}
	sort.Strings(out)
	return out, nil
}

// parquetFile is an open Parquet file read through internal/pqsafe (footer parsing and
// reading recovered, batches validated, row counts checked). The loader replaces Arrow
// with a reader on its own allocator.
type parquetFile struct{ *pqsafe.File }

func openParquet(path string, batchRows int64) (*parquetFile, error) {
	// Stream column chunks through a 1 MiB buffer rather than reading each whole chunk
	// into a fresh allocation (which, for 16 MiB latent chunks, costs a large clear and
	// copy per row group).
	f, err := pqsafe.Open(path, pqsafe.Options{BatchRows: batchRows, BufferSize: 1 << 20, Prefix: "shards: "})
	if err != nil {
		return nil, err
	}
	return &parquetFile{f}, nil
}

// rawBytes sums the uncompressed size of all column chunks.
func (p *parquetFile) rawBytes() int64 {
	md := p.Reader.MetaData()
	var n int64
	for i := 0; i < md.NumRowGroups(); i++ {
		n += md.RowGroup(i).TotalByteSize()
	}
	return n
}

// schemaFields renders an Arrow schema's fields in manifest form.
func schemaFields(s *arrow.Schema) []Field {
	out := make([]Field, 0, s.NumFields())
	for _, f := range s.Fields() {
		out = append(out, Field{Name: f.Name, Type: f.Type.String(), Nullable: f.Nullable, Metadata: metadataMap(f.Metadata)})
	}
	return out
}

func metadataMap(md arrow.Metadata) map[string]string {
	if md.Len() == 0 {
		return nil
	}
	m := make(map[string]string, md.Len())
	for i, k := range md.Keys() {
		m[k] = md.Values()[i]
	}
	return m
}

// checkKeyColumns verifies the key and sha256 columns exist with usable types.
func checkKeyColumns(path string, s *arrow.Schema) error {
	ki := s.FieldIndices(ColKey)
	if len(ki) != 1 {
		return fmt.Errorf("shards: %s: want one %q column, found %d", path, ColKey, len(ki))
	}
	switch s.Field(ki[0]).Type.ID() {
	case arrow.STRING, arrow.LARGE_STRING:
	default:
		return fmt.Errorf("shards: %s: column %q has type %s, want utf8", path, ColKey, s.Field(ki[0]).Type)
	}
	si := s.FieldIndices(ColSHA256)
	if len(si) != 1 {
		return fmt.Errorf("shards: %s: want one %q column, found %d", path, ColSHA256, len(si))
	}
	if s.Field(si[0]).Type.ID() != arrow.BINARY {
		return fmt.Errorf("shards: %s: column %q has type %s, want binary (a part from an older immkit? re-run encode)", path, ColSHA256, s.Field(si[0]).Type)
	}
	return nil
}

// artefactsOf reads the artefact list from schema metadata.
func artefactsOf(path string, md arrow.Metadata) ([]Artefact, error) {
	v, ok := md.GetValue(ArtefactsMetadataKey)
	if !ok || strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var a []Artefact
	if err := json.Unmarshal([]byte(v), &a); err != nil {
		return nil, fmt.Errorf("shards: %s: schema metadata %q: %w", path, ArtefactsMetadataKey, err)
	}
	for _, x := range a {
		if x.Name == "" || !isHexHash(x.SHA256) {
			return nil, fmt.Errorf("shards: %s: schema metadata %q: artefact %+v needs a name and a 64-digit lower-case hex sha256", path, ArtefactsMetadataKey, x)
		}
	}
	return a, nil
}

// withoutKey returns md minus one key.
func withoutKey(md arrow.Metadata, key string) arrow.Metadata {
	var ks, vs []string
	for i, k := range md.Keys() {
		if k != key {
			ks = append(ks, k)
			vs = append(vs, md.Values()[i])
		}
	}
	return arrow.NewMetadata(ks, vs)
}

// ErrReaderPanic is wrapped by the error returned when the Parquet reader panicked on a
// damaged file (arrow-go panics on some, e.g. a negative column chunk length): the command
// fails with the file named instead of crashing. It is pqsafe.ErrPanic.
var ErrReaderPanic = pqsafe.ErrPanic
