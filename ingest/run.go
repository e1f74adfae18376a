package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/immkit/immkit/pipeline"
)

// Config is one worker's ingest run.
type Config struct {
	Sources    []string // command-line source arguments
	Out        string
	Source     SourceOptions
	Probe      ProbeOptions
	Part       PartOptions
	Dedup      bool
	Resume     bool
	Worker     int
	NumWorkers int
	// Owns reports whether this worker ingests the unit with the given ID; nil owns all.
	Owns func(id string) bool
	// Probers is the number of goroutines probing candidates (0: 1).
	Probers int
	Log     *slog.Logger
	// ProgressOut is where progress bars go when it is a terminal; Quiet silences progress.
	ProgressOut io.Writer
	Quiet       bool
	// OnItem, when set, is called by the writer goroutine after each input is accounted.
	OnItem func(bytesIn int64, rejected bool)
}

// ErrOutputExists is returned when OUT already holds this worker's output and Resume is off.
var ErrOutputExists = errors.New("ingest: output directory already holds this worker's parts (pass --resume to continue, or use an empty directory)")

// Run ingests the units this worker owns, appending to the worker's committed output when
// resuming, and returns the worker's totals over all its runs (this one's Seconds added).
func Run(ctx context.Context, cfg Config) (Stats, error) {
	start := time.Now()
	if cfg.NumWorkers <= 0 {
		cfg.NumWorkers = 1
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Source.Validate(); err != nil {
		return Stats{}, err
	}
	// The output may lie inside a source tree: create it first so that the walk can skip it.
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return Stats{}, fmt.Errorf("ingest: create output: %w", err)
	}
	cfg.Source.Skip = append(cfg.Source.Skip, cfg.Out)
	var sources []Source
	for _, a := range cfg.Sources {
		s, err := OpenSource(a, &cfg.Source)
		if err != nil {
			return Stats{}, err
		}
		sources = append(sources, s)
	}
	prog, committed, seen, err := prepareOut(cfg)
	if err != nil {
		return Stats{}, err
	}
	baseSeconds := prog.Seconds
	pw := newPartWriter(cfg.Out, cfg.Part, prog)
	pw.onCommit = func() { prog.Seconds = baseSeconds + time.Since(start).Seconds() }
	if !cfg.Dedup {
		seen = nil
	}
	sink := &sampleSink{pw: pw, seen: seen, onItem: cfg.OnItem}
	err = process(ctx, cfg, sources, committed, sink)
	if err == nil {
		err = pw.Commit()
	}
	if err != nil {
		pw.Abort()
		return prog.Total(), err
	}
	prog.Done = true
	prog.Seconds = baseSeconds + time.Since(start).Seconds()
	if err := prog.save(cfg.Out); err != nil {
		return prog.Total(), err
	}
	total := prog.Total()
	return total, total.Check()
}

// sampleSink is the single writer goroutine's end of the run: dedup, then the part writer.
type sampleSink struct {
	pw     *PartWriter
	seen   *hashSet // nil without dedup
	onItem func(int64, bool)
}

func (k *sampleSink) take(s *Sample, rej *Reject, bytesIn int64) error {
	if k.onItem != nil {
		defer k.onItem(bytesIn, rej != nil)
	}
	if rej != nil {
		k.pw.AddReject(rej, bytesIn)
		return nil
	}
	if k.seen != nil {
		if k.seen.Has(s.SHA256) {
			k.pw.AddDuplicate(bytesIn)
			return nil
		}
		k.seen.Add(s.SHA256)
	}
	return k.pw.AddSample(s)
}

// prepareOut creates the output layout, loads the worker's progress, removes files of this
// worker that no commit lists (left by a killed run), and rebuilds the set of committed
// units and the dedup set from the committed parts.
func prepareOut(cfg Config) (*Progress, map[string]bool, *hashSet, error) {
	for _, d := range []string{partsDir, rejectsDir, progressDir} {
		if err := os.MkdirAll(filepath.Join(cfg.Out, d), 0o755); err != nil {
			return nil, nil, nil, fmt.Errorf("ingest: create output: %w", err)
		}
	}
	prog, existed, err := loadProgress(cfg.Out, cfg.Worker, cfg.NumWorkers)
	if err != nil {
		return nil, nil, nil, err
	}
	listed := map[string]bool{}
	for _, r := range prog.Parts {
		listed[r.Part] = true
		listed[r.Rejects] = true
		listed[r.UnitsFile] = true
	}
	var stray []string
	for _, d := range []string{partsDir, rejectsDir, progressDir} {
		ents, err := os.ReadDir(filepath.Join(cfg.Out, d))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("ingest: list output: %w", err)
		}
		for _, e := range ents {
			n := strings.TrimPrefix(e.Name(), ".tmp-")
			mine := strings.HasPrefix(n, fmt.Sprintf("part-%d-", cfg.Worker)) || strings.HasPrefix(n, fmt.Sprintf("rejects-%d-", cfg.Worker)) ||
				strings.HasPrefix(n, fmt.Sprintf("units-%d-", cfg.Worker)) || strings.HasPrefix(n, fmt.Sprintf("worker-%d.json-", cfg.Worker))
			if mine && !listed[e.Name()] {
				stray = append(stray, filepath.Join(cfg.Out, d, e.Name()))
			}
		}
	}
	if (existed || len(stray) > 0) && !cfg.Resume {
		return nil, nil, nil, ErrOutputExists
	}
	for _, p := range stray {
		if err := os.Remove(p); err != nil {
			return nil, nil, nil, fmt.Errorf("ingest: remove uncommitted %s: %w", p, err)
		}
	}
	prog.Done = false
	committed := map[string]bool{}
	seen := newHashSet()
	for _, r := range prog.Parts {
		if err := readUnits(cfg.Out, r.UnitsFile, committed); err != nil {
			return nil, nil, nil, err
		}
		if r.Part == "" {
			continue
		}
		if err := readHashes(filepath.Join(cfg.Out, partsDir, r.Part), seen); err != nil {
			return nil, nil, nil, err
		}
	}
	return prog, committed, seen, nil
}

// readHashes adds the sha256 column of a part to seen.
func readHashes(path string, seen *hashSet) error {
	return ScanParquet(path, []string{ColSHA256}, 8192, func(rec arrow.RecordBatch) error {
		col, ok := rec.Column(0).(*array.Binary)
		if !ok {
			return fmt.Errorf("ingest: %s: sha256 column is %s, want binary (a part from an older immkit? re-run ingest)", path, rec.Column(0).DataType())
		}
		for i := 0; i < col.Len(); i++ {
			var h [32]byte
			if len(col.Value(i)) != len(h) {
				return fmt.Errorf("ingest: %s: sha256 of row %d has %d bytes, want 32", path, i, len(col.Value(i)))
			}
			copy(h[:], col.Value(i))
			seen.Add(h)
		}
		return nil
	})
}

// work is what the read stage sends: a candidate, or (c == nil) the end of a unit.
type work struct {
	unit string
	c    *Candidate
}

// result is what the probe stage sends on: a sample or a reject, or the end of a unit.
// Rejects travel in order with the samples (instead of through the engine's reject sink)
// so that they are committed together with the units they belong to.
type result struct {
	unit    string
	end     bool
	s       *Sample
	rej     *Reject
	bytesIn int64
}

// process runs the sources through the probes into the sink on the pipeline engine:
// one reading goroutine, an ordered pool of probers, one writer.
func process(ctx context.Context, cfg Config, sources []Source, committed map[string]bool, sink *sampleSink) error {
	p := pipeline.New(ctx, pipeline.Config{Name: "ingest", Workers: max(cfg.Probers, 1), Logger: cfg.Log,
		Progress: cfg.ProgressOut, Quiet: cfg.Quiet})
	items := pipeline.Source(p, "read", func(ctx context.Context, emit *pipeline.Emitter[work]) error {
		for _, src := range sources {
			err := src.Units(ctx, func(u Unit) error {
				if committed[u.ID] || (cfg.Owns != nil && !cfg.Owns(u.Part)) {
					return nil
				}
				err := u.Candidates(ctx, func(c *Candidate) error {
					return emit.Emit(c.Source, work{unit: u.ID, c: c})
				})
				if err != nil {
					return err
				}
				return emit.Emit(u.ID, work{unit: u.ID})
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	probed := pipeline.Map(p, "probe", items, func(_ context.Context, w work) (result, error) {
		if w.c == nil {
			return result{unit: w.unit, end: true}, nil
		}
		s, rej, n := cfg.Probe.Probe(w.c)
		return result{unit: w.unit, s: s, rej: rej, bytesIn: n}, nil
	}, pipeline.Ordered(), pipeline.Bytes(func(v any) int64 { return v.(result).bytesIn }))
	pipeline.Sink(p, "write", probed, func(_ context.Context, it pipeline.Item[result]) error {
		r := it.Value
		if r.end {
			return sink.pw.EndUnit(r.unit)
		}
		return sink.take(r.s, r.rej, r.bytesIn)
	})
	_, err := p.Wait()
	return err
}
