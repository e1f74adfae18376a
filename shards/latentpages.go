package shards

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"unsafe"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
)

// Parquet encodings (parquet.thrift Encoding) the page reader accepts.
const (
	encPlain = 0
	encRLE   = 3
)

// maxPageBytes bounds the uncompressed size of a page the reader accepts, so a hostile
// header cannot make it allocate gigabytes (arrow-go's writer cuts pages at 1 MiB).
const maxPageBytes = 256 << 20

// littleEndian reports whether the host stores integers little-endian, as Parquet PLAIN
// values are; the page reader copies value bytes unchanged, so it is used only then.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// latentPages reads selected rows of a latent column chunk (fixed_size_list<float16|
// float32> of size elements, Parquet FIXED_LEN_BYTE_ARRAY(2) or FLOAT) straight from the
// file, below arrow-go's page reader: page headers are parsed here (latentpagehdr.go),
// page bodies read with one ReadAt into a reused buffer, decompressed with the chunk's
// codec into another, and only the values of the requested rows copied out. Pages that
// hold none of the requested rows are neither read nor decompressed. The last page
// decoded is kept, so a page read for the end of one shuffle block is not read again for
// the start of the next.
//
// It handles what immkit writes and what most writers write for such columns: PLAIN data
// pages (v1 or v2) without nulls, any codec arrow-go has, no dictionary, no encryption.
// For anything else read returns false and the caller decodes the chunk through the
// typed column reader (readLatentChunk).
type latentPages struct {
	hdr  []byte // page header window
	body []byte // page body as stored
	page []byte // decompressed page body

	// The last page decoded: its file, offset and values (aliasing body or page).
	cacheFile *os.File
	cacheOff  int64
	cacheVals []byte
}

// elemBytes returns the byte width of a latent column's values in Parquet, and whether the
// page reader can copy them as they are (PLAIN float16 as FIXED_LEN_BYTE_ARRAY(2), or
// PLAIN FLOAT).
func latentElemBytes(pf *parquetFile, leaf int, c loadCol) (int, bool) {
	d := pf.Reader.MetaData().Schema.Column(leaf)
	switch {
	case c.f16 && d.PhysicalType() == parquet.Types.FixedLenByteArray && d.TypeLength() == 2:
		return 2, true
	case !c.f16 && d.PhysicalType() == parquet.Types.Float:
		return 4, true
	}
	return 0, false
}

// read copies rows rows (ascending, relative to row group rg, which has rgRows rows) of
// leaf column leaf into dst: row rows[k] to dst[k*size*eb : (k+1)*size*eb], where eb is
// the value width, as the little-endian value bytes. It returns false without an error
// when the chunk needs the general reader; dst may then hold partial data.
func (lp *latentPages) read(pf *parquetFile, rg, leaf int, c loadCol, rgRows int64, rows []int64, dst []byte) (bool, error) {
	eb, ok := latentElemBytes(pf, leaf, c)
	if !ok || !littleEndian {
		return false, nil
	}
	if len(dst) != len(rows)*c.size*eb {
		return false, fmt.Errorf("latent destination of %d bytes for %d rows of %d x %d bytes", len(dst), len(rows), c.size, eb)
	}
	cc, err := pf.Reader.MetaData().RowGroup(rg).ColumnChunk(leaf)
	if err != nil {
		return false, err
	}
	size := int64(c.size)
	// Every row a full list of size values: then value v of the chunk belongs to row
	// v/size, and pages can be skipped without reading their levels. (A null row would
	// count one level entry, not size.)
	if cc.CryptoMetadata() != nil || cc.HasDictionaryPage() || cc.NumValues() != rgRows*size {
		return false, nil
	}
	var codec compress.Codec
	if cc.Compression() != compress.Codecs.Uncompressed {
		if codec, err = compress.GetCodec(cc.Compression()); err != nil {
			return false, nil
		}
	}
	descr := pf.Reader.MetaData().Schema.Column(leaf)
	maxDef, maxRep := descr.MaxDefinitionLevel(), descr.MaxRepetitionLevel()
	off := cc.DataPageOffset()
	end := off + cc.TotalCompressedSize()
	st, err := pf.OS.Stat()
	if err != nil {
		return false, err
	}
	if off < 4 || cc.TotalCompressedSize() < 0 || end > st.Size() {
		return false, fmt.Errorf("column chunk at offset %d of %d bytes in a file of %d", off, cc.TotalCompressedSize(), st.Size())
	}
	var v0 int64 // value index of the current page's first value
	ri := 0      // first requested row not yet complete
	for ri < len(rows) {
		if off >= end {
			return false, fmt.Errorf("column chunk ends at value %d, before row %d", v0, rows[ri])
		}
		h, hl, err := lp.header(pf.OS, off, end)
		if err != nil {
			return false, err
		}
		body := off + int64(hl)
		next := body + int64(h.compressedSize)
		if next > end {
			return false, fmt.Errorf("page at offset %d overruns its column chunk", off)
		}
		if h.uncompressedSize > maxPageBytes {
			return false, fmt.Errorf("page at offset %d claims %d uncompressed bytes", off, h.uncompressedSize)
		}
		switch h.typ {
		case pageData, pageDataV2:
		case pageDictionary:
			return false, nil
		default: // index pages and unknown page types are skipped, as the format allows
			off = next
			continue
		}
		nv := int64(h.numValues)
		if rows[ri]*size >= v0+nv { // no requested row in this page
			v0, off = v0+nv, next
			continue
		}
		vals, ok, err := lp.values(pf.OS, off, body, h, codec, maxDef, maxRep, eb)
		if err != nil || !ok {
			return false, err
		}
		if int64(len(vals)) < nv*int64(eb) {
			return false, fmt.Errorf("page at offset %d holds %d value bytes for %d values", off, len(vals), nv)
		}
		for k := ri; k < len(rows) && rows[k]*size < v0+nv; k++ {
			lo, hi := max(v0, rows[k]*size), min(v0+nv, (rows[k]+1)*size)
			d := (int64(k)*size + lo - rows[k]*size) * int64(eb)
			copy(dst[d:d+(hi-lo)*int64(eb)], vals[(lo-v0)*int64(eb):(hi-v0)*int64(eb)])
		}
		for ri < len(rows) && (rows[ri]+1)*size <= v0+nv {
			ri++
		}
		v0, off = v0+nv, next
	}
	return true, nil
}

// header reads and parses the page header at off; the chunk ends at end.
func (lp *latentPages) header(f *os.File, off, end int64) (pageHeader, int, error) {
	for w := int64(256); ; w *= 8 {
		w = min(w, end-off)
		lp.hdr = resize(lp.hdr, int(w))
		if _, err := f.ReadAt(lp.hdr, off); err != nil {
			return pageHeader{}, 0, fmt.Errorf("read page header at offset %d: %w", off, err)
		}
		h, n, err := parsePageHeader(lp.hdr)
		if errors.Is(err, errShortHeader) && w < end-off && w < 1<<20 {
			continue
		}
		if err != nil {
			return pageHeader{}, 0, fmt.Errorf("page header at offset %d: %w", off, err)
		}
		return h, n, nil
	}
}

// values returns the value bytes of the data page whose header h is at off and body at
// body, or false when the page is not PLAIN without nulls.
func (lp *latentPages) values(f *os.File, off, body int64, h pageHeader, codec compress.Codec, maxDef, maxRep int16, eb int) ([]byte, bool, error) {
	if lp.cacheFile == f && lp.cacheOff == off {
		return lp.cacheVals, true, nil
	}
	lp.cacheFile = nil
	if h.encoding != encPlain || (h.typ == pageDataV2 && h.numNulls != 0) {
		return nil, false, nil
	}
	lp.body = resize(lp.body, int(h.compressedSize))
	if _, err := f.ReadAt(lp.body, body); err != nil {
		return nil, false, fmt.Errorf("read page at offset %d: %w", off, err)
	}
	var vals []byte
	if h.typ == pageDataV2 {
		lv := int(h.defLen) + int(h.repLen)
		if lv > len(lp.body) || lv > int(h.uncompressedSize) {
			return nil, false, fmt.Errorf("page at offset %d: levels of %d bytes in a body of %d", off, lv, len(lp.body))
		}
		vals = lp.body[lv:]
		if h.isCompressed && codec != nil {
			var err error
			if vals, err = lp.decompress(codec, vals, int(h.uncompressedSize)-lv); err != nil {
				return nil, false, fmt.Errorf("page at offset %d: %w", off, err)
			}
		}
	} else {
		data := lp.body
		if codec != nil {
			var err error
			if data, err = lp.decompress(codec, data, int(h.uncompressedSize)); err != nil {
				return nil, false, fmt.Errorf("page at offset %d: %w", off, err)
			}
		}
		n := int(h.numValues)
		p := 0
		if maxRep > 0 { // repetition levels: a 4-byte length, then RLE (not needed here)
			if h.repEncoding != encRLE || len(data) < 4 {
				return nil, false, nil
			}
			p += 4 + int(binary.LittleEndian.Uint32(data))
		}
		if maxDef > 0 { // definition levels must all be maxDef: no nulls
			if h.defEncoding != encRLE || p < 0 || len(data) < p+4 {
				return nil, false, nil
			}
			l := int(binary.LittleEndian.Uint32(data[p:]))
			if l < 0 || len(data) < p+4+l || !levelsAllEqual(data[p+4:p+4+l], bits.Len16(uint16(maxDef)), n, maxDef) {
				return nil, false, nil
			}
			p += 4 + l
		}
		if p < 0 || p > len(data) {
			return nil, false, nil
		}
		vals = data[p:]
	}
	lp.cacheFile, lp.cacheOff, lp.cacheVals = f, off, vals
	return vals, true, nil
}

// decompress decodes src, which must give exactly n bytes, into lp.page.
func (lp *latentPages) decompress(codec compress.Codec, src []byte, n int) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("page of %d uncompressed bytes", n)
	}
	lp.page = resize(lp.page, n)
	// Every arrow-go codec decodes into a dst of the uncompressed length (zstd appends to
	// dst[:0], gzip and brotli fill dst, snappy and lz4 use it when large enough).
	out, err := compress.Decode(codec, lp.page, src)
	if err != nil {
		return nil, err
	}
	if len(out) != n {
		return nil, fmt.Errorf("page decompresses to %d bytes, header says %d", len(out), n)
	}
	if cap(out) > cap(lp.page) {
		lp.page = out
	}
	return out, nil
}

// levelsAllEqual reports whether the first n levels of an RLE/bit-packed hybrid run
// (Parquet's level encoding, bit width bw) all equal want.
func levelsAllEqual(buf []byte, bw, n int, want int16) bool {
	nb := (bw + 7) / 8
	for count := 0; count < n; {
		h, k := binary.Uvarint(buf)
		if k <= 0 {
			return false
		}
		buf = buf[k:]
		if h&1 == 0 { // RLE run: count, then the value in nb bytes
			run := int(h >> 1)
			if run <= 0 || len(buf) < nb {
				return false
			}
			var v uint32
			for i := 0; i < nb; i++ {
				v |= uint32(buf[i]) << (8 * i)
			}
			if v != uint32(want) {
				return false
			}
			buf = buf[nb:]
			count += run
			continue
		}
		groups := int(h >> 1) // bit-packed: groups of 8 values, LSB first
		if groups <= 0 || groups > len(buf) {
			return false
		}
		size := groups * bw
		if len(buf) < size {
			return false
		}
		for i := 0; i < groups*8 && count+i < n; i++ {
			var v uint32
			for b := 0; b < bw; b++ {
				bit := i*bw + b
				v |= uint32(buf[bit/8]>>(bit%8)&1) << b
			}
			if v != uint32(want) {
				return false
			}
		}
		buf = buf[size:]
		count += groups * 8
	}
	return true
}
