package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/immkit/immkit/pipeline"
)

// A run reads lines, parses them as numbers with 4 workers keeping the input order, rejects
// the lines that are not numbers, and sums the rest in a Sink.
func Example() {
	lines := []string{"1", "2", "three", "4", "", "6"}
	rejects := &pipeline.MemRejects{}
	p := pipeline.New(context.Background(), pipeline.Config{Name: "sum", Workers: 4, Rejects: rejects})

	src := pipeline.Source(p, "read", func(ctx context.Context, emit *pipeline.Emitter[string]) error {
		for i, line := range lines {
			if err := emit.Emit("input.txt:"+strconv.Itoa(i+1), line); err != nil {
				return err
			}
		}
		return nil
	})
	nums := pipeline.Map(p, "parse", src, func(ctx context.Context, line string) (int, error) {
		if strings.TrimSpace(line) == "" {
			return 0, pipeline.Drop("empty")
		}
		n, err := strconv.Atoi(line)
		if err != nil {
			return 0, pipeline.Reject("not_a_number", err)
		}
		return n, nil
	}, pipeline.Ordered())
	total := 0
	pipeline.Sink(p, "sum", nums, func(ctx context.Context, it pipeline.Item[int]) error {
		total += it.Value
		fmt.Printf("#%d %s = %d\n", it.Seq, it.Source, it.Value)
		return nil
	})

	sum, err := p.Wait()
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("total", total)
	fmt.Printf("inputs %d = accepted %d + rejected %d + dropped %d\n", sum.Inputs, sum.Accepted, sum.Rejected, sum.Dropped)
	for _, r := range rejects.Rejects() {
		fmt.Println("reject:", r)
	}
	// Output:
	// #0 input.txt:1 = 1
	// #1 input.txt:2 = 2
	// #3 input.txt:4 = 4
	// #5 input.txt:6 = 6
	// total 13
	// inputs 6 = accepted 4 + rejected 1 + dropped 1
	// reject: parse: not_a_number: input.txt:3: strconv.Atoi: parsing "three": invalid syntax
}

// Partition picks this process's share of the inputs; the flags default from the
// Kubernetes Indexed Job or Slurm array environment.
func ExamplePartition() {
	part := pipeline.Partition{NumWorkers: 3, WorkerIndex: 1}
	if err := part.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	for _, path := range []string{"a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"} {
		fmt.Println(path, pipeline.Owner(path, part.NumWorkers), part.Owns(path))
	}
}
