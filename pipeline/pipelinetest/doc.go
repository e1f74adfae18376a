// Package pipelinetest helps test pipeline stages the way net/http/httptest helps test
// HTTP handlers: build small Arrow record batches and Parquet fixture files inside a test,
// run one stage or a whole pipeline over them, and compare the output table with a golden
// file under testdata/.
//
// Building inputs:
//
//	rec := pipelinetest.Record(t, schema, `[{"key": "a", "text": "hi"}, {"key": "b", "text": null}]`)
//	path := pipelinetest.WriteParquet(t, "in.parquet", rec) // zstd, in t.TempDir()
//	tbl := pipelinetest.ReadParquet(t, path)
//
// Running stages (a real pipeline.Pipeline with a MemRejects sink):
//
//	res, err := pipelinetest.RunMap(ctx, []arrow.RecordBatch{rec}, myStage)
//	// res.Values in input order, res.Rejects, res.Summary
//
// Golden files hold one JSON object per row (columns in schema order) after a first line
// describing the schema, so that they read well in a diff and in code review:
//
//	pipelinetest.Golden(t, "testdata/mystage.jsonl", res.Values...)
//
// A mismatch fails the test with the first differing row and column by name (and the
// element inside a list or struct); GoldenApprox compares numbers with a tolerance. Equal
// compares two tables the same way without a file. Allocator gives a stage under test an
// Arrow allocator that fails the test for every buffer left unreleased. Run the test
// with -update to rewrite the golden files (go test ./ingest/ -run TestX -update). This
// package registers the -update flag on the command line flag set of any test binary that
// imports it (unless one is registered already); such a test package must not declare its
// own -update flag and can read it with Update().
package pipelinetest
