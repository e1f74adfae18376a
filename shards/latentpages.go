package shards

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
)

// readF16Pages is the fast path of readLatentChunk for float16 latents: it walks the
// column chunk's data pages and, when every page is PLAIN-encoded and holds no nulls
// (checked from the definition levels, or num_nulls of v2 pages), copies the 2-byte values
// straight from the decompressed page into dst, which must hold rows*size values. It
// returns false, having written nothing it vouches for, when a page does not qualify
// (dictionary pages, other encodings, nulls, deprecated BIT_PACKED levels); the caller
// then decodes through the column reader.
func readF16Pages(pf *parquetFile, rg, leaf int, dst []uint16) (bool, error) {
	rgr := pf.pr.RowGroup(rg)
	descr := pf.pr.MetaData().Schema.Column(leaf)
	maxDef, maxRep := descr.MaxDefinitionLevel(), descr.MaxRepetitionLevel()
	pr, err := rgr.GetColumnPageReader(leaf)
	if err != nil {
		return false, err
	}
	got := 0
	for pr.Next() {
		var vals []byte
		var n int
		switch p := pr.Page().(type) {
		case *file.DataPageV1:
			if parquet.Encoding(p.Encoding()) != parquet.Encodings.Plain {
				return false, nil
			}
			data := p.Data()
			n = int(p.NumValues())
			off := 0
			if maxRep > 0 {
				if p.RepetitionLevelEncoding() != parquet.Encodings.RLE || len(data) < 4 {
					return false, nil
				}
				off += 4 + int(binary.LittleEndian.Uint32(data))
			}
			if maxDef > 0 {
				if p.DefinitionLevelEncoding() != parquet.Encodings.RLE || len(data) < off+4 {
					return false, nil
				}
				l := int(binary.LittleEndian.Uint32(data[off:]))
				if len(data) < off+4+l || !levelsAllEqual(data[off+4:off+4+l], bits.Len16(uint16(maxDef)), n, maxDef) {
					return false, nil
				}
				off += 4 + l
			}
			if off > len(data) {
				return false, nil
			}
			vals = data[off:]
		case *file.DataPageV2:
			if parquet.Encoding(p.Encoding()) != parquet.Encodings.Plain || p.NumNulls() != 0 {
				return false, nil
			}
			data := p.Data()
			off := int(p.RepetitionLevelByteLen() + p.DefinitionLevelByteLen())
			if off > len(data) {
				return false, nil
			}
			n, vals = int(p.NumValues()), data[off:]
		default:
			return false, nil
		}
		if len(vals) < 2*n {
			return false, fmt.Errorf("page holds %d bytes for %d float16 values", len(vals), n)
		}
		if got+n > len(dst) {
			return false, fmt.Errorf("more than %d values in the column chunk", len(dst))
		}
		for i := range n {
			dst[got+i] = binary.LittleEndian.Uint16(vals[2*i:])
		}
		got += n
	}
	if err := pr.Err(); err != nil {
		return false, err
	}
	if got != len(dst) {
		return false, fmt.Errorf("column chunk holds %d values, want %d", got, len(dst))
	}
	return true, nil
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
			if run == 0 || len(buf) < nb {
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
		size := groups * bw
		if groups == 0 || len(buf) < size {
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
