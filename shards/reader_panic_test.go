package shards

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestBuildDamagedPart damages a valid part byte by byte (every seventh byte, to 0xff and 0x00): Build must
// return (an error or a dataset), never crash, whatever arrow-go's reader does with the
// bytes (some make it panic; pqsafe.Recover turns that into ErrReaderPanic).
func TestBuildDamagedPart(t *testing.T) {
	tmp := t.TempDir()
	in := filepath.Join(tmp, "in")
	writeParts(t, in, makeSamples(3, 40, 8, "d"), 1, identity(40))
	part := filepath.Join(in, "parts", "part-0-00000.parquet")
	orig, err := os.ReadFile(part)
	if err != nil {
		t.Fatal(err)
	}
	panics := 0
	for i := 4; i < len(orig)-8; i += 7 {
		for _, v := range []byte{0xff, 0x00} {
			b := append([]byte(nil), orig...)
			if b[i] == v {
				continue
			}
			b[i] = v
			if err := os.WriteFile(part, b, 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(tmp, "out")
			os.RemoveAll(out)
			_, err := Build(context.Background(), BuildOptions{Inputs: []string{in}, Out: out, ShardSize: 8 << 10, RowGroupBytes: 1 << 10, Workers: 1})
			if errors.Is(err, ErrReaderPanic) {
				panics++
			}
		}
	}
	t.Logf("%d of the damaged parts made the Parquet reader panic; each became an error", panics)
}
