package audio

import (
	"bytes"
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

func TestWriteMelParquet(t *testing.T) {
	c, _ := Preset("whisper-80")
	mel, err := MelSpectrogram(sine(8000, 16000, 440, 0.5, 0), c)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteMelParquet(&buf, []string{"clip"}, []*Mel{mel}); err != nil {
		t.Fatal(err)
	}
	tbl, err := pqarrow.ReadTable(context.Background(), bytes.NewReader(buf.Bytes()), nil, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	if tbl.NumRows() != 1 || tbl.NumCols() != 2 {
		t.Fatalf("%d rows %d cols", tbl.NumRows(), tbl.NumCols())
	}
	f := tbl.Schema().Field(1)
	if v, _ := f.Metadata.GetValue("n_mels"); v != "80" {
		t.Errorf("n_mels metadata %q", v)
	}
	if v, _ := f.Metadata.GetValue("hop"); v != "160" {
		t.Errorf("hop metadata %q", v)
	}
	if k := tbl.Column(0).Data().Chunk(0).(*array.String).Value(0); k != "clip" {
		t.Errorf("key %q", k)
	}
	list := tbl.Column(1).Data().Chunk(0).(*array.List)
	vals := list.ListValues().(*array.Float32).Float32Values()
	if len(vals) != mel.NMels*mel.Frames {
		t.Fatalf("%d values", len(vals))
	}
	// frame-major: frame f, channel m at f*NMels+m
	for _, fm := range [][2]int{{0, 0}, {3, 17}, {mel.Frames - 1, 79}} {
		if got, want := vals[fm[0]*80+fm[1]], mel.Data[fm[1]*mel.Frames+fm[0]]; got != want {
			t.Errorf("frame %d mel %d: %v want %v", fm[0], fm[1], got, want)
		}
	}
	if err := WriteMelParquet(&buf, []string{"a", "b"}, []*Mel{mel}); err == nil {
		t.Error("mismatched keys accepted")
	}
}
