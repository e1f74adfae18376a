package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

// handMade is a file written byte by byte from the format description, independently of
// Encode: header {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}}.
func handMade() []byte {
	hdr := `{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, uint64(len(hdr)))
	b.WriteString(hdr)
	_ = binary.Write(&b, binary.LittleEndian, []float32{1.5, -2})
	return b.Bytes()
}

func TestDecodeHandMade(t *testing.T) {
	f, err := Decode(handMade())
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.Tensors["a"].Float32s()
	if err != nil || len(v) != 2 || v[0] != 1.5 || v[1] != -2 {
		t.Fatalf("a = %v, %v", v, err)
	}
	if f.Metadata["k"] != "v" {
		t.Fatalf("metadata %v", f.Metadata)
	}
}

func TestRoundTrip(t *testing.T) {
	in := map[string]Tensor{
		"w": FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3),
		"i": FromInt32([]int32{-7, 8}, 2),
		"s": FromFloat32([]float32{3.25}),
	}
	p := filepath.Join(t.TempDir(), "x.safetensors")
	sum, err := WriteFile(p, in, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	f, sum2, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if sum != sum2 || len(sum) != 64 {
		t.Fatalf("sha256 %s vs %s", sum, sum2)
	}
	for n, want := range in {
		got := f.Tensors[n]
		if got.DType != want.DType || !bytes.Equal(got.Data, want.Data) || len(got.Shape) != len(want.Shape) {
			t.Fatalf("%s: %+v vs %+v", n, got, want)
		}
	}
}

func TestHalf(t *testing.T) {
	for _, c := range []struct {
		h    uint16
		want float32
	}{{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, float32(math.Ldexp(1, -24))}, {0x3555, 0.33325195}, {0x8000, 0}} {
		if got := HalfToFloat32(c.h); got != c.want {
			t.Errorf("half %#04x = %g, want %g", c.h, got, c.want)
		}
	}
	if !math.IsInf(float64(HalfToFloat32(0x7c00)), 1) || !math.IsNaN(float64(HalfToFloat32(0x7e00))) {
		t.Error("inf/nan")
	}
}

func TestDecodeMalformed(t *testing.T) {
	good := handMade()
	hdrLen := func(n uint64, rest string) []byte {
		b := binary.LittleEndian.AppendUint64(nil, n)
		return append(b, rest...)
	}
	bad := map[string][]byte{
		"short":        good[:5],
		"huge-header":  hdrLen(1<<62, "{}"),
		"not-json":     hdrLen(3, "abc"),
		"bad-dtype":    hdrLen(52, `{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}`+"x"),
		"out-of-range": hdrLen(54, `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`+"1234"),
		"size-shape":   hdrLen(54, `{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`+"12345678"),
		"gap":          hdrLen(54, `{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`+"12345678"),
		"trailing":     append(append([]byte{}, good...), 1, 2),
		"neg-shape":    hdrLen(55, `{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`),
		"overflow":     hdrLen(73, `{"a":{"dtype":"F64","shape":[4611686018427387904,4],"data_offsets":[0,0]}}`),
		"meta-nonstr":  hdrLen(22, `{"__metadata__":{"k":1}}`),
	}
	for name, b := range bad {
		if _, err := Decode(b); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if err := Encode(&bytes.Buffer{}, map[string]Tensor{"x": {DType: F32, Shape: []int{2}, Data: []byte{1}}}, nil); err == nil ||
		!strings.Contains(err.Error(), "bytes") {
		t.Errorf("Encode with a short buffer: %v", err)
	}
}

// FuzzDecode: the header parser never panics, and what it accepts re-encodes to a file that
// decodes to the same tensors.
func FuzzDecode(f *testing.F) {
	f.Add(handMade())
	var b bytes.Buffer
	_ = Encode(&b, map[string]Tensor{"x": FromInt32([]int32{1, 2, 3}, 3), "y": FromFloat32(nil, 0)}, nil)
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Decode(data)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := Encode(&out, file.Tensors, file.Metadata); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := Decode(out.Bytes())
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		for n, tt := range file.Tensors {
			if !bytes.Equal(again.Tensors[n].Data, tt.Data) {
				t.Fatalf("tensor %q changed", n)
			}
		}
	})
}
