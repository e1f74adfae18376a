package pipeline_test

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"testing"

	"github.com/immkit/immkit/pipeline"
	"github.com/spf13/pflag"
)

func envMap(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestPartitionFromEnv(t *testing.T) {
	cases := []struct {
		name    string
		env     []string
		n, i    int
		wantErr string
	}{
		{name: "none", n: 1, i: 0},
		{name: "k8s", env: []string{"JOB_COMPLETION_INDEX", "3", "JOB_COMPLETION_COUNT", "8"}, n: 8, i: 3},
		{name: "k8s without count", env: []string{"JOB_COMPLETION_INDEX", "0"}, n: 1, i: 0},
		{name: "slurm", env: []string{"SLURM_ARRAY_TASK_ID", "5", "SLURM_ARRAY_TASK_COUNT", "6"}, n: 6, i: 5},
		{name: "slurm min", env: []string{"SLURM_ARRAY_TASK_ID", "12", "SLURM_ARRAY_TASK_COUNT", "4", "SLURM_ARRAY_TASK_MIN", "10"}, n: 4, i: 2},
		{name: "slurm step", env: []string{"SLURM_ARRAY_TASK_ID", "7", "SLURM_ARRAY_TASK_COUNT", "4", "SLURM_ARRAY_TASK_MIN", "1", "SLURM_ARRAY_TASK_STEP", "2"}, n: 4, i: 3},
		{name: "k8s wins", env: []string{"JOB_COMPLETION_INDEX", "1", "JOB_COMPLETION_COUNT", "2", "SLURM_ARRAY_TASK_ID", "5", "SLURM_ARRAY_TASK_COUNT", "6"}, n: 2, i: 1},
		{name: "bad index", env: []string{"JOB_COMPLETION_INDEX", "x"}, wantErr: `JOB_COMPLETION_INDEX="x": not an integer`},
		{name: "bad slurm count", env: []string{"SLURM_ARRAY_TASK_ID", "1", "SLURM_ARRAY_TASK_COUNT", "two"}, wantErr: `SLURM_ARRAY_TASK_COUNT="two"`},
		{name: "slurm below min", env: []string{"SLURM_ARRAY_TASK_ID", "1", "SLURM_ARRAY_TASK_MIN", "2"}, wantErr: "SLURM_ARRAY_TASK_ID=1 is not in the array"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := pipeline.PartitionFromEnv(envMap(c.env...))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.NumWorkers != c.n || p.WorkerIndex != c.i {
				t.Fatalf("got %d/%d, want %d/%d", p.WorkerIndex, p.NumWorkers, c.i, c.n)
			}
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPartitionFlags(t *testing.T) {
	t.Setenv("JOB_COMPLETION_INDEX", "2")
	t.Setenv("JOB_COMPLETION_COUNT", "5")
	var p pipeline.Partition
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	p.AddFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if p.NumWorkers != 5 || p.WorkerIndex != 2 || p.Validate() != nil {
		t.Fatalf("env defaults: %+v", p)
	}
	if err := fs.Parse([]string{"--worker-index", "7"}); err != nil {
		t.Fatal(err)
	}
	err := p.Validate()
	if !errors.Is(err, pipeline.ErrPartition) || !strings.Contains(err.Error(), "--worker-index must be in [0, 5)") {
		t.Fatalf("index 7 of 5: %v", err)
	}
	if err := fs.Parse([]string{"--num-workers", "0", "--worker-index", "0"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "--num-workers must be >= 1") {
		t.Fatalf("0 workers: %v", err)
	}

	t.Setenv("JOB_COMPLETION_INDEX", "zz")
	var q pipeline.Partition
	q.AddFlags(pflag.NewFlagSet("y", pflag.ContinueOnError))
	if err := q.Validate(); err == nil || !strings.Contains(err.Error(), "JOB_COMPLETION_INDEX") {
		t.Fatalf("bad env: %v", err)
	}
}

func TestPartitionOwns(t *testing.T) {
	paths := make([]string, 5000)
	for i := range paths {
		paths[i] = fmt.Sprintf("images/class-%d/img_%05d.jpg", i%17, i)
	}
	for _, n := range []int{1, 2, 3, 7, 16} {
		counts := make([]int, n)
		for _, path := range paths {
			owners := 0
			for i := range n {
				if (pipeline.Partition{NumWorkers: n, WorkerIndex: i}).Owns(path) {
					owners++
					counts[i]++
				}
			}
			if owners != 1 {
				t.Fatalf("n=%d: %s has %d owners", n, path, owners)
			}
		}
		// a hash spreads the paths: every worker gets within 20% of its share
		for i, c := range counts {
			if share := len(paths) / n; c < share*8/10 || c > share*12/10 {
				t.Errorf("n=%d: worker %d owns %d of %d", n, i, c, len(paths))
			}
		}
	}
}

// TestOwnerStable pins the path -> worker assignment to FNV-1a 64 computed by hash/fnv:
// N workers on different machines and versions must agree on it.
func TestOwnerStable(t *testing.T) {
	paths := []string{"", "a", "images/cat/0001.jpg", "shards/train-00017.tar#000123.flac",
		"données/été.wav", "corpus.jsonl:41", strings.Repeat("x/", 300)}
	for _, path := range paths {
		h := fnv.New64a()
		h.Write([]byte(path))
		sum := h.Sum64()
		for _, n := range []int{2, 3, 10, 64, 1000} {
			want := int(sum % uint64(n))
			if got := pipeline.Owner(path, n); got != want {
				t.Errorf("Owner(%q, %d) = %d, want %d", path, n, got, want)
			}
		}
	}
	// and the published FNV-1a 64 test vectors ("" is the offset basis), so that a change
	// to both sides is noticed too
	for _, c := range []struct {
		path string
		n    int
		want int
	}{{"a", 10, 0xaf63dc4c8601ec8c % 10}, {"", 7, int(uint64(14695981039346656037) % 7)}} {
		if got := pipeline.Owner(c.path, c.n); got != c.want {
			t.Errorf("Owner(%q, %d) = %d, want %d", c.path, c.n, got, c.want)
		}
	}
}
