package pqsafe

import (
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
)

// ErrPageTooLarge is wrapped by the error of a compressed page that decodes (or declares
// that it decodes) to more bytes than its page header says.
var ErrPageTooLarge = errors.New("compressed page larger than its header declares")

// arrow-go decompresses a page into a buffer of the uncompressed size its header declares
// (at most parquet.DefaultMaxUncompressedPageSize, 256 MiB) and fails when the result has
// another size. But its zstd codec decodes with klauspost's defaults, which grow the
// output to whatever the frame header declares, up to 64 GiB, and its snappy codec
// allocates whatever the block header declares, up to 4 GiB: one damaged byte in a frame
// header stalls the reader for seconds and can exhaust memory (found by TestScanDamaged).
// The codecs registered here bound the output by the destination buffer instead and
// leave encoding to arrow-go's codecs, byte for byte. They replace arrow-go's zstd and
// snappy codecs in every program that links this package (compress.RegisterCodec is
// process-wide and meant for init).
func init() {
	z, err := compress.GetCodec(compress.Codecs.Zstd)
	if err != nil {
		panic(err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecodeAllCapLimit(true), zstd.WithDecoderConcurrency(0))
	if err != nil {
		panic(err)
	}
	compress.RegisterCodec(compress.Codecs.Zstd, bounded{Codec: z, decode: func(dst, src []byte) ([]byte, error) {
		out, err := dec.DecodeAll(src, dst[:0:len(dst)])
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return nil, fmt.Errorf("zstd: %w (%d bytes)", ErrPageTooLarge, len(dst))
		}
		return out, err
	}})
	s, err := compress.GetCodec(compress.Codecs.Snappy)
	if err != nil {
		panic(err)
	}
	compress.RegisterCodec(compress.Codecs.Snappy, bounded{Codec: s, decode: func(dst, src []byte) ([]byte, error) {
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return nil, err
		}
		if n > len(dst) {
			return nil, fmt.Errorf("snappy: %w: block declares %d bytes, the page %d", ErrPageTooLarge, n, len(dst))
		}
		return snappy.Decode(dst, src)
	}})
}

// bounded is an arrow-go codec whose decoding writes at most len(dst) bytes; encoding is
// the wrapped codec's.
type bounded struct {
	compress.Codec
	decode func(dst, src []byte) ([]byte, error)
}

func (c bounded) Decode(dst, src []byte) []byte {
	out, err := c.decode(dst, src)
	if err != nil {
		panic(err) // the contract of compress.Codec.Decode; arrow-go calls DecodeWithError
	}
	return out
}

func (c bounded) DecodeWithError(dst, src []byte) ([]byte, error) { return c.decode(dst, src) }
