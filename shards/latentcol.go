package shards

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
)

// latentChunk is one row group's worth of a latent column, decoded below pqarrow: the
// column chunk's values are read in bulk with the typed column reader instead of through
// arrow builders, which for fixed_size_list<float16> (Parquet FIXED_LEN_BYTE_ARRAY(2))
// append value by value and dominate the cost of loading.
type latentChunk struct {
	size  int
	bits  []uint16  // float16 columns: bits[row*size+j]
	f32   []float32 // float32 columns: f32[row*size+j]
	valid []bool    // valid[row]; a null row decodes to zeros

	// Scratch reused across row groups.
	def, rep []int16
	flba     []parquet.FixedLenByteArray
	f32tmp   []float32
}

const levelBatch = 1 << 16

// readLatentChunk decodes leaf column leaf of row group rg, which has rows rows of a
// fixed_size_list<float16|float32> of c.size elements.
func readLatentChunk(pf *parquetFile, rg, leaf int, c loadCol, rows int64, buf *latentChunk) error {
	rgr := pf.Reader.RowGroup(rg)
	ccr, err := rgr.Column(leaf)
	if err != nil {
		return err
	}
	maxDef := ccr.Descriptor().MaxDefinitionLevel()
	n := int(rows) * c.size
	buf.size = c.size
	buf.valid = resize(buf.valid, int(rows))
	buf.def, buf.rep = resize(buf.def, levelBatch), resize(buf.rep, levelBatch)
	def, rep := buf.def, buf.rep
	var (
		levels []int16 // def and rep levels, kept from the first null on
		reps   []int16
		nulls  bool
		got    int
	)
	// track records the levels of a batch once a null has been seen. Before the first
	// null every level is a value and every row is full, so the levels of those values
	// are synthesised: a row starts at every size-th value.
	track := func(total int64, nv int) {
		if !nulls && nv == int(total) {
			return
		}
		if !nulls {
			nulls = true
			for i := 0; i < got; i++ {
				levels = append(levels, maxDef)
				reps = append(reps, int16(min(1, i%c.size)))
			}
		}
		levels, reps = append(levels, def[:total]...), append(reps, rep[:total]...)
	}
	switch r := ccr.(type) {
	case *file.FixedLenByteArrayColumnChunkReader:
		if !c.f16 || ccr.Descriptor().TypeLength() != 2 {
			return fmt.Errorf("column %s is not FIXED_LEN_BYTE_ARRAY(2) float16", c.name)
		}
		buf.bits = resize(buf.bits, n)
		buf.flba = resize(buf.flba, levelBatch)
		vals := buf.flba
		for r.HasNext() {
			// ReadBatchInPage returns values that alias the current page (ReadBatch
			// would clone each 2-byte value); they are consumed before the next call.
			total, nv, err := r.ReadBatchInPage(levelBatch, vals, def, rep)
			if err != nil {
				return err
			}
			if got+nv > n {
				return fmt.Errorf("column %s has more values than %d rows of %d", c.name, rows, c.size)
			}
			track(total, nv)
			for i, v := range vals[:nv] {
				buf.bits[got+i] = uint16(v[0]) | uint16(v[1])<<8
			}
			got += nv
		}
	case *file.Float32ColumnChunkReader:
		if c.f16 {
			return fmt.Errorf("column %s is float32 in Parquet but float16 in Arrow", c.name)
		}
		buf.f32 = resize(buf.f32, n)
		buf.f32tmp = resize(buf.f32tmp, levelBatch)
		vals := buf.f32tmp
		for r.HasNext() {
			total, nv, err := r.ReadBatch(levelBatch, vals, def, rep)
			if err != nil {
				return err
			}
			if got+nv > n {
				return fmt.Errorf("column %s has more values than %d rows of %d", c.name, rows, c.size)
			}
			track(total, nv)
			copy(buf.f32[got:], vals[:nv])
			got += nv
		}
	default:
		return fmt.Errorf("column %s has Parquet type %s", c.name, ccr.Descriptor().PhysicalType())
	}
	if !nulls {
		if got != n {
			return fmt.Errorf("column %s has %d values, want %d rows of %d", c.name, got, rows, c.size)
		}
		for i := range buf.valid {
			buf.valid[i] = true
		}
		return nil
	}
	// Some rows are null: walk the levels, moving each row's values into place.
	row, vi := -1, 0
	counts := make([]int, rows)
	starts := make([]int, rows)
	for k, d := range levels {
		if reps[k] == 0 {
			row++
			if row >= int(rows) {
				return fmt.Errorf("column %s has more than %d rows", c.name, rows)
			}
			starts[row] = vi
		}
		if d == maxDef {
			counts[row]++
			vi++
		}
	}
	for i := int(rows) - 1; i >= 0; i-- { // back to front: destinations are at or after sources
		buf.valid[i] = counts[i] == c.size
		if counts[i] != 0 && counts[i] != c.size {
			return fmt.Errorf("column %s row %d has %d of %d values (null elements)", c.name, i, counts[i], c.size)
		}
		dst := i * c.size
		if c.f16 {
			if buf.valid[i] {
				copy(buf.bits[dst:dst+c.size], buf.bits[starts[i]:starts[i]+c.size])
			} else {
				clear(buf.bits[dst : dst+c.size])
			}
		} else {
			if buf.valid[i] {
				copy(buf.f32[dst:dst+c.size], buf.f32[starts[i]:starts[i]+c.size])
			} else {
				clear(buf.f32[dst : dst+c.size])
			}
		}
	}
	return nil
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// uncompressedLatents returns writer properties that store the Parquet leaf of every
// fixed_size_list<float16|float32> column of sc (the latent columns the loader reads)
// without compression. Float latents are close to incompressible (zstd saves about 8% on
// float16 VAE-like latents, docs/shards.md) while decompressing them costs the loader
// more CPU than everything else it does, so the shard writer leaves them raw.
func uncompressedLatents(sc *arrow.Schema) []parquet.WriterProperty {
	var out []parquet.WriterProperty
	for _, f := range sc.Fields() {
		t, ok := f.Type.(*arrow.FixedSizeListType)
		if !ok || (t.Elem().ID() != arrow.FLOAT16 && t.Elem().ID() != arrow.FLOAT32) {
			continue
		}
		// pqarrow writes a fixed_size_list as a 3-level LIST: NAME.list.element.
		out = append(out, parquet.WithCompressionPath(parquet.ColumnPath{f.Name, "list", "element"}, compress.Codecs.Uncompressed))
	}
	return out
}
