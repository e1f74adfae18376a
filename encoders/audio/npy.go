package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// WriteNPY writes data as a NumPy .npy (format 1.0) little-endian float32 C-order array of
// the given shape; the product of shape must equal len(data).
func WriteNPY(w io.Writer, data []float32, shape ...int) error {
	n := 1
	dims := make([]string, len(shape))
	for i, d := range shape {
		if d < 0 {
			return fmt.Errorf("audio: npy: negative dimension %d", d)
		}
		n *= d
		dims[i] = strconv.Itoa(d)
	}
	if n != len(data) {
		return fmt.Errorf("audio: npy: shape %v holds %d values, have %d", shape, n, len(data))
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	// magic(6) + version(2) + len(2) + header + '\n' padded to a multiple of 64.
	total := 10 + len(header) + 1
	header += strings.Repeat(" ", (64-total%64)%64) + "\n"
	buf := make([]byte, 10+len(header)+4*len(data))
	copy(buf, "\x93NUMPY\x01\x00")
	binary.LittleEndian.PutUint16(buf[8:], uint16(len(header)))
	copy(buf[10:], header)
	d := buf[10+len(header):]
	for i, v := range data {
		binary.LittleEndian.PutUint32(d[4*i:], math.Float32bits(v))
	}
	_, err := w.Write(buf)
	return err
}

// ReadNPY reads a NumPy .npy file of little-endian float32 or float64 values in C order,
// returning the values as float32 and the shape.
func ReadNPY(b []byte) ([]float32, []int, error) {
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		return nil, nil, errors.New("audio: npy: bad magic")
	}
	var hl, off int
	switch b[6] {
	case 1:
		hl, off = int(binary.LittleEndian.Uint16(b[8:])), 10
	case 2, 3:
		if len(b) < 12 {
			return nil, nil, errors.New("audio: npy: truncated header")
		}
		hl, off = int(binary.LittleEndian.Uint32(b[8:])), 12
	default:
		return nil, nil, fmt.Errorf("audio: npy: version %d", b[6])
	}
	if hl > len(b)-off {
		return nil, nil, errors.New("audio: npy: truncated header")
	}
	h := string(b[off : off+hl])
	body := b[off+hl:]
	if strings.Contains(h, "'fortran_order': True") {
		return nil, nil, errors.New("audio: npy: Fortran order is not supported")
	}
	var width int
	switch {
	case strings.Contains(h, "'descr': '<f4'"):
		width = 4
	case strings.Contains(h, "'descr': '<f8'"):
		width = 8
	default:
		return nil, nil, fmt.Errorf("audio: npy: dtype in %q is not <f4 or <f8", h)
	}
	i := strings.Index(h, "'shape': (")
	if i < 0 {
		return nil, nil, errors.New("audio: npy: no shape")
	}
	rest := h[i+len("'shape': ("):]
	j := strings.IndexByte(rest, ')')
	if j < 0 {
		return nil, nil, errors.New("audio: npy: bad shape")
	}
	var shape []int
	n := 1
	for _, s := range strings.Split(rest[:j], ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		d, err := strconv.Atoi(s)
		if err != nil || d < 0 || d > 1<<31 {
			return nil, nil, fmt.Errorf("audio: npy: dimension %q", s)
		}
		shape = append(shape, d)
		n *= d
		if n > len(body) {
			return nil, nil, fmt.Errorf("audio: npy: shape %v needs more data than %d bytes", shape, len(body))
		}
	}
	if n*width > len(body) {
		return nil, nil, fmt.Errorf("audio: npy: shape %v needs %d bytes, have %d", shape, n*width, len(body))
	}
	out := make([]float32, n)
	for k := range out {
		if width == 4 {
			out[k] = math.Float32frombits(binary.LittleEndian.Uint32(body[4*k:]))
		} else {
			out[k] = float32(math.Float64frombits(binary.LittleEndian.Uint64(body[8*k:])))
		}
	}
	return out, shape, nil
}
