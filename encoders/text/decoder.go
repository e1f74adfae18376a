package text

import (
	"fmt"
	"io"
	"unicode/utf8"
)

// Decoder writes the text of a stream of token ids to an io.Writer. A token may end inside
// a multi-byte UTF-8 sequence; the Decoder holds such a tail back until the ids that complete
// it arrive, so every write is whole characters. Bytes that can never become valid UTF-8 are
// written as they are. Call Flush at the end of the stream.
type Decoder struct {
	enc     *Encoding
	w       io.Writer
	pending []byte // an incomplete UTF-8 sequence (at most utf8.UTFMax-1 bytes) not yet written
	buf     []byte
}

// NewDecoder returns a Decoder for e writing to w.
func (e *Encoding) NewDecoder(w io.Writer) *Decoder { return &Decoder{enc: e, w: w} }

// Write decodes ids and writes all complete characters.
func (d *Decoder) Write(ids []int32) error {
	d.buf = append(d.buf[:0], d.pending...)
	var err error
	d.buf, err = d.enc.Decode(d.buf, ids)
	if err != nil {
		return err
	}
	cut := incompleteTail(d.buf)
	d.pending = append(d.pending[:0], d.buf[cut:]...)
	if cut > 0 {
		if _, err := d.w.Write(d.buf[:cut]); err != nil {
			return fmt.Errorf("text: decoder write: %w", err)
		}
	}
	return nil
}

// Flush writes any held-back bytes (an incomplete sequence at the end of the stream).
func (d *Decoder) Flush() error {
	if len(d.pending) == 0 {
		return nil
	}
	_, err := d.w.Write(d.pending)
	d.pending = d.pending[:0]
	if err != nil {
		return fmt.Errorf("text: decoder write: %w", err)
	}
	return nil
}

// incompleteTail returns the offset of a trailing UTF-8 sequence that is a valid but
// incomplete prefix of a character, or len(b) if there is none.
func incompleteTail(b []byte) int {
	for k := 1; k < utf8.UTFMax && k <= len(b); k++ {
		c := b[len(b)-k]
		if c < 0x80 {
			return len(b)
		}
		if c >= 0xC0 { // a leading byte k bytes from the end
			need := 0
			switch {
			case c >= 0xF0 && c <= 0xF4:
				need = 4
			case c >= 0xE0:
				need = 3
			case c >= 0xC2 && c < 0xE0:
				need = 2
			}
			if need > k && prefixValid(b[len(b)-k:]) {
				return len(b) - k
			}
			return len(b)
		}
	}
	return len(b)
}

// prefixValid reports whether p could be completed into a valid UTF-8 character.
func prefixValid(p []byte) bool {
	var full [utf8.UTFMax]byte
	n := copy(full[:], p)
	need := 2
	if p[0] >= 0xF0 {
		need = 4
	} else if p[0] >= 0xE0 {
		need = 3
	}
	// Try completing with the smallest and largest continuation bytes the second byte allows.
	for _, c := range []byte{0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF} {
		for i := n; i < need; i++ {
			full[i] = c
		}
		if n == 1 {
			full[1] = c
		}
		if r, size := utf8.DecodeRune(full[:need]); r != utf8.RuneError && size == need {
			return true
		}
	}
	return false
}
