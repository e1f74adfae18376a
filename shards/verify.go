package shards

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrMismatch is returned by Verify when the shards disagree with the manifest.
var ErrMismatch = errors.New("shards: dataset does not match its manifest")

// Mismatch is one disagreement between a shard file and the manifest.
type Mismatch struct {
	Path string // shard path as in the manifest
	What string // "sha256", "bytes", "rows", "schema", "file"
	Want string
	Got  string
}

func (m Mismatch) String() string {
	return fmt.Sprintf("%s: %s: manifest says %s, file has %s", m.Path, m.What, m.Want, m.Got)
}

// VerifyReport is what Verify checked.
type VerifyReport struct {
	Shards     int
	Rows       int64
	Bytes      int64
	Mismatches []Mismatch
}

// ReadManifest reads and validates DIR/index.json.
func ReadManifest(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("shards: %w", err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestName), err)
	}
	return m, nil
}

// Verify recomputes the sha256, size, row count and schema of every shard of the dataset in
// dir and compares them with the manifest. It returns the report and, when anything
// differs, an error wrapping ErrMismatch.
func Verify(ctx context.Context, dir string) (*VerifyReport, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	wantSchema, _ := json.Marshal(m.Schema.Fields)
	rep := &VerifyReport{}
	for _, s := range m.Shards {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rep.Shards++
		add := func(what, want, got string) {
			rep.Mismatches = append(rep.Mismatches, Mismatch{Path: s.Path, What: what, Want: want, Got: got})
		}
		path := filepath.Join(dir, filepath.FromSlash(s.Path))
		f, err := os.Open(path)
		if err != nil {
			add("file", "a readable file", err.Error())
			continue
		}
		h := sha256.New()
		n, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			add("file", "a readable file", err.Error())
			continue
		}
		rep.Bytes += n
		if n != s.Bytes {
			add("bytes", fmt.Sprint(s.Bytes), fmt.Sprint(n))
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != s.SHA256 {
			add("sha256", s.SHA256, got)
		}
		pf, err := openParquet(path, 0)
		if err != nil {
			add("file", "a Parquet file", err.Error())
			continue
		}
		rows := pf.Reader.NumRows()
		sch, err := pf.Arrow.Schema()
		pf.Close()
		rep.Rows += rows
		if rows != s.Rows {
			add("rows", fmt.Sprint(s.Rows), fmt.Sprint(rows))
		}
		if err != nil {
			add("schema", string(wantSchema), err.Error())
		} else if got, _ := json.Marshal(schemaFields(sch)); string(got) != string(wantSchema) {
			add("schema", string(wantSchema), string(got))
		}
	}
	if len(rep.Mismatches) > 0 {
		return rep, fmt.Errorf("%w: %d mismatches, first: %s", ErrMismatch, len(rep.Mismatches), rep.Mismatches[0])
	}
	return rep, nil
}
