// Package pqsafe reads Parquet files that may be damaged or hostile, so that a bad file is
// an error naming it, never a crash.
//
// arrow-go's Parquet reader panics on some damaged files (a negative column chunk length,
// page headers or offsets that contradict each other, dictionary indices out of range), and
// it can hand back arrays whose offsets point outside their buffers; a later Value(i) or
// an arrow compute kernel (which may run in goroutines of its own, out of reach of any
// recover of ours) then panics. The package closes both holes:
//
//   - Recover, deferred in every goroutine that reads, turns a reader panic into an error
//     wrapping ErrPanic.
//   - ValidateArray and ValidateRecord check decoded arrays (buffer sizes, offsets, list
//     sizes, struct children, dictionary indices) before anything indexes them.
//   - File opens a file (footer parsing recovered) and File.Scan reads record batches of
//     chosen columns in the caller's goroutine, recovering reader panics, validating every
//     batch and checking the number of rows against the footer; its errors name the file
//     and the row group (and the column when one is at fault). Open first checks every
//     column chunk's location against the file size, because pqarrow opens the readers of
//     a struct's children in goroutines of its own.
//   - Linking the package replaces arrow-go's zstd and snappy decoders with ones that
//     decode a page into at most the size its header declares (codec.go).
//
// The callback of Scan runs outside the recover: a panic there is a bug of the caller and
// crashes as it should.
package pqsafe

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// ErrPanic is wrapped by the error returned when the Parquet reader panicked on a file.
var ErrPanic = errors.New("parquet reader panicked")

// ErrDamaged is wrapped by the error returned when a file decodes to data that contradicts
// itself (offsets outside their buffers, columns of different lengths) or its footer (a
// different number of rows).
var ErrDamaged = errors.New("damaged parquet file")

// Recover turns a panic of the goroutine it is deferred in into *err, naming what was
// being read. It must be deferred directly (defer pqsafe.Recover(&err, path)), and only
// around Parquet reading, where the panics come from arrow-go on hostile bytes, not from
// the caller's own logic.
func Recover(err *error, what string) {
	if r := recover(); r != nil {
		*err = panicError("", what, r)
	}
}

func panicError(prefix, what string, r any) error {
	return fmt.Errorf("%sread %s: %w (a damaged Parquet file?): %v", prefix, what, ErrPanic, r)
}

// recover is Recover with the File's error prefix.
func (f *File) recover(err *error, what string) {
	if r := recover(); r != nil {
		*err = panicError(f.prefix, what, r)
	}
}

// errorf formats an error with the File's prefix.
func (f *File) errorf(format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	if f.prefix == "" {
		return err
	}
	return fmt.Errorf("%s%w", f.prefix, err)
}

// ValidateRecord checks that every column of rec has rec.NumRows() values and passes
// ValidateArray; the error names the column.
func ValidateRecord(rec arrow.RecordBatch) error {
	n := rec.NumRows()
	for i, c := range rec.Columns() {
		if int64(c.Len()) != n {
			return fmt.Errorf("column %q has %d values in a batch of %d rows", rec.ColumnName(i), c.Len(), n)
		}
		if err := ValidateArray(c); err != nil {
			return fmt.Errorf("column %q: %w", rec.ColumnName(i), err)
		}
	}
	return nil
}

// ValidateArray checks the buffers, offsets and child lengths of a decoded array against
// each other, so that a damaged file (whose pages decode to inconsistent buffers) is an
// error here rather than an out-of-range index later, in our code or inside arrow's compute
// kernels. It runs arrow's O(1) layout check (buffer and bitmap sizes, child types, first
// and last offsets) on the array and its children, then checks every offset of binary,
// string and list arrays, the child lengths of structs and fixed-size lists, and the
// indices of dictionary arrays. String values are not checked for UTF-8: that is not
// needed for safe access, and text columns of foreign files may hold invalid UTF-8.
func ValidateArray(a arrow.Array) error {
	if err := array.Validate(a); err != nil {
		return err
	}
	return validateValues(a)
}

// validateValues is the O(n) part of ValidateArray, on an array whose layout has passed
// array.Validate.
func validateValues(a arrow.Array) error {
	switch c := a.(type) {
	case *array.Binary:
		return c.ValidateFull()
	case *array.LargeBinary:
		return c.ValidateFull()
	case *array.String: // the same offsets-and-bytes layout: check it as binary
		b := array.NewBinaryData(c.Data())
		defer b.Release()
		return b.ValidateFull()
	case *array.LargeString:
		b := array.NewLargeBinaryData(c.Data())
		defer b.Release()
		return b.ValidateFull()
	case *array.FixedSizeList:
		size := int64(c.DataType().(*arrow.FixedSizeListType).Len())
		if need := int64(c.Offset()+c.Len()) * size; int64(c.ListValues().Len()) < need {
			return fmt.Errorf("fixed-size list of %d needs %d child values, has %d", c.Len(), need, c.ListValues().Len())
		}
		return validateValues(c.ListValues())
	case array.ListLike:
		child := int64(c.ListValues().Len())
		for i := 0; i < c.Len(); i++ {
			lo, hi := c.ValueOffsets(i)
			if lo < 0 || hi < lo || hi > child {
				return fmt.Errorf("list offsets [%d, %d) of row %d outside %d child values", lo, hi, i, child)
			}
		}
		return validateValues(c.ListValues())
	case *array.Struct:
		for f := 0; f < c.NumField(); f++ {
			if c.Field(f).Len() < c.Len() {
				return fmt.Errorf("struct field %d has %d values for %d rows", f, c.Field(f).Len(), c.Len())
			}
			if err := validateValues(c.Field(f)); err != nil {
				return err
			}
		}
	case *array.Dictionary:
		n := c.Dictionary().Len()
		for i := 0; i < c.Len(); i++ {
			if c.IsValid(i) {
				if k := c.GetValueIndex(i); k < 0 || k >= n {
					return fmt.Errorf("dictionary index %d of row %d outside %d values", k, i, n)
				}
			}
		}
		return validateValues(c.Dictionary())
	}
	return nil
}

// Options set how File reads.
type Options struct {
	// BatchRows is the number of rows per record batch of Scan (default 1024).
	BatchRows int64
	// BufferSize, when positive, streams column chunks through a buffer of this many
	// bytes instead of reading each whole chunk into memory.
	BufferSize int64
	// Mem allocates the decoded arrays (default memory.DefaultAllocator).
	Mem memory.Allocator
	// Prefix starts every error of Open and of the File's methods, e.g. "encoders: ".
	Prefix string
}

// File is an open Parquet file.
type File struct {
	Path   string
	OS     *os.File            // the open file, for reads past arrow-go (Reader owns it)
	Reader *file.Reader        // the footer and the row groups
	Arrow  *pqarrow.FileReader // the Arrow view of Reader

	starts []int64 // starts[g] is the first row of row group g; starts[NumRowGroups] = NumRows
	prefix string
}

// Open opens the Parquet file at path and reads its footer and Arrow schema. A panic of
// the footer parser is an error wrapping ErrPanic.
func Open(path string, o Options) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s%w", o.Prefix, err)
	}
	pf := &File{Path: path, OS: f, prefix: o.Prefix}
	if err := pf.open(o); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return pf, nil
}

func (f *File) open(o Options) (err error) {
	defer f.recover(&err, f.Path)
	mem := o.Mem
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	props := parquet.NewReaderProperties(mem)
	if o.BufferSize > 0 {
		props.BufferedStreamEnabled = true
		props.BufferSize = o.BufferSize
	}
	if f.Reader, err = file.NewParquetReader(f.OS, file.WithReadProps(props)); err != nil {
		return f.errorf("read footer of %s: %w", f.Path, err)
	}
	batch := o.BatchRows
	if batch <= 0 {
		batch = 1024
	}
	if f.Arrow, err = pqarrow.NewFileReader(f.Reader, pqarrow.ArrowReadProperties{BatchSize: batch}, mem); err != nil {
		return f.errorf("read schema of %s: %w", f.Path, err)
	}
	st, err := f.OS.Stat()
	if err != nil {
		return f.errorf("read %s: %w", f.Path, err)
	}
	if err := f.checkChunks(st.Size()); err != nil {
		return err
	}
	md := f.Reader.MetaData()
	f.starts = make([]int64, md.NumRowGroups()+1)
	for g := 0; g < md.NumRowGroups(); g++ {
		n := md.RowGroup(g).NumRows()
		if n < 0 || f.starts[g]+n < f.starts[g] {
			return f.errorf("read footer of %s: %w: row group %d declares %d rows", f.Path, ErrDamaged, g, n)
		}
		f.starts[g+1] = f.starts[g] + n
	}
	if total := f.starts[len(f.starts)-1]; total != f.Reader.NumRows() {
		return f.errorf("read footer of %s: %w: its row groups hold %d rows, the footer declares %d", f.Path, ErrDamaged, total, f.Reader.NumRows())
	}
	return nil
}

// checkChunks checks the footer's column chunk locations against the file size, and calls
// every metadata accessor that opening a column reader calls. pqarrow opens the readers of
// a struct's children in goroutines of its own (an errgroup in FileReader.getReader), where
// no recover reaches: a panic of those accessors, or of ReaderProperties.GetStream on a
// negative chunk length (found by ingest's FuzzParquetSource), must happen here instead,
// or not at all. A length past the end of the file is refused too: arrow-go allocates
// the whole chunk before reading it.
func (f *File) checkChunks(size int64) error {
	md := f.Reader.MetaData()
	ncols := md.Schema.NumColumns()
	pir := f.Reader.GetPageIndexReader()
	for g := 0; g < md.NumRowGroups(); g++ {
		rg := md.RowGroup(g)
		if rg.NumColumns() != ncols {
			return f.errorf("read footer of %s: %w: row group %d has %d column chunks, the schema %d columns", f.Path, ErrDamaged, g, rg.NumColumns(), ncols)
		}
		if pir != nil {
			if _, err := pir.RowGroup(g); err != nil {
				return f.errorf("read footer of %s: row group %d: page index: %w", f.Path, g, err)
			}
		}
		for c := 0; c < ncols; c++ {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				return f.errorf("read footer of %s: row group %d, column %d: %w", f.Path, g, c, err)
			}
			start := cc.DataPageOffset()
			if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && start > cc.DictionaryPageOffset() {
				start = cc.DictionaryPageOffset()
			}
			n := cc.TotalCompressedSize()
			_ = cc.TotalUncompressedSize()
			_ = cc.NumValues()
			_ = cc.Compression()
			_ = cc.CryptoMetadata()
			if start < 0 || n < 0 || start > size || n > size-start {
				return f.errorf("read footer of %s: %w: row group %d, column %q: chunk of %d bytes at offset %d in a file of %d bytes",
					f.Path, ErrDamaged, g, md.Schema.Column(c).Path(), n, start, size)
			}
		}
	}
	return nil
}

// Close closes the file.
func (f *File) Close() error { return f.Reader.Close() }

// NumRows returns the number of rows the footer declares.
func (f *File) NumRows() int64 { return f.Reader.NumRows() }

// Schema returns the Arrow schema of the file.
func (f *File) Schema() (*arrow.Schema, error) { return f.Arrow.Schema() }

// Leaves returns the Parquet leaf column indices of the named top-level fields, which is
// what Scan (and pqarrow's readers) take.
func (f *File) Leaves(names ...string) ([]int, error) {
	var out []int
	var walk func(sf pqarrow.SchemaField)
	walk = func(sf pqarrow.SchemaField) {
		if sf.IsLeaf() {
			out = append(out, sf.ColIndex)
		}
		for _, c := range sf.Children {
			walk(c)
		}
	}
	for _, name := range names {
		found := false
		for _, sf := range f.Arrow.Manifest.Fields {
			if sf.Field.Name == name {
				walk(sf)
				found = true
				break
			}
		}
		if !found {
			return nil, f.errorf("%s has no column %q", f.Path, name)
		}
	}
	return out, nil
}

// where names the file and the row group holding row.
func (f *File) where(row int64) string {
	for g := 0; g+1 < len(f.starts); g++ {
		if row < f.starts[g+1] {
			return fmt.Sprintf("%s (row group %d, from row %d)", f.Path, g, row)
		}
	}
	return fmt.Sprintf("%s (after the last row group, row %d)", f.Path, row)
}

// Scan calls fn for each record batch of the given leaf columns (all when nil), in file
// order, in the calling goroutine. Every batch is validated before fn sees it; a reader
// panic, an invalid batch or a number of rows other than the footer's is an error naming
// the file and the row group. The batch is released after fn returns; an error of fn is
// returned as it is.
func (f *File) Scan(ctx context.Context, leaves []int, fn func(arrow.RecordBatch) error) error {
	rr, err := f.records(ctx, leaves)
	if err != nil {
		return err
	}
	defer rr.Release()
	want := f.NumRows()
	var row int64
	for {
		rec, err := f.next(rr, row)
		if err != nil {
			return err
		}
		if rec == nil {
			break
		}
		if row+rec.NumRows() > want {
			return f.errorf("read %s: %w: more rows than the %d its footer declares", f.where(row), ErrDamaged, want)
		}
		if err := fn(rec); err != nil {
			return err
		}
		row += rec.NumRows()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if row != want {
		return f.errorf("read %s: %w: %d rows, its footer declares %d", f.where(row), ErrDamaged, row, want)
	}
	return nil
}

func (f *File) records(ctx context.Context, leaves []int) (rr pqarrow.RecordReader, err error) {
	defer f.recover(&err, f.Path)
	rr, err = f.Arrow.GetRecordReader(ctx, leaves, nil)
	if err != nil {
		return nil, f.errorf("read %s: %w", f.Path, err)
	}
	return rr, nil
}

// next returns the next validated batch of rr, or nil at the end; row is the number of
// rows read before it.
func (f *File) next(rr pqarrow.RecordReader, row int64) (rec arrow.RecordBatch, err error) {
	defer f.recover(&err, f.where(row))
	if !rr.Next() {
		if err := rr.Err(); err != nil {
			return nil, f.errorf("read %s: %w", f.where(row), err)
		}
		return nil, nil
	}
	rec = rr.RecordBatch()
	if err := ValidateRecord(rec); err != nil {
		return nil, f.errorf("read %s: %w: %w", f.where(row), ErrDamaged, err)
	}
	return rec, nil
}

// ScanFile opens the Parquet file at path, calls fn for each record batch of the named
// top-level columns (all when cols is empty) as File.Scan does, and closes the file.
func ScanFile(ctx context.Context, path string, cols []string, o Options, fn func(arrow.RecordBatch) error) (err error) {
	f, err := Open(path, o)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	leaves, err := f.Leaves(cols...)
	if err != nil {
		return err
	}
	return f.Scan(ctx, leaves, fn)
}
