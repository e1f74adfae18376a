// Package pipeline is immkit's streaming stage engine: typed stages connected by bounded
// channels, each with a fixed pool of worker goroutines, run under one errgroup.
//
// A run is a Pipeline. New starts it; Source, Map and Sink add stages and start their
// goroutines; Wait waits for them and returns a Summary:
//
//	p := pipeline.New(ctx, pipeline.Config{Name: "ingest", Rejects: sink, Logger: log})
//	paths := pipeline.Source(p, "list", func(ctx context.Context, emit *pipeline.Emitter[string]) error {
//		for _, path := range inputs {
//			if err := emit.Emit(path, path); err != nil {
//				return err
//			}
//		}
//		return nil
//	})
//	decoded := pipeline.Map(p, "decode", paths, decode, pipeline.Ordered())
//	pipeline.Sink(p, "write", decoded, func(ctx context.Context, it pipeline.Item[Sample]) error {
//		return w.Write(it.Value) // an error here is an output failure: the run stops
//	})
//	sum, err := p.Wait()
//
// Values travel as Item[T]: the value, its sequence number Seq (emission order of the
// Source) and its Source string (a path or "archive.tar#member") used in rejects.
//
// # Errors, rejects and drops
//
// A bad item is a reject, not a failure: a Map function returns Reject(reason, err) or
// Rejectf (a *RejectError), the engine fills in the stage and source, counts it by stage
// and reason, writes it to Config.Rejects (a RejectSink; MemRejects and JSONLRejects are
// provided) and goes on. A panic inside a Map function becomes a reject with reason
// "panic". A plain error from a Map function rejects with reason "error"; Fatal(err)
// stops the run instead. Errors of Source and Sink functions stop the run: they are input
// and output failures. A stage may leave an item out on purpose with Drop(reason), e.g. a
// duplicate. Every input ends as exactly one of accepted (a Sink returned nil), rejected
// or dropped; Wait checks inputs = accepted + rejected + dropped.
//
// # Concurrency and bounds
//
// Stages follow the errgroup pipeline pattern: every producer closes its output channel
// when done, every send and receive selects on the run context, and the first fatal error
// cancels the context so that every goroutine returns. Wait waits for stage functions that
// are running, so long-running ones should watch their ctx argument. Memory is bounded: a stage holds at
// most Workers items (unordered) or Window items (ordered) plus its output channel's
// capacity (Buffer). There are no unbounded queues.
//
// An Ordered (or Window) Map stage emits results in the order it received its inputs, so a
// chain of ordered stages after a Source keeps Seq order. See Window for the bound.
//
// # Metrics, progress and summary
//
// Every stage counts items in and out, rejects, drops, bytes (Bytes option), busy time,
// output queue depth (current and peak) and items in flight (current and peak); Metrics
// returns a snapshot at any time. While a run goes, Config.Progress shows one line per stage
// with mpb when it is a terminal, or Config.Logger gets one line per stage every LogEvery;
// Config.Quiet silences both. Summary is the JSON document of --stats-json.
//
// # Partitioning
//
// Partition splits inputs over processes by a stable hash of their path (Owner), with
// --num-workers/--worker-index flags whose defaults come from Kubernetes Indexed Jobs and
// Slurm job arrays (PartitionFromEnv).
package pipeline
