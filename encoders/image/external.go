package image

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/immkit/immkit/internal/pqsafe"
	"github.com/immkit/immkit/internal/safetensors"
)

// External imports latents computed elsewhere (for example Stable Diffusion VAE latents,
// 4×H/8×W/8) with a declared shape C×H×W. Sources: a .npy array, a safetensors tensor, or a
// Parquet column of fixed-size lists (or lists) of float32/float16/float64. Arrays are read in
// C order with shape (N, C, H, W), (N, C*H*W), or (C, H, W) for a single latent.
type External struct {
	C, H, W int
}

// Name and Version identify the encoder in manifests ("external@1").
func (External) Name() string    { return "external" }
func (External) Version() string { return "1" }

// ErrExternal is wrapped by errors about imported latents that do not fit the declared shape
// or whose container is malformed.
var ErrExternal = errors.New("image: external latents")

func (e External) per() (int, error) {
	if e.C <= 0 || e.H <= 0 || e.W <= 0 || e.C*e.H*e.W > 1<<28 {
		return 0, fmt.Errorf("%w: declared shape %dx%dx%d", ErrExternal, e.C, e.H, e.W)
	}
	return e.C * e.H * e.W, nil
}

// split checks that an array of the given shape holds whole latents of the declared shape
// and cuts flat into them.
func (e External) split(shape []int, flat []float32) ([]Latent, error) {
	per, err := e.per()
	if err != nil {
		return nil, err
	}
	n := 0
	switch {
	case len(shape) == 3 && shape[0] == e.C && shape[1] == e.H && shape[2] == e.W:
		n = 1
	case len(shape) == 4 && shape[1] == e.C && shape[2] == e.H && shape[3] == e.W:
		n = shape[0]
	case len(shape) == 2 && shape[1] == per:
		n = shape[0]
	default:
		return nil, fmt.Errorf("%w: array shape %v does not hold latents of %dx%dx%d", ErrExternal, shape, e.C, e.H, e.W)
	}
	if len(flat) != n*per {
		return nil, fmt.Errorf("%w: %d values for shape %v", ErrExternal, len(flat), shape)
	}
	out := make([]Latent, n)
	for i := range out {
		out[i] = Latent{C: e.C, H: e.H, W: e.W, Data: flat[i*per : (i+1)*per : (i+1)*per]}
	}
	return out, nil
}

// ReadNPY reads a NumPy .npy array (format 1.0, 2.0 or 3.0; little- or big-endian f2, f4, f8;
// C order) and returns its shape and values as float32. Sizes are checked against the input
// before allocation.
func ReadNPY(r io.Reader) (shape []int, v []float32, err error) {
	var pre [10]byte
	if _, err := io.ReadFull(r, pre[:8]); err != nil {
		return nil, nil, fmt.Errorf("%w: npy: %v", ErrExternal, err)
	}
	if string(pre[:6]) != "\x93NUMPY" {
		return nil, nil, fmt.Errorf("%w: npy: bad magic", ErrExternal)
	}
	var hlen int
	switch pre[6] {
	case 1:
		if _, err := io.ReadFull(r, pre[8:10]); err != nil {
			return nil, nil, fmt.Errorf("%w: npy: %v", ErrExternal, err)
		}
		hlen = int(binary.LittleEndian.Uint16(pre[8:10]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, nil, fmt.Errorf("%w: npy: %v", ErrExternal, err)
		}
		hlen = int(binary.LittleEndian.Uint32(b[:]))
	default:
		return nil, nil, fmt.Errorf("%w: npy: version %d.%d", ErrExternal, pre[6], pre[7])
	}
	if hlen > 1<<20 {
		return nil, nil, fmt.Errorf("%w: npy: header of %d bytes", ErrExternal, hlen)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, nil, fmt.Errorf("%w: npy header: %v", ErrExternal, err)
	}
	descr, fortran, shape, err := parseNPYHeader(string(hdr))
	if err != nil {
		return nil, nil, err
	}
	if fortran {
		return nil, nil, fmt.Errorf("%w: npy: Fortran order is not supported", ErrExternal)
	}
	var bo binary.ByteOrder
	switch descr[0] {
	case '<', '|':
		bo = binary.LittleEndian
	case '>':
		bo = binary.BigEndian
	default:
		return nil, nil, fmt.Errorf("%w: npy: dtype %q", ErrExternal, descr)
	}
	size := map[string]int{"f2": 2, "f4": 4, "f8": 8}[descr[1:]]
	if size == 0 {
		return nil, nil, fmt.Errorf("%w: npy: dtype %q (want float16/32/64)", ErrExternal, descr)
	}
	n := 1
	for _, s := range shape {
		if s < 0 || (s > 0 && n > (1<<31)/s) {
			return nil, nil, fmt.Errorf("%w: npy: shape %v too large", ErrExternal, shape)
		}
		n *= s
	}
	// Read incrementally so a lying header cannot make us allocate more than the input holds.
	raw, err := io.ReadAll(io.LimitReader(r, int64(n*size)+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: npy data: %v", ErrExternal, err)
	}
	if len(raw) != n*size {
		return nil, nil, fmt.Errorf("%w: npy: %d data bytes for shape %v of %s", ErrExternal, len(raw), shape, descr)
	}
	v = make([]float32, n)
	for i := range v {
		switch size {
		case 2:
			v[i] = safetensors.HalfToFloat32(bo.Uint16(raw[2*i:]))
		case 4:
			v[i] = math.Float32frombits(bo.Uint32(raw[4*i:]))
		case 8:
			v[i] = float32(math.Float64frombits(bo.Uint64(raw[8*i:])))
		}
	}
	return shape, v, nil
}

// parseNPYHeader reads the Python dict literal of an .npy header:
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
func parseNPYHeader(h string) (descr string, fortran bool, shape []int, err error) {
	bad := func(what string) error { return fmt.Errorf("%w: npy header: %s in %q", ErrExternal, what, h) }
	field := func(name string) (string, bool) {
		i := strings.Index(h, "'"+name+"'")
		if i < 0 {
			return "", false
		}
		rest := strings.TrimLeft(h[i+len(name)+2:], " ")
		if !strings.HasPrefix(rest, ":") {
			return "", false
		}
		return strings.TrimLeft(rest[1:], " "), true
	}
	d, ok := field("descr")
	if !ok || len(d) < 2 || d[0] != '\'' {
		return "", false, nil, bad("no descr")
	}
	end := strings.IndexByte(d[1:], '\'')
	if end < 2 {
		return "", false, nil, bad("bad descr")
	}
	descr = d[1 : 1+end]
	f, ok := field("fortran_order")
	switch {
	case ok && strings.HasPrefix(f, "True"):
		fortran = true
	case ok && strings.HasPrefix(f, "False"):
	default:
		return "", false, nil, bad("no fortran_order")
	}
	s, ok := field("shape")
	if !ok || !strings.HasPrefix(s, "(") {
		return "", false, nil, bad("no shape")
	}
	close := strings.IndexByte(s, ')')
	if close < 0 {
		return "", false, nil, bad("unterminated shape")
	}
	for _, part := range strings.Split(s[1:close], ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, err := strconv.Atoi(strings.TrimSuffix(part, "L"))
		if err != nil || k < 0 {
			return "", false, nil, bad("bad dimension " + strconv.Quote(part))
		}
		shape = append(shape, k)
	}
	if len(shape) > 8 {
		return "", false, nil, bad("too many dimensions")
	}
	return descr, fortran, shape, nil
}

// FromNPY reads latents from a .npy file.
func (e External) FromNPY(path string) ([]Latent, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	shape, v, err := ReadNPY(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return e.split(shape, v)
}

// FromSafetensors reads latents from the named tensor of a safetensors file.
func (e External) FromSafetensors(path, tensor string) ([]Latent, error) {
	f, _, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, ok := f.Tensors[tensor]
	if !ok {
		return nil, fmt.Errorf("%w: %s has no tensor %q", ErrExternal, path, tensor)
	}
	v, err := t.Float32s()
	if err != nil {
		return nil, err
	}
	return e.split(t.Shape, v)
}

// FromParquet reads latents from a column of fixed-size lists (or lists) of floats, one per
// row, and the values of the utf8 column keyColumn when it is not empty (nil otherwise).
// Only the named columns are read. A damaged file is an error naming it and the row
// group, never a crash: reader panics are recovered, every batch is validated before it
// is indexed, and the rows must number what the footer declares (internal/pqsafe).
func (e External) FromParquet(path, column, keyColumn string) (latents []Latent, keys []string, err error) {
	per, err := e.per()
	if err != nil {
		return nil, nil, err
	}
	pf, err := pqsafe.Open(path, pqsafe.Options{BatchRows: 1024})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrExternal, err)
	}
	defer func() { err = errors.Join(err, pf.Close()) }()
	sc, err := pf.Schema()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrExternal, path, err)
	}
	names := []string{column}
	if keyColumn != "" {
		names = append(names, keyColumn)
	}
	for _, n := range names {
		if len(sc.FieldIndices(n)) != 1 {
			return nil, nil, fmt.Errorf("%w: %s has no single column %q", ErrExternal, path, n)
		}
	}
	leaves, err := pf.Leaves(names...)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrExternal, err)
	}
	var fnErr error
	err = pf.Scan(context.Background(), leaves, func(rec arrow.RecordBatch) error {
		fnErr = e.appendParquetBatch(path, rec, column, keyColumn, per, &latents, &keys)
		return fnErr
	})
	if err != nil && err != fnErr {
		// A reader error: keep ErrExternal in the chain with the file named.
		return nil, nil, fmt.Errorf("%w: %w", ErrExternal, err)
	}
	if err != nil {
		return nil, nil, err
	}
	return latents, keys, nil
}

// appendParquetBatch appends the latents (and keys) of one validated batch.
func (e External) appendParquetBatch(path string, rec arrow.RecordBatch, column, keyColumn string, per int, latents *[]Latent, keys *[]string) error {
	rs := rec.Schema()
	col := rec.Column(rs.FieldIndices(column)[0])
	ll, ok := col.(array.ListLike)
	if !ok {
		return fmt.Errorf("%w: %s: column %q is %s, want a (fixed-size) list of floats", ErrExternal, path, column, col.DataType())
	}
	vals := ll.ListValues()
	for i := 0; i < ll.Len(); i++ {
		if ll.IsNull(i) {
			return fmt.Errorf("%w: %s: column %q row %d is null", ErrExternal, path, column, len(*latents))
		}
		lo, hi := ll.ValueOffsets(i)
		if int(hi-lo) != per {
			return fmt.Errorf("%w: %s: column %q row %d has %d values, declared shape %dx%dx%d needs %d",
				ErrExternal, path, column, len(*latents), hi-lo, e.C, e.H, e.W, per)
		}
		l := NewLatent(e.C, e.H, e.W)
		if err := floatsInto(vals, int(lo), l.Data); err != nil {
			return fmt.Errorf("%w: %s: column %q: %v", ErrExternal, path, column, err)
		}
		*latents = append(*latents, l)
	}
	if keyColumn != "" {
		kc, ok := rec.Column(rs.FieldIndices(keyColumn)[0]).(*array.String)
		if !ok {
			return fmt.Errorf("%w: %s: key column %q is not utf8", ErrExternal, path, keyColumn)
		}
		for i := 0; i < kc.Len(); i++ {
			*keys = append(*keys, kc.Value(i))
		}
	}
	return nil
}

func floatsInto(vals arrow.Array, lo int, dst []float32) error {
	if vals.NullN() > 0 {
		for i := range dst {
			if vals.IsNull(lo + i) {
				return fmt.Errorf("null value")
			}
		}
	}
	switch a := vals.(type) {
	case *array.Float32:
		copy(dst, a.Float32Values()[lo:lo+len(dst)])
	case *array.Float64:
		for i, v := range a.Float64Values()[lo : lo+len(dst)] {
			dst[i] = float32(v)
		}
	case *array.Float16:
		for i, v := range a.Values()[lo : lo+len(dst)] {
			dst[i] = v.Float32()
		}
	default:
		return fmt.Errorf("values are %s, want float16/32/64", vals.DataType())
	}
	return nil
}
