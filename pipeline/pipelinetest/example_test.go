package pipelinetest_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/immkit/immkit/pipeline"
	"github.com/immkit/immkit/pipeline/pipelinetest"
)

// shout is the stage under test: it upper-cases the text column of a batch and rejects
// batches with an empty key.
func shout(_ context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	keys := rec.Column(0).(*array.String)
	texts := rec.Column(1).(*array.String)
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	for i := 0; i < texts.Len(); i++ {
		if keys.Value(i) == "" {
			return nil, pipeline.Rejectf("empty_key", "row %d", i)
		}
		if texts.IsNull(i) {
			b.AppendNull()
		} else {
			b.Append(strings.ToUpper(texts.Value(i)))
		}
	}
	text := b.NewArray()
	defer text.Release()
	return array.NewRecordBatch(rec.Schema(), []arrow.Array{rec.Column(0), text}, rec.NumRows()), nil
}

// Build two small batches from JSON rows, run one stage over them in a real pipeline, and
// print the output in the golden-file format (in a test: pipelinetest.Golden).
func Example() {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "key", Type: arrow.BinaryTypes.String},
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	good, _ := pipelinetest.NewRecord(schema, `[{"key": "a", "text": "hello"}, {"key": "b", "text": null}]`)
	bad, _ := pipelinetest.NewRecord(schema, `[{"key": "", "text": "no key"}]`)
	defer good.Release()
	defer bad.Release()

	res, err := pipelinetest.RunMap(context.Background(), []arrow.RecordBatch{good, bad}, shout)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := pipelinetest.WriteJSONL(os.Stdout, res.Values...); err != nil {
		fmt.Println(err)
	}
	for _, r := range res.Rejects {
		fmt.Println("reject:", r)
	}
	fmt.Printf("inputs %d accepted %d rejected %d\n", res.Summary.Inputs, res.Summary.Accepted, res.Summary.Rejected)
	// Output:
	// {"schema":[{"name":"key","type":"utf8","nullable":false},{"name":"text","type":"utf8","nullable":true}]}
	// {"key":"a","text":"HELLO"}
	// {"key":"b","text":null}
	// reject: stage: empty_key: input[1]: row 0
	// inputs 2 accepted 1 rejected 1
}
