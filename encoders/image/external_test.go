package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/immkit/immkit/internal/safetensors"
	"github.com/immkit/immkit/internal/testenv"
)

// val is the value at flat index i of every test array: exact in float16.
func val(i int) float32 { return float32(i%64)*0.25 - 3 }

func checkLatents(t *testing.T, ls []Latent, n int, e External) {
	t.Helper()
	if len(ls) != n {
		t.Fatalf("%d latents, want %d", len(ls), n)
	}
	per := e.C * e.H * e.W
	for k, l := range ls {
		if l.C != e.C || l.H != e.H || l.W != e.W {
			t.Fatalf("latent %d shape %s", k, l.Shape())
		}
		for i, v := range l.Data {
			if v != val(k*per+i) {
				t.Fatalf("latent %d value %d = %g, want %g", k, i, v, val(k*per+i))
			}
		}
	}
}

// npyV1 writes an .npy version 1.0 file by hand.
func npyV1(descr string, shape string, data []byte) []byte {
	h := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
	b = append(b, h...)
	return append(b, data...)
}

func TestNPYHandMade(t *testing.T) {
	e := External{C: 4, H: 2, W: 3}
	var data []byte
	for i := range 2 * 24 {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(val(i)))
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{
		"nchw.npy": npyV1("<f4", "(2, 4, 2, 3)", data),
		"flat.npy": npyV1("<f4", "(2, 24)", data),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		ls, err := e.FromNPY(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkLatents(t, ls, 2, e)
	}
	bad := map[string][]byte{
		"shape":   npyV1("<f4", "(2, 4, 3, 2)", data),
		"fortran": bytes.Replace(npyV1("<f4", "(2, 24)", data), []byte("False"), []byte("True "), 1),
		"short":   npyV1("<f4", "(3, 24)", data),
		"dtype":   npyV1("<i4", "(2, 24)", data),
		"magic":   append([]byte("XNUMPY"), npyV1("<f4", "(2, 24)", data)[6:]...),
	}
	for name, b := range bad {
		p := filepath.Join(dir, name+".npy")
		_ = os.WriteFile(p, b, 0o644)
		if _, err := e.FromNPY(p); !errors.Is(err, ErrExternal) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// TestNPYFromNumpy reads arrays written by NumPy in the same run: float32, float16,
// big-endian float64, and a (C, H, W) single latent.
func TestNPYFromNumpy(t *testing.T) {
	py := testenv.LookPath(t, "/usr/bin/python3", "scripts/deps.d/image.sh (apt-get install python3-numpy)")
	dir := t.TempDir()
	script := `
import numpy as np, sys
d = sys.argv[1]
v = (np.arange(3*4*2*3) % 64) * 0.25 - 3
np.save(d + "/f4.npy", v.astype("<f4").reshape(3, 4, 2, 3))
np.save(d + "/f2.npy", v.astype("<f2").reshape(3, 24))
np.save(d + "/f8be.npy", v.astype(">f8").reshape(3, 4, 2, 3))
np.save(d + "/one.npy", v[:24].astype("<f4").reshape(4, 2, 3))
`
	if out, err := exec.Command(py, "-c", script, dir).CombinedOutput(); err != nil {
		testenv.Missing(t, "numpy ("+string(out)+")", "scripts/deps.d/image.sh (apt-get install python3-numpy)")
	}
	e := External{C: 4, H: 2, W: 3}
	for name, n := range map[string]int{"f4.npy": 3, "f2.npy": 3, "f8be.npy": 3, "one.npy": 1} {
		ls, err := e.FromNPY(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkLatents(t, ls, n, e)
	}
}

func TestExternalSafetensors(t *testing.T) {
	e := External{C: 4, H: 2, W: 3}
	v := make([]float32, 5*24)
	for i := range v {
		v[i] = val(i)
	}
	p := filepath.Join(t.TempDir(), "lat.safetensors")
	if _, err := safetensors.WriteFile(p, map[string]safetensors.Tensor{"latents": safetensors.FromFloat32(v, 5, 4, 2, 3)}, nil); err != nil {
		t.Fatal(err)
	}
	ls, err := e.FromSafetensors(p, "latents")
	if err != nil {
		t.Fatal(err)
	}
	checkLatents(t, ls, 5, e)
	if _, err := e.FromSafetensors(p, "nope"); err == nil {
		t.Error("missing tensor accepted")
	}
	if _, err := (External{C: 4, H: 3, W: 2}).FromSafetensors(p, "latents"); !errors.Is(err, ErrExternal) {
		t.Errorf("wrong declared shape: %v", err)
	}
}

func TestExternalParquet(t *testing.T) {
	e := External{C: 4, H: 2, W: 3}
	const rows = 7
	mem := memory.NewGoAllocator()
	for _, elem := range []arrow.DataType{arrow.PrimitiveTypes.Float32, arrow.FixedWidthTypes.Float16} {
		sc := arrow.NewSchema([]arrow.Field{
			{Name: "key", Type: arrow.BinaryTypes.String},
			{Name: "image", Type: arrow.BinaryTypes.Binary},
			{Name: "image_latent", Type: arrow.FixedSizeListOf(24, elem)},
		}, nil)
		// Three record batches written as three row groups (pqarrow.FileWriter.Write). Note:
		// pqarrow.WriteTable with a chunk size that slices a fixed_size_list column writes the
		// first slice's values into later row groups (arrow-go v18.8.0), so we do not use it.
		p := filepath.Join(t.TempDir(), "enc.parquet")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		fw, err := pqarrow.NewFileWriter(sc, f, nil, pqarrow.DefaultWriterProps())
		if err != nil {
			t.Fatal(err)
		}
		for lo := 0; lo < rows; lo += 3 {
			b := array.NewRecordBuilder(mem, sc)
			lb := b.Field(2).(*array.FixedSizeListBuilder)
			for r := lo; r < min(lo+3, rows); r++ {
				b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("k%02d", r))
				b.Field(1).(*array.BinaryBuilder).Append([]byte("jpeg bytes"))
				lb.Append(true)
				for i := range 24 {
					switch vb := lb.ValueBuilder().(type) {
					case *array.Float32Builder:
						vb.Append(val(r*24 + i))
					case *array.Float16Builder:
						vb.Append(float16From(val(r*24 + i)))
					}
				}
			}
			rec := b.NewRecordBatch()
			if err := fw.Write(rec); err != nil {
				t.Fatal(err)
			}
			rec.Release()
			b.Release()
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
		ls, keys, err := e.FromParquet(p, "image_latent", "key")
		if err != nil {
			t.Fatalf("%s: %v", elem, err)
		}
		checkLatents(t, ls, rows, e)
		if len(keys) != rows || keys[3] != "k03" {
			t.Fatalf("keys %v", keys)
		}
		if _, _, err := (External{C: 4, H: 2, W: 2}).FromParquet(p, "image_latent", ""); !errors.Is(err, ErrExternal) {
			t.Errorf("wrong declared shape: %v", err)
		}
		if _, _, err := e.FromParquet(p, "image", ""); !errors.Is(err, ErrExternal) {
			t.Errorf("binary column accepted: %v", err)
		}
	}
}

// FuzzReadNPY: the .npy reader never panics and never returns more values than bytes allow.
func FuzzReadNPY(f *testing.F) {
	var data []byte
	for i := range 24 {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(val(i)))
	}
	f.Add(npyV1("<f4", "(4, 2, 3)", data))
	f.Add(npyV1(">f2", "(24,)", data[:48]))
	f.Add(npyV1("<f8", "(3, 1)", data))
	f.Fuzz(func(t *testing.T, b []byte) {
		shape, v, err := ReadNPY(bytes.NewReader(b))
		if err != nil {
			return
		}
		n := 1
		for _, s := range shape {
			n *= s
		}
		if n != len(v) || len(v) > len(b) {
			t.Fatalf("shape %v with %d values from %d bytes", shape, len(v), len(b))
		}
	})
}

// Latents written through LatentField/AppendLatent (float32 and float16) read back through
// FromParquet, with the field metadata of the design.
func TestLatentFieldRoundTrip(t *testing.T) {
	imgs := []*image.NRGBA{photo(8, 6, 1), photo(8, 6, 2), photo(8, 6, 3)}
	for _, half := range []bool{false, true} {
		f := LatentField("image_latent", 3, 6, 8, "pixels@1", half)
		if f.Metadata.Values()[f.Metadata.FindKey("shape")] != "3,6,8" || f.Metadata.Values()[f.Metadata.FindKey("encoder")] != "pixels@1" {
			t.Fatalf("metadata %v", f.Metadata)
		}
		sc := arrow.NewSchema([]arrow.Field{{Name: "key", Type: arrow.BinaryTypes.String}, f}, nil)
		b := array.NewRecordBuilder(memory.NewGoAllocator(), sc)
		var want []Latent
		for i, img := range imgs {
			b.Field(0).(*array.StringBuilder).Append(fmt.Sprint(i))
			l := Pixels{}.Encode(img)
			if err := AppendLatent(b.Field(1).(*array.FixedSizeListBuilder), l); err != nil {
				t.Fatal(err)
			}
			want = append(want, l)
		}
		if err := AppendLatent(b.Field(1).(*array.FixedSizeListBuilder), NewLatent(3, 6, 7)); err == nil {
			t.Error("latent of the wrong size appended")
		}
		rec := b.NewRecordBatch()
		p := filepath.Join(t.TempDir(), "lat.parquet")
		out, _ := os.Create(p)
		fw, err := pqarrow.NewFileWriter(sc, out, nil, pqarrow.DefaultWriterProps())
		if err != nil {
			t.Fatal(err)
		}
		if err := fw.Write(rec); err != nil {
			t.Fatal(err)
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
		got, keys, err := External{C: 3, H: 6, W: 8}.FromParquet(p, "image_latent", "key")
		if err != nil || len(got) != 3 || keys[2] != "2" {
			t.Fatal(err, len(got), keys)
		}
		tol := 0.0
		if half {
			tol = 1.0 / 1024 // float16 spacing near 1 is 2^-10
		}
		for i := range got {
			for j, v := range got[i].Data {
				if d := math.Abs(float64(v - want[i].Data[j])); d > tol {
					t.Fatalf("half=%v latent %d value %d: %g vs %g", half, i, j, v, want[i].Data[j])
				}
			}
		}
		rec.Release()
		b.Release()
	}
}
