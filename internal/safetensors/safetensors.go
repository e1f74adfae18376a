// Package safetensors reads and writes the safetensors format (huggingface/safetensors):
// an 8-byte little-endian header length N, N bytes of JSON header mapping tensor names to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the byte after the
// header) plus an optional "__metadata__" string map, then the raw little-endian tensor bytes.
// Files written here load in PyTorch with safetensors.torch.load_file.
//
// Read validates everything it is given (header size, JSON, dtypes, shapes, offsets in
// bounds, contiguous and non-overlapping, byte counts matching shapes) and returns an error,
// never panics, on malformed input.
package safetensors

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
)

// DType names an element type as the format spells it.
type DType string

const (
	F64  DType = "F64"
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	Bool DType = "BOOL"
)

// Size is the element size in bytes, 0 for an unknown dtype.
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16, I16:
		return 2
	case I8, U8, Bool:
		return 1
	}
	return 0
}

// MaxHeader bounds the JSON header Read accepts (100 MB, as the reference implementation).
const MaxHeader = 100_000_000

// ErrFormat is wrapped by every error about malformed input.
var ErrFormat = errors.New("safetensors: malformed file")

// Tensor is one named array. Data holds the elements in row-major (C) order, little-endian:
// element (i0, i1, ..., ik) at byte offset ((i0*Shape[1] + i1)*... + ik) * DType.Size().
type Tensor struct {
	DType DType
	Shape []int
	Data  []byte
}

// Elems is the product of the shape (1 for a scalar).
func (t Tensor) Elems() int {
	n := 1
	for _, s := range t.Shape {
		n *= s
	}
	return n
}

// FromFloat32 makes an F32 tensor of the given shape; len(v) must equal the shape's product.
func FromFloat32(v []float32, shape ...int) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{DType: F32, Shape: shape, Data: b}
}

// FromInt32 makes an I32 tensor.
func FromInt32(v []int32, shape ...int) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return Tensor{DType: I32, Shape: shape, Data: b}
}

// Float32s converts F32, F64, F16, BF16 and integer tensors to float32.
func (t Tensor) Float32s() ([]float32, error) {
	n := t.Elems()
	if len(t.Data) != n*t.DType.Size() || t.DType.Size() == 0 {
		return nil, fmt.Errorf("%w: tensor of %s %v has %d bytes", ErrFormat, t.DType, t.Shape, len(t.Data))
	}
	out := make([]float32, n)
	le := binary.LittleEndian
	for i := range out {
		switch t.DType {
		case F32:
			out[i] = math.Float32frombits(le.Uint32(t.Data[4*i:]))
		case F64:
			out[i] = float32(math.Float64frombits(le.Uint64(t.Data[8*i:])))
		case F16:
			out[i] = HalfToFloat32(le.Uint16(t.Data[2*i:]))
		case BF16:
			out[i] = math.Float32frombits(uint32(le.Uint16(t.Data[2*i:])) << 16)
		case I64:
			out[i] = float32(int64(le.Uint64(t.Data[8*i:])))
		case I32:
			out[i] = float32(int32(le.Uint32(t.Data[4*i:])))
		case I16:
			out[i] = float32(int16(le.Uint16(t.Data[2*i:])))
		case I8:
			out[i] = float32(int8(t.Data[i]))
		case U8, Bool:
			out[i] = float32(t.Data[i])
		}
	}
	return out, nil
}

// HalfToFloat32 converts an IEEE 754 binary16 value.
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	case exp == 0:
		if frac == 0 {
			return math.Float32frombits(sign)
		}
		// subnormal: value = frac * 2^-24
		v := float32(frac) * float32(1.0/(1<<24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}

// File is a decoded safetensors file.
type File struct {
	Tensors  map[string]Tensor
	Metadata map[string]string
}

type headerEntry struct {
	DType       DType    `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// Encode writes tensors (sorted by name) and metadata in safetensors layout.
func Encode(w io.Writer, tensors map[string]Tensor, meta map[string]string) error {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		if n == "__metadata__" {
			return fmt.Errorf("safetensors: tensor name %q is reserved", n)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	hdr := map[string]any{}
	if len(meta) > 0 {
		hdr["__metadata__"] = meta
	}
	var off int64
	for _, n := range names {
		t := tensors[n]
		if t.DType.Size() == 0 {
			return fmt.Errorf("safetensors: tensor %q: unknown dtype %q", n, t.DType)
		}
		for _, s := range t.Shape {
			if s < 0 {
				return fmt.Errorf("safetensors: tensor %q: negative dimension in %v", n, t.Shape)
			}
		}
		if len(t.Data) != t.Elems()*t.DType.Size() {
			return fmt.Errorf("safetensors: tensor %q: %d bytes for %s %v", n, len(t.Data), t.DType, t.Shape)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		hdr[n] = headerEntry{DType: t.DType, Shape: shape, DataOffsets: [2]int64{off, off + int64(len(t.Data))}}
		off += int64(len(t.Data))
	}
	js, err := json.Marshal(hdr)
	if err != nil {
		return fmt.Errorf("safetensors: encode header: %w", err)
	}
	for len(js)%8 != 0 { // align the data to 8 bytes, as the reference writer does
		js = append(js, ' ')
	}
	var n8 [8]byte
	binary.LittleEndian.PutUint64(n8[:], uint64(len(js)))
	if _, err := w.Write(n8[:]); err != nil {
		return err
	}
	if _, err := w.Write(js); err != nil {
		return err
	}
	for _, n := range names {
		if _, err := w.Write(tensors[n].Data); err != nil {
			return err
		}
	}
	return nil
}

// Decode parses a whole safetensors file held in memory. Tensor data aliases b.
func Decode(b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: %d bytes, need at least 8", ErrFormat, len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeader || n > uint64(len(b)-8) {
		return nil, fmt.Errorf("%w: header length %d (file %d bytes)", ErrFormat, n, len(b))
	}
	raw := map[string]json.RawMessage{}
	if err := json.Unmarshal(b[8:8+n], &raw); err != nil {
		return nil, fmt.Errorf("%w: header JSON: %v", ErrFormat, err)
	}
	data := b[8+n:]
	f := &File{Tensors: map[string]Tensor{}, Metadata: map[string]string{}}
	type span struct {
		name       string
		begin, end int64
	}
	var spans []span
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Metadata); err != nil {
				return nil, fmt.Errorf("%w: __metadata__ must map strings to strings: %v", ErrFormat, err)
			}
			continue
		}
		var e headerEntry
		dec := json.NewDecoder(bytes.NewReader(msg))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("%w: tensor %q: %v", ErrFormat, name, err)
		}
		if e.DType.Size() == 0 {
			return nil, fmt.Errorf("%w: tensor %q: unknown dtype %q", ErrFormat, name, e.DType)
		}
		elems := int64(1)
		for _, s := range e.Shape {
			if s < 0 || (s > 0 && elems > math.MaxInt64/int64(s)/8) {
				return nil, fmt.Errorf("%w: tensor %q: bad shape %v", ErrFormat, name, e.Shape)
			}
			elems *= int64(s)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin < 0 || end < begin || end > int64(len(data)) || end-begin != elems*int64(e.DType.Size()) {
			return nil, fmt.Errorf("%w: tensor %q: offsets [%d, %d) for %s %v in %d data bytes",
				ErrFormat, name, begin, end, e.DType, e.Shape, len(data))
		}
		shape := e.Shape
		if shape == nil {
			shape = []int{}
		}
		f.Tensors[name] = Tensor{DType: e.DType, Shape: shape, Data: data[begin:end:end]}
		spans = append(spans, span{name, begin, end})
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].end < spans[j].end
	})
	var pos int64
	for _, s := range spans {
		if s.begin != pos {
			return nil, fmt.Errorf("%w: tensor %q starts at %d, expected %d (gap or overlap)", ErrFormat, s.name, s.begin, pos)
		}
		pos = s.end
	}
	if pos != int64(len(data)) {
		return nil, fmt.Errorf("%w: %d trailing data bytes", ErrFormat, int64(len(data))-pos)
	}
	return f, nil
}

// ReadFile reads and decodes path and returns its sha256 (hex).
func ReadFile(path string) (*File, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	f, err := Decode(b)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	sum := sha256.Sum256(b)
	return f, hex.EncodeToString(sum[:]), nil
}

// WriteFile writes the file atomically (temporary name, then rename) and returns its sha256 (hex).
func WriteFile(path string, tensors map[string]Tensor, meta map[string]string) (sum string, err error) {
	var buf bytes.Buffer
	if err := Encode(&buf, tensors, meta); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		return "", errors.Join(err, tmp.Close())
	}
	if err := tmp.Sync(); err != nil {
		return "", errors.Join(err, tmp.Close())
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	h := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(h[:]), nil
}
