package shards

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func validManifest() *Manifest {
	h := strings.Repeat("ab", 32)
	return &Manifest{
		Version:     FormatVersion,
		Schema:      Schema{Fields: []Field{{Name: ColKey, Type: "utf8"}, {Name: "image_latent", Type: "fixed_size_list<item: halffloat, nullable>[4]", Nullable: true, Metadata: map[string]string{"shape": "1,2,2"}}, {Name: ColSHA256, Type: "binary"}}},
		Artefacts:   []Artefact{{Name: "pca", Path: "pca.safetensors", SHA256: h}},
		Seed:        7,
		ValFraction: 0.25,
		ShardSize:   1 << 20,
		Shards: []Shard{
			{Split: SplitTrain, Path: "train/shard-00000.parquet", Rows: 10, Bytes: 100, SHA256: h},
			{Split: SplitVal, Path: "val/shard-00000.parquet", Rows: 3, Bytes: 50, SHA256: h},
		},
		Totals: map[string]SplitTotals{
			SplitTrain: {Shards: 1, Rows: 10, Bytes: 100, NonNull: map[string]int64{"image_latent": 10}},
			SplitVal:   {Shards: 1, Rows: 3, Bytes: 50, NonNull: map[string]int64{"image_latent": 2}},
		},
	}
}

func TestManifestRoundTrip(t *testing.T) {
	m := validManifest()
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := got.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, again) {
		t.Fatalf("marshal(parse(x)) != x:\n%s\n%s", data, again)
	}
	if got.Shards[1].Rows != 3 || got.Schema.Fields[1].Metadata["shape"] != "1,2,2" {
		t.Fatalf("parsed %+v", got)
	}
}

func TestManifestRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(m *Manifest)
		raw  string // used instead of the edited manifest when set
		want string
	}{
		{name: "future version", raw: `{"version": 2, "future": true}`, want: "format version 2 is not supported"},
		{name: "no version", raw: `{"shards": []}`, want: `no "version"`},
		{name: "not json", raw: `{"version": 1,`, want: "invalid manifest"},
		{name: "unknown field", raw: `{"version": 1, "surprise": 1}`, want: "unknown field"},
		{name: "escaping path", edit: func(m *Manifest) { m.Shards[0].Path = "../x.parquet" }, want: "not a clean relative"},
		{name: "absolute path", edit: func(m *Manifest) { m.Shards[0].Path = "/etc/passwd" }, want: "not a clean relative"},
		{name: "duplicate path", edit: func(m *Manifest) { m.Shards[1].Path = m.Shards[0].Path; m.Shards[1].Split = SplitTrain }, want: "appears twice"},
		{name: "bad hash", edit: func(m *Manifest) { m.Shards[0].SHA256 = "XYZ" }, want: "hex"},
		{name: "bad split", edit: func(m *Manifest) { m.Shards[0].Split = "test" }, want: "neither"},
		{name: "totals off", edit: func(m *Manifest) { t := m.Totals[SplitTrain]; t.Rows = 11; m.Totals[SplitTrain] = t }, want: "differ from the sum"},
		{name: "missing totals", edit: func(m *Manifest) { delete(m.Totals, SplitVal) }, want: "no totals"},
		{name: "non-null over rows", edit: func(m *Manifest) { m.Totals[SplitVal].NonNull["image_latent"] = 4 }, want: "non-null"},
		{name: "val fraction", edit: func(m *Manifest) { m.ValFraction = 1.5 }, want: "val_fraction"},
		{name: "no key column", edit: func(m *Manifest) { m.Schema.Fields = m.Schema.Fields[1:] }, want: `no "key"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.raw)
			if tc.raw == "" {
				m := validManifest()
				tc.edit(m)
				var buf bytes.Buffer
				// Bypass Marshal's validation to produce the bad file.
				if err := jsonEncode(&buf, m); err != nil {
					t.Fatal(err)
				}
				data = buf.Bytes()
			}
			_, err := ParseManifest(data)
			if err == nil || !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseManifest: %v, want an ErrManifest containing %q", err, tc.want)
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	data, err := validManifest().Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if !errors.Is(err, ErrManifest) {
				t.Fatalf("error %v does not wrap ErrManifest", err)
			}
			return
		}
		// What parses must re-encode and parse to the same encoding.
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("valid manifest does not marshal: %v", err)
		}
		m2, err := ParseManifest(out)
		if err != nil {
			t.Fatalf("re-encoded manifest does not parse: %v", err)
		}
		out2, _ := m2.Marshal()
		if !bytes.Equal(out, out2) {
			t.Fatal("encoding is not stable")
		}
	})
}
