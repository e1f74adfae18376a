package shards

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Parquet page types (parquet.thrift PageType).
const (
	pageData       = 0
	pageIndex      = 1
	pageDictionary = 2
	pageDataV2     = 3
)

// pageHeader is the part of a Parquet PageHeader (parquet.thrift) that the latent page
// reader needs. Fields of other page types, statistics and CRCs are skipped.
type pageHeader struct {
	typ              int32 // pageData, pageIndex, pageDictionary or pageDataV2
	uncompressedSize int32 // body bytes after decompression (levels included)
	compressedSize   int32 // body bytes as stored
	numValues        int32 // data pages: level entries, nulls included
	encoding         int32 // data pages: encoding of the values (0 PLAIN)
	defEncoding      int32 // v1: definition level encoding (3 RLE)
	repEncoding      int32 // v1: repetition level encoding
	numNulls         int32 // v2
	numRows          int32 // v2
	defLen, repLen   int32 // v2: byte lengths of the (never compressed) level sections
	isCompressed     bool  // v2: whether the values section is compressed (default true)
	hasData          bool  // the data_page_header (v1) or data_page_header_v2 field was present
}

// errShortHeader means the buffer ended inside the page header: read more and retry.
var errShortHeader = errors.New("shards: page header truncated")

// Thrift compact protocol type ids.
const (
	tBoolTrue  = 1
	tBoolFalse = 2
	tByte      = 3
	tI16       = 4
	tI32       = 5
	tI64       = 6
	tDouble    = 7
	tBinary    = 8
	tList      = 9
	tSet       = 10
	tMap       = 11
	tStruct    = 12
)

// compactReader decodes the Thrift compact protocol from a byte slice. The first error
// sticks; reads after it return zeros.
type compactReader struct {
	b   []byte
	pos int
	err error
}

func (r *compactReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *compactReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.pos >= len(r.b) {
		r.fail(errShortHeader)
		return 0
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

func (r *compactReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.pos:])
	switch {
	case n == 0:
		r.fail(errShortHeader)
		return 0
	case n < 0:
		r.fail(errors.New("shards: page header: varint overflows 64 bits"))
		return 0
	}
	r.pos += n
	return v
}

// i32 reads a zigzag varint that must fit in 32 bits.
func (r *compactReader) i32() int32 {
	u := r.uvarint()
	v := int64(u>>1) ^ -int64(u&1)
	if v != int64(int32(v)) {
		r.fail(fmt.Errorf("shards: page header: %d does not fit in i32", v))
		return 0
	}
	return int32(v)
}

// field reads a field header; last is the previous field id of the enclosing struct. It
// returns typ 0 at the struct's end.
func (r *compactReader) field(last int16) (id int16, typ byte) {
	c := r.byte()
	if c == 0 {
		return 0, 0
	}
	typ = c & 0x0f
	if d := c >> 4; d != 0 {
		return last + int16(d), typ
	}
	v := r.i32()
	if v != int32(int16(v)) {
		r.fail(fmt.Errorf("shards: page header: field id %d out of range", v))
	}
	return int16(v), typ
}

// skip skips a value of type typ; depth bounds the nesting of hostile input.
func (r *compactReader) skip(typ byte, depth int) {
	if depth > 32 {
		r.fail(errors.New("shards: page header nested too deeply"))
		return
	}
	switch typ {
	case tBoolTrue, tBoolFalse:
	case tByte:
		r.byte()
	case tI16, tI32, tI64:
		r.uvarint()
	case tDouble:
		r.bytes(8)
	case tBinary:
		r.bytes(r.length())
	case tList, tSet:
		c := r.byte()
		n, et := int(c>>4), c&0x0f
		if n == 15 {
			n = r.length()
		}
		for i := 0; i < n && r.err == nil; i++ {
			r.elem(et, depth+1)
		}
	case tMap:
		n := r.length()
		if n == 0 {
			return
		}
		kv := r.byte()
		for i := 0; i < n && r.err == nil; i++ {
			r.elem(kv>>4, depth+1)
			r.elem(kv&0x0f, depth+1)
		}
	case tStruct:
		var last int16
		for r.err == nil {
			id, t := r.field(last)
			if t == 0 {
				return
			}
			r.skip(t, depth+1)
			last = id
		}
	default:
		r.fail(fmt.Errorf("shards: page header: unknown thrift type %d", typ))
	}
}

// elem skips an element of a list, set or map. A boolean there takes one byte (in a
// struct field it is the field header's type), so every element takes at least one byte,
// which is what length relies on.
func (r *compactReader) elem(typ byte, depth int) {
	if typ == tBoolTrue || typ == tBoolFalse {
		r.byte()
		return
	}
	r.skip(typ, depth)
}

// length reads a collection or binary length, which cannot exceed the bytes left (every
// element takes at least one byte), so a hostile length cannot make a long loop.
func (r *compactReader) length() int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)-r.pos) {
		r.fail(errShortHeader)
		return 0
	}
	return int(n)
}

func (r *compactReader) bytes(n int) {
	if r.err != nil {
		return
	}
	if n > len(r.b)-r.pos {
		r.fail(errShortHeader)
		return
	}
	r.pos += n
}

// parsePageHeader decodes the Parquet page header at the start of b and returns it with
// its length in bytes. errShortHeader means b ends inside the header.
func parsePageHeader(b []byte) (pageHeader, int, error) {
	r := &compactReader{b: b}
	h := pageHeader{typ: -1, isCompressed: true}
	var seen [4]bool // type, uncompressed size, compressed size
	var last int16
	for r.err == nil {
		id, typ := r.field(last)
		if typ == 0 {
			break
		}
		last = id
		switch {
		case id >= 1 && id <= 3 && typ == tI32:
			v := r.i32()
			switch id {
			case 1:
				h.typ = v
			case 2:
				h.uncompressedSize = v
			case 3:
				h.compressedSize = v
			}
			seen[id] = true
		case id == 5 && typ == tStruct: // DataPageHeader
			h.hasData = true
			r.dataPageHeader(&h, false)
		case id == 8 && typ == tStruct: // DataPageHeaderV2
			h.hasData = true
			r.dataPageHeader(&h, true)
		default:
			r.skip(typ, 1)
		}
	}
	if r.err != nil {
		return pageHeader{}, 0, r.err
	}
	switch {
	case !seen[1] || !seen[2] || !seen[3]:
		return pageHeader{}, 0, errors.New("shards: page header lacks a required field")
	case h.uncompressedSize < 0 || h.compressedSize < 0:
		return pageHeader{}, 0, errors.New("shards: page header has a negative size")
	case (h.typ == pageData || h.typ == pageDataV2) && !h.hasData:
		return pageHeader{}, 0, fmt.Errorf("shards: data page header of type %d has no data page fields", h.typ)
	case h.numValues < 0 || h.numNulls < 0 || h.numRows < 0 || h.defLen < 0 || h.repLen < 0:
		return pageHeader{}, 0, errors.New("shards: data page header has a negative count")
	}
	return h, r.pos, nil
}

// dataPageHeader reads a DataPageHeader (v1) or DataPageHeaderV2 struct into h.
func (r *compactReader) dataPageHeader(h *pageHeader, v2 bool) {
	var last int16
	for r.err == nil {
		id, typ := r.field(last)
		if typ == 0 {
			return
		}
		last = id
		if v2 && id == 7 && (typ == tBoolTrue || typ == tBoolFalse) {
			h.isCompressed = typ == tBoolTrue
			continue
		}
		if typ != tI32 || id < 1 || (v2 && id > 6) || (!v2 && id > 4) {
			r.skip(typ, 2)
			continue
		}
		v := r.i32()
		if !v2 {
			switch id {
			case 1:
				h.numValues = v
			case 2:
				h.encoding = v
			case 3:
				h.defEncoding = v
			case 4:
				h.repEncoding = v
			}
			continue
		}
		switch id {
		case 1:
			h.numValues = v
		case 2:
			h.numNulls = v
		case 3:
			h.numRows = v
		case 4:
			h.encoding = v
		case 5:
			h.defLen = v
		case 6:
			h.repLen = v
		}
	}
}
