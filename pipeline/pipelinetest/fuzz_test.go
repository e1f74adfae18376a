package pipelinetest_test

import (
	"os"
	"testing"

	"github.com/immkit/immkit/pipeline/pipelinetest"
)

// FuzzDiffJSONL feeds arbitrary text as golden files: DiffJSONL must answer with an error
// or nil, never panic, and a table always equals itself.
func FuzzDiffJSONL(f *testing.F) {
	seed, err := os.ReadFile("testdata/caption_stats.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed, seed, 0.0)
	f.Add(seed, []byte(`{"schema":[]}`+"\n{}\n"), 1e-6)
	f.Add([]byte("{\"schema\":[{\"name\":\"a\",\"type\":\"int32\"}]}\n{\"a\":[1,{\"b\":2}]}\n"), []byte("{\"schema\":[{\"name\":\"a\",\"type\":\"int32\"}]}\n{\"a\":[1,{\"b\":3}]}\n"), 0.5)
	f.Fuzz(func(t *testing.T, got, want []byte, tol float64) {
		_ = pipelinetest.DiffJSONLApprox(got, want, tol)
		if err := pipelinetest.DiffJSONL(seed, seed); err != nil {
			t.Fatal(err)
		}
	})
}
