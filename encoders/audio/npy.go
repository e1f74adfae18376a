package audio

import (
	"encoding/binary"
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
