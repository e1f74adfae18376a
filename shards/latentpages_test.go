package shards

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// latentFile writes rec to a Parquet file with props, in row groups of rgRows rows (0: one
// row group), and returns it opened.
func latentFile(t testing.TB, rec arrow.RecordBatch, rgRows int64, props *parquet.WriterProperties) *parquetFile {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, props, pqarrow.NewArrowWriterProperties())
	if err != nil {
		t.Fatal(err)
	}
	if rgRows <= 0 {
		rgRows = rec.NumRows()
	}
	// Compact copies per row group: pqarrow v18.8.0 mis-writes sliced fixed_size_list
	// arrays (it ignores the slice offset), so it must not slice them itself.
	for lo := int64(0); lo < rec.NumRows(); lo += rgRows {
		sl := rec.NewSlice(lo, min(rec.NumRows(), lo+rgRows))
		cols := make([]arrow.Array, sl.NumCols())
		for c := range cols {
			if cols[c], err = array.Concatenate([]arrow.Array{sl.Column(c)}, memory.DefaultAllocator); err != nil {
				t.Fatal(err)
			}
		}
		sl.Release()
		part := array.NewRecordBatch(rec.Schema(), cols, -1)
		for _, c := range cols {
			c.Release()
		}
		err := w.Write(part)
		part.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pf, err := openParquet(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Close() })
	return pf
}

// float32Record is a one-column record of n fixed_size_list<float32> rows of size values
// and those values, row after row.
func float32Record(n, size int, seed uint64) (arrow.RecordBatch, []float32) {
	r := rand.New(rand.NewPCG(seed, 5))
	sc := arrow.NewSchema([]arrow.Field{{Name: "z", Type: arrow.FixedSizeListOf(int32(size), arrow.PrimitiveTypes.Float32), Nullable: true}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	vals := make([]float32, n*size)
	lb := b.Field(0).(*array.FixedSizeListBuilder)
	for i := range n {
		for j := range size {
			vals[i*size+j] = float32(r.NormFloat64())
		}
		lb.Append(true)
		lb.ValueBuilder().(*array.Float32Builder).AppendValues(vals[i*size:(i+1)*size], nil)
	}
	return b.NewRecordBatch(), vals
}

// TestLatentPagesRead reads random row subsets of float16 and float32 latent columns with
// the page reader from files of several layouts (codecs, page versions and sizes, row
// groups) and compares them with the values written; dictionary-encoded chunks must be
// refused (the loader then uses the general reader).
func TestLatentPagesRead(t *testing.T) {
	const n = 150
	all := makeSamples(21, n, 3, "q")
	size := len(all[0].latent)
	f16rec := encodedRecord(all, size)
	defer f16rec.Release()
	want16 := make([]byte, 0, n*size*2)
	for _, s := range all {
		for _, v := range s.latent {
			want16 = binary.LittleEndian.AppendUint16(want16, v.Uint16())
		}
	}
	const size32 = 37
	f32rec, vals32 := float32Record(n, size32, 3)
	defer f32rec.Release()
	want32 := make([]byte, 0, n*size32*4)
	for _, v := range vals32 {
		want32 = binary.LittleEndian.AppendUint32(want32, math.Float32bits(v))
	}
	type layout struct {
		name string
		opts []parquet.WriterProperty
		ok   bool
	}
	layouts := []layout{
		{"zstd v1 small pages", []parquet.WriterProperty{parquet.WithCompression(compress.Codecs.Zstd), parquet.WithDataPageSize(1 << 10), parquet.WithBatchSize(100)}, true},
		{"zstd v1", []parquet.WriterProperty{parquet.WithCompression(compress.Codecs.Zstd)}, true},
		{"uncompressed v1 small pages", []parquet.WriterProperty{parquet.WithDataPageSize(700), parquet.WithBatchSize(50)}, true},
		{"snappy v2 small pages", []parquet.WriterProperty{parquet.WithCompression(compress.Codecs.Snappy), parquet.WithDataPageVersion(parquet.DataPageV2), parquet.WithDataPageSize(1 << 10), parquet.WithBatchSize(100)}, true},
		{"uncompressed v2 small pages", []parquet.WriterProperty{parquet.WithDataPageVersion(parquet.DataPageV2), parquet.WithDataPageSize(900), parquet.WithBatchSize(77)}, true},
		{"gzip v1 with statistics", []parquet.WriterProperty{parquet.WithCompression(compress.Codecs.Gzip), parquet.WithStats(true), parquet.WithDataPageSize(2 << 10)}, true},
		{"dictionary", []parquet.WriterProperty{parquet.WithDictionaryDefault(true), parquet.WithDataPageSize(1 << 10)}, false},
	}
	r := rand.New(rand.NewPCG(7, 7))
	for _, lay := range layouts {
		for _, col := range []struct {
			name string
			rec  arrow.RecordBatch
			c    loadCol
			want []byte
		}{
			{"float16", f16rec, loadCol{name: "image_latent", kind: kindLatent, size: size, f16: true}, want16},
			{"float32", f32rec, loadCol{name: "z", kind: kindLatent, size: size32}, want32},
		} {
			t.Run(lay.name+"/"+col.name, func(t *testing.T) {
				opts := append([]parquet.WriterProperty{parquet.WithDictionaryDefault(false)}, lay.opts...)
				pf := latentFile(t, col.rec, 60, parquet.NewWriterProperties(opts...))
				leaf, err := pf.Leaves(col.c.name)
				if err != nil {
					t.Fatal(err)
				}
				eb := len(col.want) / (n * col.c.size)
				md := pf.Reader.MetaData()
				var lp latentPages
				base := int64(0)
				for rg := range md.NumRowGroups() {
					rows := md.RowGroup(rg).NumRows()
					subsets := [][]int64{nil, {rows - 1}, {0}}
					all := make([]int64, rows)
					for i := range all {
						all[i] = int64(i)
					}
					subsets = append(subsets, all)
					for range 5 {
						var s []int64
						for i := range rows {
							if r.IntN(4) == 0 {
								s = append(s, i)
							}
						}
						subsets = append(subsets, s)
					}
					for _, rows := range subsets {
						dst := bytes.Repeat([]byte{0xEE}, len(rows)*col.c.size*eb)
						ok, err := lp.read(pf, rg, leaf[0], col.c, md.RowGroup(rg).NumRows(), rows, dst)
						if err != nil {
							t.Fatalf("row group %d rows %v: %v", rg, rows, err)
						}
						if ok != lay.ok {
							t.Fatalf("row group %d: page reader ok = %v, want %v", rg, ok, lay.ok)
						}
						if !ok {
							continue
						}
						for k, row := range rows {
							rs := col.c.size * eb
							got := dst[k*rs : (k+1)*rs]
							want := col.want[(base+row)*int64(rs) : (base+row+1)*int64(rs)]
							if !bytes.Equal(got, want) {
								t.Fatalf("row group %d row %d (of subset %v): values differ from those written", rg, row, rows)
							}
						}
					}
					base += rows
				}
				if base != n {
					t.Fatalf("row groups hold %d rows, want %d", base, n)
				}
			})
		}
	}
}

// TestParsePageHeaderAgainstArrow walks the pages of column chunks with parsePageHeader
// and compares every header with what arrow-go's page reader reports for the same pages.
func TestParsePageHeaderAgainstArrow(t *testing.T) {
	all := makeSamples(5, 90, 30, "h")
	rec := encodedRecord(all, len(all[0].latent))
	defer rec.Release()
	for _, v := range []parquet.DataPageVersion{parquet.DataPageV1, parquet.DataPageV2} {
		pf := latentFile(t, rec, 40, parquet.NewWriterProperties(parquet.WithDataPageVersion(v), parquet.WithDataPageSize(512),
			parquet.WithCompression(compress.Codecs.Zstd), parquet.WithStats(true), parquet.WithBatchSize(64)))
		md := pf.Reader.MetaData()
		pages := 0
		for rg := range md.NumRowGroups() {
			for leaf := range md.Schema.NumColumns() {
				cc, err := md.RowGroup(rg).ColumnChunk(leaf)
				if err != nil {
					t.Fatal(err)
				}
				pr, err := pf.Reader.RowGroup(rg).GetColumnPageReader(leaf)
				if err != nil {
					t.Fatal(err)
				}
				off := cc.DataPageOffset()
				if cc.HasDictionaryPage() {
					off = cc.DictionaryPageOffset()
				}
				end := off + cc.TotalCompressedSize()
				var lp latentPages
				for pr.Next() {
					if off >= end {
						t.Fatalf("arrow reads a page past the chunk end at %d", off)
					}
					h, hl, err := lp.header(pf.OS, off, end)
					if err != nil {
						t.Fatal(err)
					}
					var wantTyp, wantEnc, wantNV, wantNulls int32
					switch p := pr.Page().(type) {
					case *file.DataPageV1:
						wantTyp, wantEnc, wantNV = pageData, int32(p.Encoding()), p.NumValues()
						if h.defEncoding != int32(p.DefinitionLevelEncoding()) || h.repEncoding != int32(p.RepetitionLevelEncoding()) {
							t.Fatalf("page at %d: level encodings %d/%d, arrow says %d/%d", off, h.defEncoding, h.repEncoding, p.DefinitionLevelEncoding(), p.RepetitionLevelEncoding())
						}
					case *file.DataPageV2:
						wantTyp, wantEnc, wantNV, wantNulls = pageDataV2, int32(p.Encoding()), p.NumValues(), p.NumNulls()
						if h.numRows != p.NumRows() || h.defLen != p.DefinitionLevelByteLen() || h.repLen != p.RepetitionLevelByteLen() || h.isCompressed != p.IsCompressed() {
							t.Fatalf("page at %d: v2 fields %+v, arrow says rows %d levels %d/%d compressed %v", off, h, p.NumRows(), p.DefinitionLevelByteLen(), p.RepetitionLevelByteLen(), p.IsCompressed())
						}
					case *file.DictionaryPage:
						wantTyp, wantNV = pageDictionary, p.NumValues()
					}
					if h.typ != wantTyp || h.encoding != wantEnc && wantTyp != pageDictionary || (wantTyp != pageDictionary && h.numValues != wantNV) || h.numNulls != wantNulls {
						t.Fatalf("page at %d: parsed %+v, arrow says type %d encoding %d values %d nulls %d", off, h, wantTyp, wantEnc, wantNV, wantNulls)
					}
					off += int64(hl) + int64(h.compressedSize)
					pages++
				}
				if err := pr.Err(); err != nil {
					t.Fatal(err)
				}
				if off != end {
					t.Fatalf("pages end at %d, the chunk at %d", off, end)
				}
			}
		}
		if pages < 20 {
			t.Fatalf("only %d pages; the test wants many", pages)
		}
	}
}

// pageHeaderSeeds returns the raw header bytes of the first pages of a small file.
func pageHeaderSeeds(t testing.TB) [][]byte {
	all := makeSamples(5, 30, 30, "f")
	rec := encodedRecord(all, len(all[0].latent))
	defer rec.Release()
	var out [][]byte
	for _, v := range []parquet.DataPageVersion{parquet.DataPageV1, parquet.DataPageV2} {
		pf := latentFile(t, rec, 0, parquet.NewWriterProperties(parquet.WithDataPageVersion(v), parquet.WithStats(true), parquet.WithDictionaryDefault(true)))
		md := pf.Reader.MetaData()
		for leaf := range md.Schema.NumColumns() {
			cc, err := md.RowGroup(0).ColumnChunk(leaf)
			if err != nil {
				t.Fatal(err)
			}
			off := cc.DataPageOffset()
			if cc.HasDictionaryPage() {
				off = cc.DictionaryPageOffset()
			}
			b := make([]byte, min(256, cc.TotalCompressedSize()))
			if _, err := pf.OS.ReadAt(b, off); err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

func TestParsePageHeaderTruncated(t *testing.T) {
	for _, b := range pageHeaderSeeds(t) {
		_, n, err := parsePageHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		for k := range n {
			if _, _, err := parsePageHeader(b[:k]); !errors.Is(err, errShortHeader) {
				t.Fatalf("header of %d bytes cut to %d: err = %v, want errShortHeader", n, k, err)
			}
		}
	}
}

// FuzzParsePageHeader checks that hostile headers give an error or a consistent header,
// never a panic or a length past the input.
func FuzzParsePageHeader(f *testing.F) {
	for _, b := range pageHeaderSeeds(f) {
		f.Add(b)
	}
	f.Add([]byte{0x15, 0x00, 0x15, 0x02, 0x15, 0x02, 0x00})
	f.Add([]byte{0x19, 0xfc, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := parsePageHeader(b)
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("header length %d of %d bytes", n, len(b))
		}
		h2, n2, err := parsePageHeader(b[:n])
		if err != nil || n2 != n || h2 != h {
			t.Fatalf("reparsing the %d header bytes: %+v %d %v, first %+v", n, h2, n2, err, h)
		}
		if h.compressedSize < 0 || h.uncompressedSize < 0 || h.numValues < 0 {
			t.Fatalf("negative size accepted: %+v", h)
		}
	})
}

// TestLatentPagesSkipsPages checks that a read of rows in the last page of a chunk reads
// no other page: every earlier page body is corrupted on disk, and the read still returns
// the right values.
func TestLatentPagesSkipsPages(t *testing.T) {
	all := makeSamples(9, 120, 3, "s")
	size := len(all[0].latent)
	rec := encodedRecord(all, size)
	defer rec.Release()
	pf := latentFile(t, rec, 0, parquet.NewWriterProperties(parquet.WithDictionaryDefault(false), parquet.WithDataPageSize(128), parquet.WithBatchSize(64)))
	leaf, err := pf.Leaves("image_latent")
	if err != nil {
		t.Fatal(err)
	}
	cc, err := pf.Reader.MetaData().RowGroup(0).ColumnChunk(leaf[0])
	if err != nil {
		t.Fatal(err)
	}
	// Find the pages, then overwrite every body but the last with garbage.
	var lp latentPages
	type span struct{ body, len int64 }
	var pages []span
	for off, end := cc.DataPageOffset(), cc.DataPageOffset()+cc.TotalCompressedSize(); off < end; {
		h, hl, err := lp.header(pf.OS, off, end)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, span{off + int64(hl), int64(h.compressedSize)})
		off += int64(hl) + int64(h.compressedSize)
	}
	if len(pages) < 4 {
		t.Fatalf("%d pages; the test wants several", len(pages))
	}
	w, err := os.OpenFile(pf.Path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pages[:len(pages)-1] {
		if _, err := w.WriteAt(bytes.Repeat([]byte{0xA5}, int(p.len)), p.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c := loadCol{name: "image_latent", kind: kindLatent, size: size, f16: true}
	rows := []int64{119}
	dst := make([]byte, size*2)
	ok, err := lp.read(pf, 0, leaf[0], c, 120, rows, dst)
	if err != nil || !ok {
		t.Fatalf("read = %v, %v", ok, err)
	}
	var want []byte
	for _, v := range all[119].latent {
		want = binary.LittleEndian.AppendUint16(want, v.Uint16())
	}
	if !bytes.Equal(dst, want) {
		t.Fatal("last row differs from the values written")
	}
	// A row in a corrupted page is read and refused (the page is no longer PLAIN values
	// behind valid levels), or gives an error; never the old values silently.
	lp = latentPages{}
	ok, err = lp.read(pf, 0, leaf[0], c, 120, []int64{0}, dst)
	if ok && err == nil {
		var want0 []byte
		for _, v := range all[0].latent {
			want0 = binary.LittleEndian.AppendUint16(want0, v.Uint16())
		}
		if bytes.Equal(dst, want0) {
			t.Fatal("row 0 read from a corrupted page")
		}
	}
}

// TestBuildWritesLatentsUncompressed checks the shard writer's codecs: latent columns
// uncompressed (so the loader copies their pages without decompressing), the others zstd.
func TestBuildWritesLatentsUncompressed(t *testing.T) {
	all := makeSamples(3, 60, 10, "u")
	tmp := t.TempDir()
	writeParts(t, filepath.Join(tmp, "in"), all, 2, identity(len(all)))
	m := build(t, []string{filepath.Join(tmp, "in")}, filepath.Join(tmp, "out"), nil)
	for _, s := range m.Shards {
		pf, err := openParquet(filepath.Join(tmp, "out", filepath.FromSlash(s.Path)), 0)
		if err != nil {
			t.Fatal(err)
		}
		md := pf.Reader.MetaData()
		for rg := range md.NumRowGroups() {
			for leaf := range md.Schema.NumColumns() {
				cc, err := md.RowGroup(rg).ColumnChunk(leaf)
				if err != nil {
					t.Fatal(err)
				}
				want := compress.Codecs.Zstd
				if cc.PathInSchema()[0] == "image_latent" {
					want = compress.Codecs.Uncompressed
				}
				if cc.Compression() != want {
					t.Errorf("%s row group %d column %s: codec %s, want %s", s.Path, rg, cc.PathInSchema(), cc.Compression(), want)
				}
			}
		}
		pf.Close()
	}
}

// TestLatentPagesCorruptHeader overwrites the first page header of a latent chunk with
// garbage and with a header claiming a huge page: the read must fail with an error, not
// panic or allocate the claimed size.
func TestLatentPagesCorruptHeader(t *testing.T) {
	all := makeSamples(2, 40, 3, "c")
	size := len(all[0].latent)
	rec := encodedRecord(all, size)
	defer rec.Release()
	c := loadCol{name: "image_latent", kind: kindLatent, size: size, f16: true}
	for _, tc := range []struct {
		name string
		hdr  []byte
	}{
		{"garbage", bytes.Repeat([]byte{0xFF}, 16)},
		// type DATA_PAGE, uncompressed 2^30, compressed 2^30, then a stop byte.
		{"huge page", []byte{0x15, 0x00, 0x15, 0x80, 0x80, 0x80, 0x80, 0x08, 0x15, 0x80, 0x80, 0x80, 0x80, 0x08, 0x00}},
	} {
		pf := latentFile(t, rec, 0, parquet.NewWriterProperties(parquet.WithDictionaryDefault(false)))
		leaf, err := pf.Leaves("image_latent")
		if err != nil {
			t.Fatal(err)
		}
		cc, err := pf.Reader.MetaData().RowGroup(0).ColumnChunk(leaf[0])
		if err != nil {
			t.Fatal(err)
		}
		w, err := os.OpenFile(pf.Path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteAt(tc.hdr, cc.DataPageOffset()); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		var lp latentPages
		dst := make([]byte, 2*size*2)
		if ok, err := lp.read(pf, 0, leaf[0], c, 40, []int64{0, 39}, dst); err == nil {
			t.Errorf("%s: read = %v, nil; want an error", tc.name, ok)
		}
	}
}
