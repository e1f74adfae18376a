package shards

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// rowSizes returns, for every row of rec, an estimate of its uncompressed size in bytes:
// value bytes of every column (fixed-width values, string and binary lengths plus the
// 4-byte length prefix Parquet's BYTE_ARRAY encoding stores, list children), plus one byte
// per column. It depends only on the row's values, so cutting row
// groups and shards by it is deterministic.
func rowSizes(rec arrow.RecordBatch) []int64 {
	n := int(rec.NumRows())
	out := make([]int64, n)
	for _, col := range rec.Columns() {
		addSizes(col, out)
	}
	for i := range out {
		out[i] += rec.NumCols()
	}
	return out
}

// addSizes adds the per-row value size of arr to out (len(out) == arr.Len()).
func addSizes(arr arrow.Array, out []int64) {
	switch a := arr.(type) {
	case interface{ ValueLen(int) int }: // string and binary arrays, small and large
		for i := range out {
			out[i] += 4 + int64(a.ValueLen(i))
		}
	case *array.Struct:
		for f := 0; f < a.NumField(); f++ {
			addSizes(a.Field(f), out)
		}
	case array.ListLike:
		child := childSizes(a.ListValues())
		for i := range out {
			lo, hi := a.ValueOffsets(i)
			if hi <= int64(len(child)-1) && lo <= hi {
				out[i] += child[hi] - child[lo]
			}
		}
	default:
		w := 8
		if fw, ok := arr.DataType().(arrow.FixedWidthDataType); ok {
			w = (fw.BitWidth() + 7) / 8
		}
		for i := range out {
			out[i] += int64(w)
		}
	}
}

// childSizes returns prefix sums of the per-element sizes of a list's child array, indexed
// by absolute child position (the child array is not sliced).
func childSizes(child arrow.Array) []int64 {
	per := make([]int64, child.Len())
	addSizes(child, per)
	prefix := make([]int64, len(per)+1)
	for i, v := range per {
		prefix[i+1] = prefix[i] + v
	}
	return prefix
}
