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
//     and the row group (and the column when one is at fault).
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
		*err = fmt.Errorf("read %s: %w (a damaged Parquet file?): %v", what, ErrPanic, r)
	}
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
}

// File is an open Parquet file.
type File struct {
	Path   string
	OS     *os.File            // the open file, for reads past arrow-go (Reader owns it)
	Reader *file.Reader        // the footer and the row groups
	Arrow  *pqarrow.FileReader // the Arrow view of Reader

	starts []int64 // starts[g] is the first row of row group g; starts[NumRowGroups] = NumRows
}

// Open opens the Parquet file at path and reads its footer and Arrow schema. A panic of
// the footer parser is an error wrapping ErrPanic.
func Open(path string, o Options) (pf *File, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, f.Close())
		}
	}()
	defer Recover(&err, path)
	mem := o.Mem
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	props := parquet.NewReaderProperties(mem)
	if o.BufferSize > 0 {
		props.BufferedStreamEnabled = true
		props.BufferSize = o.BufferSize
	}
	pr, err := file.NewParquetReader(f, file.WithReadProps(props))
	if err != nil {
		return nil, fmt.Errorf("read footer of %s: %w", path, err)
	}
	batch := o.BatchRows
	if batch <= 0 {
		batch = 1024
	}
	fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{BatchSize: batch}, mem)
	if err != nil {
		return nil, fmt.Errorf("read schema of %s: %w", path, err)
	}
	md := pr.MetaData()
	starts := make([]int64, md.NumRowGroups()+1)
	for g := 0; g < md.NumRowGroups(); g++ {
		n := md.RowGroup(g).NumRows()
		if n < 0 || starts[g]+n < starts[g] {
			return nil, fmt.Errorf("read footer of %s: %w: row group %d declares %d rows", path, ErrDamaged, g, n)
		}
		starts[g+1] = starts[g] + n
	}
	if starts[len(starts)-1] != pr.NumRows() {
		return nil, fmt.Errorf("read footer of %s: %w: its row groups hold %d rows, the footer declares %d", path, ErrDamaged, starts[len(starts)-1], pr.NumRows())
	}
	return &File{Path: path, OS: f, Reader: pr, Arrow: fr, starts: starts}, nil
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
			return nil, fmt.Errorf("%s has no column %q", f.Path, name)
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
			return fmt.Errorf("read %s: %w: more rows than the %d its footer declares", f.where(row), ErrDamaged, want)
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
		return fmt.Errorf("read %s: %w: %d rows, its footer declares %d", f.where(row), ErrDamaged, row, want)
	}
	return nil
}

func (f *File) records(ctx context.Context, leaves []int) (rr pqarrow.RecordReader, err error) {
	defer Recover(&err, f.Path)
	rr, err = f.Arrow.GetRecordReader(ctx, leaves, nil)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Path, err)
	}
	return rr, nil
}

// next returns the next validated batch of rr, or nil at the end; row is the number of
// rows read before it.
func (f *File) next(rr pqarrow.RecordReader, row int64) (rec arrow.RecordBatch, err error) {
	defer Recover(&err, f.where(row))
	if !rr.Next() {
		if err := rr.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", f.where(row), err)
		}
		return nil, nil
	}
	rec = rr.RecordBatch()
	if err := ValidateRecord(rec); err != nil {
		return nil, fmt.Errorf("read %s: %w: %w", f.where(row), ErrDamaged, err)
	}
	return rec, nil
}
