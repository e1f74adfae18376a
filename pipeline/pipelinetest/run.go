package pipelinetest

import (
	"context"
	"fmt"
	"sort"

	"github.com/immkit/immkit/pipeline"
)

// Result is what a test run produced.
type Result[T any] struct {
	Items   []pipeline.Item[T]      // accepted outputs, sorted by Seq (input position)
	Values  []T                     // the values of Items, in the same order
	Rejects []*pipeline.RejectError // every reject, in the order they were recorded
	Summary *pipeline.Summary
}

// Run feeds inputs through the stages that build adds after a Source, collects what comes
// out in a Sink and returns it with the rejects and the summary. Input i has Seq i and
// source "input[i]". The pipeline runs with 4 workers per stage (so that stages meet
// concurrency even on one CPU) and a MemRejects sink. The error is Wait's error.
func Run[In, Out any](ctx context.Context, inputs []In, build func(p *pipeline.Pipeline, in <-chan pipeline.Item[In]) <-chan pipeline.Item[Out]) (*Result[Out], error) {
	rejects := &pipeline.MemRejects{}
	p := pipeline.New(ctx, pipeline.Config{Name: "pipelinetest", Workers: 4, Rejects: rejects})
	src := pipeline.Source(p, "inputs", func(ctx context.Context, e *pipeline.Emitter[In]) error {
		for i, v := range inputs {
			if err := e.Emit(fmt.Sprintf("input[%d]", i), v); err != nil {
				return err
			}
		}
		return nil
	})
	res := &Result[Out]{}
	pipeline.Sink(p, "collect", build(p, src), func(_ context.Context, it pipeline.Item[Out]) error {
		res.Items = append(res.Items, it)
		return nil
	})
	sum, err := p.Wait()
	sort.SliceStable(res.Items, func(i, j int) bool { return res.Items[i].Seq < res.Items[j].Seq })
	for _, it := range res.Items {
		res.Values = append(res.Values, it.Value)
	}
	res.Rejects = rejects.Rejects()
	res.Summary = sum
	return res, err
}

// RunMap runs one Map stage named "stage" with function fn over inputs (see Run).
func RunMap[In, Out any](ctx context.Context, inputs []In, fn func(context.Context, In) (Out, error), opts ...pipeline.Option) (*Result[Out], error) {
	return Run(ctx, inputs, func(p *pipeline.Pipeline, in <-chan pipeline.Item[In]) <-chan pipeline.Item[Out] {
		return pipeline.Map(p, "stage", in, fn, opts...)
	})
}
