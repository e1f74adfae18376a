package pqsafe

import (
	"bytes"
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/compress"
)

// TestBoundedCodecs: the zstd and snappy codecs registered by this package decode a page
// that fits its destination like arrow-go's own, and refuse one whose frame or block
// declares more bytes than the destination holds, with ErrPageTooLarge, instead of
// allocating what the damaged header says.
func TestBoundedCodecs(t *testing.T) {
	page := bytes.Repeat([]byte("immkit page "), 1<<16) // 768 KiB
	for _, name := range []compress.Compression{compress.Codecs.Zstd, compress.Codecs.Snappy} {
		c, err := compress.GetCodec(name)
		if err != nil {
			t.Fatal(err)
		}
		d, ok := c.(interface {
			DecodeWithError(dst, src []byte) ([]byte, error)
		})
		if !ok {
			t.Fatalf("%s: the registered codec has no DecodeWithError", name)
		}
		enc := c.Encode(nil, page)
		got, err := d.DecodeWithError(make([]byte, len(page)), enc)
		if err != nil || !bytes.Equal(got, page) {
			t.Fatalf("%s: round trip: %d bytes, %v", name, len(got), err)
		}
		if _, err := d.DecodeWithError(make([]byte, 1000), enc); !errors.Is(err, ErrPageTooLarge) {
			t.Errorf("%s: a 768 KiB page into a 1000-byte destination: %v, want ErrPageTooLarge", name, err)
		}
	}
}
