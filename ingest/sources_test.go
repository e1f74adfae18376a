package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/immkit/immkit/testdata/gen"
)

func runOne(t *testing.T, cfg Config) Stats {
	t.Helper()
	st, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	return st
}

func rowsByKey(rows []row) map[string]row {
	m := map[string]row{}
	for _, r := range rows {
		m[r.key] = r
	}
	return m
}

// TestSourcesAgree ingests the same corpus as a directory tree, as its manifest.jsonl (paths
// to the files, caption field), as tar shards, as gzip-compressed shards, and as the
// Parquet parts of the first run: every way must give the same rows.
func TestSourcesAgree(t *testing.T) {
	src := filepath.Join(t.TempDir(), "shapes")
	if _, err := gen.Generate(context.Background(), src, gen.Options{Seed: 5, Samples: 25, Output: gen.OutputBoth, ShardSamples: 10}); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	dirOut := filepath.Join(tmp, "dir")
	runOne(t, testConfig(src, dirOut))
	want := readRows(t, dirOut)
	wantHashes := hashes(want)

	shards, _ := filepath.Glob(filepath.Join(src, gen.ShardDir, "*.tar"))
	var gz []string
	for _, s := range shards {
		b, _ := os.ReadFile(s)
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(b)
		zw.Close()
		p := filepath.Join(tmp, filepath.Base(s)+".gz")
		os.WriteFile(p, z.Bytes(), 0o644)
		gz = append(gz, p)
	}
	parts, _ := PartFiles(dirOut)
	cases := []struct {
		name    string
		sources []string
		edit    func(*Config)
	}{
		{"jsonl", []string{filepath.Join(src, gen.ManifestName)}, func(c *Config) { c.Source.TextField = "caption" }},
		{"tar", shards, nil},
		{"tar.gz", gz, nil},
		{"parquet", parts, nil},
	}
	for _, tc := range cases {
		out := filepath.Join(tmp, tc.name)
		cfg := testConfig(src, out)
		cfg.Sources = tc.sources
		if tc.edit != nil {
			tc.edit(&cfg)
		}
		st := runOne(t, cfg)
		if st.Rejected != 0 {
			t.Errorf("%s: %d rejects %v", tc.name, st.Rejected, readRejects(t, out))
		}
		got := readRows(t, out)
		if h := hashes(got); !slices.Equal(h, wantHashes) {
			t.Errorf("%s: %d rows, hashes differ from the directory run's %d", tc.name, len(h), len(wantHashes))
			continue
		}
		wk := rowsByKey(want)
		for _, r := range got {
			key := r.key
			if tc.name == "jsonl" { // the manifest's key field is the bare index; the label is a field
				key = *r.label + "/" + r.key
			}
			w, ok := wk[key]
			if !ok {
				t.Errorf("%s: key %q not in the directory run", tc.name, r.key)
				continue
			}
			if r.sha != w.sha || r.width != w.width || r.secs != w.secs || *r.label != *w.label {
				t.Errorf("%s: %s differs: %+v vs %+v", tc.name, r.key, r.label, w.label)
			}
		}
	}
}

func TestJSONLFields(t *testing.T) {
	dir := t.TempDir()
	var pb bytes.Buffer
	png.Encode(&pb, noisyImage(12, 9, 1))
	os.MkdirAll(filepath.Join(dir, "img"), 0o755)
	os.WriteFile(filepath.Join(dir, "img", "a.png"), pb.Bytes(), 0o644)
	os.WriteFile(filepath.Join(t.TempDir(), "secret.png"), pb.Bytes(), 0o644)
	outside := filepath.Join(t.TempDir(), "o.png")
	os.WriteFile(outside, pb.Bytes(), 0o644)
	os.Symlink(outside, filepath.Join(dir, "img", "link.png"))
	wav := makeWAV(1, 16, 1, 8000, 4000, false)
	lines := []string{
		`{"id": "p", "image": "img/a.png", "text": "cafe\u0301", "label": 3, "extra": {"x": 1}}`,
		`{"id": "b", "image": "` + base64.StdEncoding.EncodeToString(pb.Bytes()) + `", "audio": "data:audio/wav;base64,` + base64.StdEncoding.EncodeToString(wav) + `"}`,
		``,
		`{"id": "bad json"`,
		`{"id": "u", "image": "../secret.png"}`,
		`{"id": "m", "image": "img/missing.png"}`,
		`{"id": "s", "image": "img/link.png"}`,
		`{"id": "t", "text": 5}`,
		`{"id": "n", "other": "no content"}`,
	}
	p := filepath.Join(dir, "d.jsonl")
	os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	out := filepath.Join(t.TempDir(), "out")
	cfg := testConfig(p, out)
	st := runOne(t, cfg)
	if st.Inputs != 8 || st.Samples != 2 || st.Rejected != 6 {
		t.Errorf("stats %+v", st)
	}
	reasons := map[string]string{}
	for _, r := range readRejects(t, out) {
		reasons[r.Source] = r.Reason
	}
	want := map[string]string{
		"d.jsonl:4": ReasonBadJSON, "d.jsonl:5": ReasonUnsafePath, "d.jsonl:6": ReasonReadError,
		"d.jsonl:7": ReasonSymlinkOutsideRoot, "d.jsonl:8": ReasonBadRow, "d.jsonl:9": ReasonNoContent,
	}
	for src, reason := range want {
		if got := reasons[filepath.ToSlash(filepath.Join(dir, src))]; got != reason {
			t.Errorf("%s: reason %q, want %q (all: %v)", src, got, reason, reasons)
		}
	}
	rows := rowsByKey(readRows(t, out))
	pr, br := rows["p"], rows["b"]
	if !bytes.Equal(pr.image, pb.Bytes()) || pr.width != 12 || pr.height != 9 || pr.label == nil || *pr.label != "3" {
		t.Errorf("row p: %+v", pr)
	}
	if pr.text == nil || *pr.text != "caf\u00e9" {
		t.Errorf("row p text %q, want NFC caf\\u00e9", *pr.text)
	}
	if !bytes.Equal(br.image, pb.Bytes()) || !bytes.Equal(br.audio, wav) || br.rate != 8000 || br.secs != 0.5 {
		t.Errorf("row b: image %d B audio %d B %d Hz %g s", len(br.image), len(br.audio), br.rate, br.secs)
	}
}

func TestTextUnits(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "doc.txt")
	os.WriteFile(p, []byte("first line\nsecond line\n\n\nthird\r\nfourth\n\n  \nlast"), 0o644)
	for _, tc := range []struct {
		unit string
		want []string
	}{
		{TextUnitFile, []string{"first line\nsecond line\n\n\nthird\r\nfourth\n\n  \nlast"}},
		{TextUnitLine, []string{"first line", "second line", "third", "fourth", "last"}},
		{TextUnitParagraph, []string{"first line\nsecond line", "third\nfourth", "last"}},
	} {
		out := filepath.Join(t.TempDir(), tc.unit)
		cfg := testConfig(p, out)
		cfg.Source.TextUnit = tc.unit
		cfg.Dedup = false
		runOne(t, cfg)
		var got []string
		for _, r := range readRows(t, out) {
			got = append(got, *r.text)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.unit, got, tc.want)
		}
	}
}

// TestLabelFromAndDedup checks --label-from none/dir and --no-dedup on a directory with a
// duplicated sample and a .cls member.
func TestLabelFromAndDedup(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "cats"), 0o755)
	for _, f := range []struct{ name, body string }{
		{"cats/a.txt", "a cat"}, {"cats/b.txt", "a cat"}, {"cats/c.txt", "another cat"}, {"cats/c.cls", "felis"},
	} {
		os.WriteFile(filepath.Join(dir, f.name), []byte(f.body), 0o644)
	}
	for _, tc := range []struct {
		from   string
		dedup  bool
		rows   int
		labels []string
	}{
		{LabelAuto, true, 2, []string{"cats", "felis"}},
		{LabelDir, true, 2, []string{"cats", "cats"}},
		{LabelNone, false, 3, []string{"", "", ""}},
	} {
		out := filepath.Join(t.TempDir(), "out")
		cfg := testConfig(dir, out)
		cfg.Source.LabelFrom, cfg.Dedup = tc.from, tc.dedup
		st := runOne(t, cfg)
		rows := readRows(t, out)
		var labels []string
		for _, r := range rows {
			l := ""
			if r.label != nil {
				l = *r.label
			}
			labels = append(labels, l)
		}
		if len(rows) != tc.rows || !slices.Equal(labels, tc.labels) || st.Duplicates != int64(3-tc.rows) {
			t.Errorf("label-from %s dedup %v: %d rows labels %q, %d duplicates", tc.from, tc.dedup, len(rows), labels, st.Duplicates)
		}
	}
}

// TestOutputInsideSource runs twice with OUT inside the source tree: the output must not be
// read back as input.
func TestOutputInsideSource(t *testing.T) {
	dir := t.TempDir()
	for i := range 20 {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("a%02d.txt", i)), []byte(fmt.Sprint("text ", i)), 0o644)
	}
	out := filepath.Join(dir, "zzz") // walked last, after parts were committed
	for i, resume := range []bool{false, true} {
		cfg := testConfig(dir, out)
		cfg.Resume = resume
		cfg.Part.PartRows = 1
		st := runOne(t, cfg)
		if st.Inputs != 20 || st.Samples != 20 {
			t.Errorf("run %d: %+v", i, st)
		}
	}
}
