// Package pqsafetest damages files byte by byte for the tests of Parquet readers: every
// damaged copy must read as correct data or as an error, never as a panic or a hang.
package pqsafetest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/immkit/immkit/internal/pqsafe"
)

// ErrWrongData is what a read callback returns (wrapped) when it read without an error but
// the data differ from the undamaged file's.
var ErrWrongData = errors.New("pqsafetest: read returned data that differ from the original")

// Counts tallies the outcomes of the damaged reads.
type Counts struct {
	Cases   int // damaged copies read
	OK      int // read without an error (and, as the callback checked, the original data)
	Errors  int // read with an error
	Panics  int // errors wrapping pqsafe.ErrPanic: the reader panicked and was recovered
	Damaged int // errors wrapping pqsafe.ErrDamaged: validation or the footer row count caught it
	Wrong   int // errors wrapping ErrWrongData: no error from the reader, different data
	// WrongFooter counts the Wrong cases whose damaged byte lies in the footer (the
	// Thrift file metadata and the stored Arrow schema, which Parquet does not checksum):
	// a renamed column or a changed type there makes another valid file, which no reader
	// can tell from the original. Wrong - WrongFooter are damaged column chunks read as
	// other values without an error.
	WrongFooter int

	WrongCases []string // the first few damages that read silently wrong, with the difference

	Slowest     time.Duration // the longest read
	SlowestCase string        // and its damage
}

func (c Counts) String() string {
	return fmt.Sprintf("%d damaged copies: %d read correctly, %d errors (%d recovered reader panics, %d caught by validation or row count), %d read silently wrong (%d of them with the damage in the footer); slowest read %v (%s)",
		c.Cases, c.OK, c.Errors, c.Panics, c.Damaged, c.Wrong, c.WrongFooter, c.Slowest.Round(time.Millisecond), c.SlowestCase)
}

// Damage writes damaged copies of orig to path, one at a time, and calls read after
// writing each. The copies: the bytes at every stride-th offset (starting at 0) set to
// 0x00, to 0xff and XOR 0x80 (where that changes the byte), and orig cut at eighths of its
// length and 1, 4, 8 and 12 bytes short of its end. A read that panics or runs longer than
// timeout fails the test; ErrWrongData from read is counted, not failed: the caller
// decides. The error of each case is passed to check, when not nil, for assertions on its
// text (it must name the file, say).
func Damage(t testing.TB, path string, orig []byte, stride int, timeout time.Duration, read func() error, check func(t testing.TB, what string, err error)) Counts {
	t.Helper()
	if stride < 1 {
		stride = 1
	}
	var c Counts
	footer := len(orig) // offset of the footer: [footer, len-8) is the Thrift metadata
	if n := len(orig); n >= 12 && string(orig[n-4:]) == "PAR1" {
		footer = n - 8 - int(binary.LittleEndian.Uint32(orig[n-8:]))
	}
	run := func(what string, at int, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		c.Cases++
		type outcome struct {
			err   error
			panic any
			stack []byte
		}
		done := make(chan outcome, 1)
		start := time.Now()
		go func() {
			defer func() {
				if r := recover(); r != nil {
					done <- outcome{panic: r, stack: debug.Stack()}
				}
			}()
			done <- outcome{err: read()}
		}()
		var o outcome
		select {
		case o = <-done:
			if d := time.Since(start); d > c.Slowest {
				c.Slowest, c.SlowestCase = d, what
			}
		case <-time.After(timeout):
			t.Fatalf("%s: the read did not return within %v (a hang)", what, timeout)
		}
		if o.panic != nil {
			t.Errorf("%s: the read panicked: %v\n%s", what, o.panic, o.stack)
			return
		}
		err := o.err
		switch {
		case err == nil:
			c.OK++
		case errors.Is(err, ErrWrongData):
			c.Wrong++
			if at >= footer {
				c.WrongFooter++
			}
			if len(c.WrongCases) < 5 {
				c.WrongCases = append(c.WrongCases, what+": "+err.Error())
			}
		default:
			c.Errors++
			if errors.Is(err, pqsafe.ErrPanic) {
				c.Panics++
			}
			if errors.Is(err, pqsafe.ErrDamaged) {
				c.Damaged++
			}
		}
		if err != nil && check != nil && !errors.Is(err, ErrWrongData) {
			check(t, what, err)
		}
	}
	for i := 0; i < len(orig); i += stride {
		for _, v := range []byte{0x00, 0xff, orig[i] ^ 0x80} {
			if orig[i] == v {
				continue
			}
			b := append([]byte(nil), orig...)
			b[i] = v
			run(fmt.Sprintf("byte %d of %d set to %#02x (was %#02x)", i, len(orig), v, orig[i]), i, b)
		}
	}
	cuts := []int{len(orig) - 1, len(orig) - 4, len(orig) - 8, len(orig) - 12}
	for k := 0; k < 8; k++ {
		cuts = append(cuts, len(orig)*k/8)
	}
	for _, n := range cuts {
		if n >= 0 && n < len(orig) {
			run(fmt.Sprintf("cut to %d of %d bytes", n, len(orig)), -1, orig[:n])
		}
	}
	return c
}

// Stride returns the stride for Damage: IMMKIT_DAMAGE_STRIDE when set (1 damages every
// byte), else def, or 4*def under -short.
func Stride(def int) int {
	if v, err := strconv.Atoi(os.Getenv("IMMKIT_DAMAGE_STRIDE")); err == nil && v > 0 {
		return v
	}
	if testing.Short() {
		return 4 * def
	}
	return def
}

// DamageFile is the usual damage test of a reader. read(orig) must accept the undamaged
// file; then Damage writes the damaged copies of orig's bytes to path and calls
// read(path) after each. Every error must name path and, when prefix is not "", start
// with it. When checksummed (zstd pages: a damaged byte breaks the frame rather than the
// values), a damaged column chunk that reads as other values without an error fails the
// test; and at least one damaged copy must give an error. The counts are logged as what
// and returned.
func DamageFile(t testing.TB, what, orig, path string, stride int, prefix string, checksummed bool, read func(path string) error) Counts {
	t.Helper()
	if err := read(orig); err != nil {
		t.Fatalf("%s: the undamaged file: %v", what, err)
	}
	b, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	c := Damage(t, path, b, stride, 10*time.Second, func() error { return read(path) }, func(t testing.TB, damage string, err error) {
		if msg := err.Error(); !strings.Contains(msg, path) || !strings.HasPrefix(msg, prefix) {
			t.Errorf("%s: %s: the error does not name the file (prefix %q): %v", what, damage, prefix, err)
		}
	})
	t.Logf("%s, %d bytes: %s", what, len(b), c)
	if checksummed && c.Wrong > c.WrongFooter {
		t.Errorf("%s: %d damaged column chunks read without an error but with other values, e.g. %q", what, c.Wrong-c.WrongFooter, c.WrongCases)
	}
	if c.Errors == 0 {
		t.Errorf("%s: no damaged copy gave an error", what)
	}
	return c
}

// WriteFile writes rows rows of schema sc to path with arrow-go's writer and the given
// page compression, one Write (one row group) per batch rows; fill appends row r to b.
func WriteFile(t testing.TB, path string, sc *arrow.Schema, codec compress.Compression, rows, batch int, fill func(b *array.RecordBuilder, r int)) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(sc, f, parquet.NewWriterProperties(parquet.WithCompression(codec)), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	for lo := 0; lo < rows; lo += batch {
		b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
		for r := lo; r < min(rows, lo+batch); r++ {
			fill(b, r)
		}
		rec := b.NewRecordBatch()
		err := w.Write(rec)
		rec.Release()
		b.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
