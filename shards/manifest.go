package shards

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"sort"
	"strings"
)

// FormatVersion is the version of index.json this package writes and the only one it reads.
const FormatVersion = 1

// ManifestName is the file name of the manifest inside a shard directory.
const ManifestName = "index.json"

// Split names.
const (
	SplitTrain = "train"
	SplitVal   = "val"
)

// ErrManifest is wrapped by every manifest parse or validation error.
var ErrManifest = errors.New("shards: invalid manifest")

// Manifest is the content of index.json: everything a reader needs to find, check and
// interpret the shards of a dataset. Its JSON encoding is canonical (fields in declaration
// order, maps with sorted keys, no timestamps), so the same shards give the same bytes.
type Manifest struct {
	Version     int                    `json:"version"`
	Schema      Schema                 `json:"schema"`
	Artefacts   []Artefact             `json:"artefacts"`    // encoder state files, sorted by name then path
	Seed        uint64                 `json:"seed"`         // shuffle seed
	ValFraction float64                `json:"val_fraction"` // target fraction of keys in the val split
	ShardSize   int64                  `json:"shard_size"`   // target shard size in bytes
	Inputs      Inputs                 `json:"inputs"`
	Shards      []Shard                `json:"shards"` // train shards first, then val, each in index order
	Totals      map[string]SplitTotals `json:"totals"` // by split name
}

// Schema is the Arrow schema of every shard, in a JSON form: field names, type strings as
// Arrow prints them, nullability, field and schema metadata.
type Schema struct {
	Fields   []Field           `json:"fields"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Field is one column of Schema.
type Field struct {
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Nullable bool              `json:"nullable"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Artefact is a file of learned encoder state (BPE ranks, codebook, PCA basis) that the
// shards depend on, identified by its sha256.
type Artefact struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	SHA256 string `json:"sha256"` // lower-case hex
}

// Inputs counts what the shard step read. It is reported by Build but not stored in the
// manifest, which must not depend on how the input was split into parts.
type Inputs struct {
	Parts      int   `json:"parts"`      // part files merged
	Rows       int64 `json:"rows"`       // rows read
	Duplicates int64 `json:"duplicates"` // rows dropped because their sha256 was seen
}

// Shard is one Parquet file of the dataset.
type Shard struct {
	Split  string `json:"split"`
	Path   string `json:"path"` // relative to the manifest, slash-separated: train/shard-00000.parquet
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"` // of the file, lower-case hex
}

// SplitTotals sums the shards of one split. NonNull counts the non-null values of every
// column, which for media columns (image, audio, text, image_latent, text_tokens ...) is the
// number of samples that have that modality.
type SplitTotals struct {
	Shards  int              `json:"shards"`
	Rows    int64            `json:"rows"`
	Bytes   int64            `json:"bytes"`
	NonNull map[string]int64 `json:"non_null"`
}

// Marshal returns the canonical JSON encoding of m, indented, with a final newline.
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := jsonEncode(&buf, m); err != nil {
		return nil, fmt.Errorf("shards: encode manifest: %w", err)
	}
	return buf.Bytes(), nil
}

// ParseManifest decodes and validates index.json. Unknown fields, an unknown version,
// inconsistent totals and unsafe shard paths are errors wrapping ErrManifest.
func ParseManifest(data []byte) (*Manifest, error) {
	// Check the version first so an old or future file gets a clear message rather than a
	// complaint about a field it does not know.
	var probe struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if probe.Version == nil {
		return nil, fmt.Errorf("%w: no \"version\" field", ErrManifest)
	}
	if *probe.Version != FormatVersion {
		return nil, fmt.Errorf("%w: format version %d is not supported (this build reads version %d)", ErrManifest, *probe.Version, FormatVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrManifest)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks the invariants of a manifest: known version, sane options, unique safe
// shard paths, well-formed hashes, and totals that equal the sums over the shards.
func (m *Manifest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrManifest}, args...)...)
	}
	if m.Version != FormatVersion {
		return bad("format version %d is not supported (this build reads version %d)", m.Version, FormatVersion)
	}
	if math.IsNaN(m.ValFraction) || m.ValFraction < 0 || m.ValFraction > 1 {
		return bad("val_fraction %v outside [0, 1]", m.ValFraction)
	}
	if m.ShardSize <= 0 {
		return bad("shard_size %d must be positive", m.ShardSize)
	}
	if len(m.Schema.Fields) == 0 {
		return bad("schema has no fields")
	}
	seenField := map[string]bool{}
	for _, f := range m.Schema.Fields {
		if f.Name == "" || f.Type == "" {
			return bad("schema field with empty name or type")
		}
		if seenField[f.Name] {
			return bad("schema field %q appears twice", f.Name)
		}
		seenField[f.Name] = true
	}
	for _, col := range []string{ColKey, ColSHA256} {
		if !seenField[col] {
			return bad("schema has no %q column", col)
		}
	}
	for i, a := range m.Artefacts {
		if a.Name == "" {
			return bad("artefact %d has no name", i)
		}
		if !isHexHash(a.SHA256) {
			return bad("artefact %q: sha256 %q is not 64 lower-case hex digits", a.Name, a.SHA256)
		}
	}
	sums := map[string]*SplitTotals{}
	seenPath := map[string]bool{}
	for i, s := range m.Shards {
		if s.Split != SplitTrain && s.Split != SplitVal {
			return bad("shard %d: split %q is neither %q nor %q", i, s.Split, SplitTrain, SplitVal)
		}
		if err := checkShardPath(s.Path); err != nil {
			return bad("shard %d: %v", i, err)
		}
		if seenPath[s.Path] {
			return bad("shard path %q appears twice", s.Path)
		}
		seenPath[s.Path] = true
		if s.Rows <= 0 || s.Bytes <= 0 {
			return bad("shard %s: rows %d and bytes %d must be positive", s.Path, s.Rows, s.Bytes)
		}
		if !isHexHash(s.SHA256) {
			return bad("shard %s: sha256 %q is not 64 lower-case hex digits", s.Path, s.SHA256)
		}
		t := sums[s.Split]
		if t == nil {
			t = &SplitTotals{}
			sums[s.Split] = t
		}
		t.Shards++
		t.Rows += s.Rows
		t.Bytes += s.Bytes
	}
	for name, t := range m.Totals {
		if name != SplitTrain && name != SplitVal {
			return bad("totals for unknown split %q", name)
		}
		s := sums[name]
		if s == nil {
			s = &SplitTotals{}
		}
		if t.Shards != s.Shards || t.Rows != s.Rows || t.Bytes != s.Bytes {
			return bad("totals of %s (%d shards, %d rows, %d bytes) differ from the sum over its shards (%d, %d, %d)",
				name, t.Shards, t.Rows, t.Bytes, s.Shards, s.Rows, s.Bytes)
		}
		for col, n := range t.NonNull {
			if !seenField[col] {
				return bad("totals of %s count column %q that is not in the schema", name, col)
			}
			if n < 0 || n > t.Rows {
				return bad("totals of %s: %d non-null values of %q in %d rows", name, n, col, t.Rows)
			}
		}
	}
	for name := range sums {
		if _, ok := m.Totals[name]; !ok {
			return bad("no totals for split %q", name)
		}
	}
	return nil
}

// SplitShards returns the shards of one split in manifest order.
func (m *Manifest) SplitShards(split string) []Shard {
	var out []Shard
	for _, s := range m.Shards {
		if s.Split == split {
			out = append(out, s)
		}
	}
	return out
}

// Field returns the schema field called name.
func (s Schema) Field(name string) (Field, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

func checkShardPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case strings.Contains(p, "\\"), strings.HasPrefix(p, "/"), path.Clean(p) != p, p == "..", strings.HasPrefix(p, "../"):
		return fmt.Errorf("path %q is not a clean relative slash-separated path inside the dataset", p)
	}
	return nil
}

func isHexHash(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// sortArtefacts orders artefacts by name then path then hash.
func sortArtefacts(a []Artefact) {
	sort.Slice(a, func(i, j int) bool {
		if a[i].Name != a[j].Name {
			return a[i].Name < a[j].Name
		}
		if a[i].Path != a[j].Path {
			return a[i].Path < a[j].Path
		}
		return a[i].SHA256 < a[j].SHA256
	})
}

func jsonEncode(w *bytes.Buffer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
