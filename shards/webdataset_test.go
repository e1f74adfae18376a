package shards

import (
	"archive/tar"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// wdsSplit is webdataset's base_plus_ext: the key is the name up to the first dot of its
// base name, the extension the rest.
var wdsSplit = regexp.MustCompile(`^((?:.*/|)[^.]+)[.]([^/]*)$`)

// readWDS groups the members of a tar the way webdataset does: consecutive members with
// the same key form a sample.
func readWDS(t *testing.T, path string) []map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var out []map[string][]byte
	lastKey := ""
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		m := wdsSplit.FindStringSubmatch(h.Name)
		if m == nil {
			t.Fatalf("member %q has no key.ext form", h.Name)
		}
		data, _ := io.ReadAll(tr)
		if m[1] != lastKey || len(out) == 0 {
			out = append(out, map[string][]byte{"__key__": []byte(m[1])})
			lastKey = m[1]
		}
		if _, dup := out[len(out)-1][m[2]]; dup {
			t.Fatalf("sample %s has two %s members", m[1], m[2])
		}
		out[len(out)-1][m[2]] = data
	}
	return out
}

// parseNpy is an independent minimal .npy reader: it returns descr, shape and raw data.
func parseNpy(t *testing.T, b []byte) (string, []int, []byte) {
	t.Helper()
	if len(b) < 10 || string(b[:8]) != "\x93NUMPY\x01\x00" {
		t.Fatalf("not an npy 1.0 file: %q", b[:min(10, len(b))])
	}
	hl := int(binary.LittleEndian.Uint16(b[8:10]))
	if (10+hl)%64 != 0 {
		t.Fatalf("npy header not aligned to 64: %d", 10+hl)
	}
	hdr := string(b[10 : 10+hl])
	descr := regexp.MustCompile(`'descr': '([^']+)'`).FindStringSubmatch(hdr)
	shapeStr := regexp.MustCompile(`'shape': \(([^)]*)\)`).FindStringSubmatch(hdr)
	if descr == nil || shapeStr == nil || !strings.Contains(hdr, "'fortran_order': False") {
		t.Fatalf("bad npy header %q", hdr)
	}
	var shape []int
	for _, s := range strings.Split(shapeStr[1], ",") {
		if s = strings.TrimSpace(s); s != "" {
			v, _ := strconv.Atoi(s)
			shape = append(shape, v)
		}
	}
	return descr[1], shape, b[10+hl:]
}

func TestExportWebDatasetEncoded(t *testing.T) {
	all := makeSamples(21, 150, 9, "a.b/c") // dotted keys
	tmp := t.TempDir()
	writeParts(t, filepath.Join(tmp, "in"), all, 2, identity(len(all)))
	ds := filepath.Join(tmp, "ds")
	m := build(t, []string{filepath.Join(tmp, "in")}, ds, nil)
	out := filepath.Join(tmp, "wds")
	res, err := ExportWebDataset(context.Background(), ds, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tars) != len(m.Shards) || res.Samples != int64(len(all)) {
		t.Fatalf("exported %d tars %d samples, want %d and %d", len(res.Tars), res.Samples, len(m.Shards), len(all))
	}
	byKey := map[string]sample{}
	for _, s := range all {
		byKey[strings.ReplaceAll(s.key, ".", "_")] = s
	}
	n := 0
	for i, tarPath := range res.Tars {
		samples := readWDS(t, filepath.Join(out, tarPath))
		if int64(len(samples)) != m.Shards[i].Rows {
			t.Fatalf("%s: %d samples, shard has %d rows", tarPath, len(samples), m.Shards[i].Rows)
		}
		for _, smp := range samples {
			n++
			key := string(smp["__key__"])
			want, ok := byKey[key]
			if !ok {
				t.Fatalf("unknown key %q", key)
			}
			descr, shape, data := parseNpy(t, smp["image_latent.npy"])
			if descr != "<f2" || !slices.Equal(shape, []int{testC, testH, testW}) {
				t.Fatalf("%s: latent npy %s %v", key, descr, shape)
			}
			for j, v := range want.latent {
				if got := binary.LittleEndian.Uint16(data[2*j:]); got != v.Uint16() {
					t.Fatalf("%s latent[%d] bits %#x, want %#x", key, j, got, v.Uint16())
				}
			}
			descr, shape, data = parseNpy(t, smp["text_tokens.npy"])
			if descr != "<i4" || !slices.Equal(shape, []int{len(want.tokens)}) {
				t.Fatalf("%s: tokens npy %s %v", key, descr, shape)
			}
			for j, v := range want.tokens {
				if got := int32(binary.LittleEndian.Uint32(data[4*j:])); got != v {
					t.Fatalf("%s token %d = %d, want %d", key, j, got, v)
				}
			}
			if string(smp["cls"]) != fmt.Sprint(want.label) {
				t.Fatalf("%s: cls %q, want %d", key, smp["cls"], want.label)
			}
			var info map[string]string
			if err := json.Unmarshal(smp["info.json"], &info); err != nil {
				t.Fatal(err)
			}
			sha := want.sha()
			if info["sha256"] != hex.EncodeToString(sha[:]) {
				t.Fatalf("%s: info %v", key, info)
			}
		}
	}
	if n != len(all) {
		t.Fatalf("%d samples in the tars, want %d", n, len(all))
	}
}

func TestExportWebDatasetRaw(t *testing.T) {
	media := arrow.StructOf(
		arrow.Field{Name: "bytes", Type: arrow.BinaryTypes.Binary, Nullable: true},
		arrow.Field{Name: "path", Type: arrow.BinaryTypes.String, Nullable: true},
	)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: ColKey, Type: arrow.BinaryTypes.String},
		{Name: "image", Type: media, Nullable: true},
		{Name: "audio", Type: media, Nullable: true},
		{Name: "image_width", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "meta", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: ColSHA256, Type: arrow.BinaryTypes.Binary},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	png := []byte("\x89PNG\r\n\x1a\nrest")
	jpg := []byte{0xff, 0xd8, 0xff, 0xe0, 1, 2}
	wav := []byte("RIFF\x00\x00\x00\x00WAVEfmt ")
	type row struct {
		key        string
		img, audio []byte
		text       string
	}
	rows := []row{{"x/one", png, nil, "a cat"}, {"x/two", jpg, wav, "a dog"}, {"x/three", nil, wav, ""}}
	for i, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r.key)
		for c, data := range [][]byte{r.img, r.audio} {
			sb := b.Field(1 + c).(*array.StructBuilder)
			if data == nil {
				sb.AppendNull()
				continue
			}
			sb.Append(true)
			sb.FieldBuilder(0).(*array.BinaryBuilder).Append(data)
			sb.FieldBuilder(1).(*array.StringBuilder).Append(r.key + ".dat")
		}
		b.Field(3).(*array.Int32Builder).Append(int32(10 + i))
		if r.text == "" {
			b.Field(4).(*array.StringBuilder).AppendNull()
		} else {
			b.Field(4).(*array.StringBuilder).Append(r.text)
		}
		b.Field(5).(*array.StringBuilder).Append(`{"i":` + strconv.Itoa(i) + `}`)
		var sha [32]byte
		sha[0] = byte(i + 1)
		b.Field(6).(*array.BinaryBuilder).Append(sha[:])
	}
	rec := b.NewRecordBatch()
	tmp := t.TempDir()
	writeRecord(t, filepath.Join(tmp, "in", "p.parquet"), rec, 10)
	ds := filepath.Join(tmp, "ds")
	build(t, []string{filepath.Join(tmp, "in")}, ds, func(o *BuildOptions) { o.ValFraction = 0 })
	res, err := ExportWebDataset(context.Background(), ds, filepath.Join(tmp, "wds"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string][]byte{}
	for _, tp := range res.Tars {
		for _, s := range readWDS(t, filepath.Join(tmp, "wds", tp)) {
			got[string(s["__key__"])] = s
		}
	}
	for _, r := range rows {
		s := got[r.key]
		if s == nil {
			t.Fatalf("sample %s missing", r.key)
		}
		var exts []string
		for k := range s {
			if k != "__key__" {
				exts = append(exts, k)
			}
		}
		slices.Sort(exts)
		var want []string
		if r.img != nil {
			want = append(want, map[bool]string{true: "png", false: "jpg"}[r.img[0] == 0x89])
		}
		if r.audio != nil {
			want = append(want, "wav")
		}
		if r.text != "" {
			want = append(want, "txt")
		}
		want = append(want, "info.json", "json")
		slices.Sort(want)
		if !slices.Equal(exts, want) {
			t.Fatalf("%s: members %v, want %v", r.key, exts, want)
		}
		if r.text != "" && string(s["txt"]) != r.text {
			t.Fatalf("%s: text %q", r.key, s["txt"])
		}
	}
}
