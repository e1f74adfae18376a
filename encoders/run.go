package encoders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/immkit/immkit/pipeline"
)

// Directories of an encode output, besides artefacts/ and encode.json.
const (
	PartsDir    = "parts"
	RejectsDir  = "rejects"
	ProgressDir = "progress"
)

// ErrOutputExists is returned when a worker's output exists and neither Resume nor
// Overwrite was asked for.
var ErrOutputExists = errors.New("encoders: output exists (use --resume to continue or --overwrite to replace it)")

// RejectSchema is the schema of OUT/rejects/*.parquet (the ingest rejects table).
var RejectSchema = arrow.NewSchema([]arrow.Field{
	{Name: "source", Type: arrow.BinaryTypes.String},
	{Name: "stage", Type: arrow.BinaryTypes.String},
	{Name: "reason", Type: arrow.BinaryTypes.String},
	{Name: "detail", Type: arrow.BinaryTypes.String},
}, nil)

// RunOptions configure one worker's encode run.
type RunOptions struct {
	In, Out string
	// Config is the requested config; Run applies its defaults.
	Config Config
	// Fit fits the learned encoders first when Out holds no fitted state.
	Fit bool
	// Resume skips the input parts this worker already committed.
	Resume bool
	// Overwrite deletes this worker's previous output (and refits when the config changed).
	Overwrite bool
	Partition pipeline.Partition
	Workers   int // encode goroutines; 0 = GOMAXPROCS
	Log       *slog.Logger
	Progress  io.Writer
	Quiet     bool
}

// UnitRecord is one committed input part: the part and rejects files written for it (under
// OUT/parts and OUT/rejects, same base name as the input; empty when none) and its counts.
type UnitRecord struct {
	Input            string           `json:"input"`
	Part             string           `json:"part,omitempty"`
	Rejects          string           `json:"rejects,omitempty"`
	Rows             int64            `json:"rows"`
	Rejected         int64            `json:"rejected"`
	RejectedByReason map[string]int64 `json:"rejected_by_reason,omitempty"`
}

// Progress is a worker's progress file OUT/progress/worker-W.json, rewritten atomically
// after each committed input part.
type Progress struct {
	Format     int          `json:"format"`
	Worker     int          `json:"worker"`
	NumWorkers int          `json:"num_workers"`
	Units      []UnitRecord `json:"units"`
	Done       bool         `json:"done"`
}

// Totals sums the committed units.
func (p *Progress) Totals() (rows, rejected int64, byReason map[string]int64) {
	byReason = map[string]int64{}
	for _, u := range p.Units {
		rows += u.Rows
		rejected += u.Rejected
		for k, v := range u.RejectedByReason {
			byReason[k] += v
		}
	}
	return rows, rejected, byReason
}

func progressPath(out string, w int) string {
	return filepath.Join(out, ProgressDir, fmt.Sprintf("worker-%d.json", w))
}

func loadProgress(out string, w, n int) (*Progress, error) {
	b, err := os.ReadFile(progressPath(out, w))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p Progress
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("encoders: progress file %s: %w", progressPath(out, w), err)
	}
	if p.Format != 1 || p.Worker != w || p.NumWorkers != n {
		return nil, fmt.Errorf("encoders: %s is worker %d of %d (format %d); this run is worker %d of %d",
			progressPath(out, w), p.Worker, p.NumWorkers, p.Format, w, n)
	}
	return &p, nil
}

func (p *Progress) save(out string) error {
	b, err := json.MarshalIndent(p, "", " ")
	if err != nil {
		return err
	}
	return writeFileAtomic(progressPath(out, p.Worker), append(b, '\n'))
}

// Result is what Run reports.
type Result struct {
	// Summary is the pipeline summary of this process's run (not of earlier runs resumed).
	Summary *pipeline.Summary
	// Progress holds every committed unit of this worker, over all runs.
	Progress *Progress
	State    *State
}

func configJSON(c Config) string {
	b, _ := json.Marshal(c)
	return string(b)
}

// Run encodes the input parts this worker owns (by a stable hash of the part's file name)
// into OUT/parts/<same name>, writing rejects to OUT/rejects/<same name> and committing
// each input part atomically in OUT/progress/worker-W.json. The output of a part depends
// only on the part and the fitted state, so any number of workers, and a killed run
// resumed with Resume, give the same files.
func Run(ctx context.Context, o RunOptions) (*Result, error) {
	c := o.Config.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	part := o.Partition
	if part.NumWorkers == 0 {
		part.NumWorkers = 1
	}
	if err := part.Validate(); err != nil {
		return nil, err
	}
	inputs, err := InputParts(o.In)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("encoders: %w", err)
	}
	prog, err := loadProgress(o.Out, part.WorkerIndex, part.NumWorkers)
	if err != nil && !o.Overwrite {
		return nil, err
	}
	if prog != nil && !o.Resume && !o.Overwrite {
		return nil, fmt.Errorf("%w: %s", ErrOutputExists, progressPath(o.Out, part.WorkerIndex))
	}
	if o.Overwrite {
		if prog != nil {
			for _, u := range prog.Units {
				if u.Part != "" {
					err = errors.Join(err, removeIfExists(filepath.Join(o.Out, PartsDir, u.Part)))
				}
				if u.Rejects != "" {
					err = errors.Join(err, removeIfExists(filepath.Join(o.Out, RejectsDir, u.Rejects)))
				}
			}
		}
		if err = errors.Join(err, removeIfExists(progressPath(o.Out, part.WorkerIndex))); err != nil {
			return nil, err
		}
		prog = nil
	}
	st, err := LoadState(o.Out)
	switch {
	case errors.Is(err, ErrNotFitted) && o.Fit:
		if prog != nil {
			return nil, fmt.Errorf("encoders: %s lists committed parts but %s is missing", progressPath(o.Out, part.WorkerIndex), StateFile)
		}
		st, err = Fit(ctx, o.In, o.Out, c)
	case err == nil && configJSON(st.Config) != configJSON(c):
		if o.Overwrite && o.Fit {
			st, err = Fit(ctx, o.In, o.Out, c)
		} else {
			err = fmt.Errorf("encoders: %s was fitted with config %s, this run asks for %s (use --overwrite to refit)",
				filepath.Join(o.Out, StateFile), configJSON(st.Config), configJSON(c))
		}
	}
	if err != nil {
		return nil, err
	}
	set, err := st.Open(o.Out)
	if err != nil {
		return nil, err
	}
	artsJSON, err := json.Marshal(st.Artefacts)
	if err != nil {
		return nil, err
	}
	schema := set.Schema(st.Artefacts, string(artsJSON))
	if prog == nil {
		prog = &Progress{Format: 1, Worker: part.WorkerIndex, NumWorkers: part.NumWorkers, Units: []UnitRecord{}}
	}
	prog.Done = false
	done := map[string]bool{}
	for _, u := range prog.Units {
		done[u.Input] = true
	}
	var units []string
	for _, in := range inputs {
		name := filepath.Base(in)
		if part.Owns(name) && !done[name] {
			units = append(units, in)
		}
	}
	for _, d := range []string{PartsDir, RejectsDir} {
		if err := os.MkdirAll(filepath.Join(o.Out, d), 0o755); err != nil {
			return nil, fmt.Errorf("encoders: %w", err)
		}
		// temporary files a killed run of this worker left behind
		for _, u := range units {
			if err := removeIfExists(filepath.Join(o.Out, d, filepath.Base(u)+".tmp")); err != nil {
				return nil, err
			}
		}
	}
	stale, _ := filepath.Glob(filepath.Join(o.Out, ProgressDir, fmt.Sprintf(".worker-%d.json.tmp*", part.WorkerIndex)))
	for _, f := range stale {
		if err := removeIfExists(f); err != nil {
			return nil, err
		}
	}

	p := pipeline.New(ctx, pipeline.Config{Name: "encode", Workers: o.Workers, Logger: o.Log, Progress: o.Progress, Quiet: o.Quiet})
	type job struct {
		unit int
		last bool
		s    Sample
	}
	type enc struct {
		unit int
		last bool
		key  string
		sum  [32]byte
		vals []any
		rej  *pipeline.RejectError
	}
	jobs := pipeline.Source(p, "read", func(ctx context.Context, emit *pipeline.Emitter[job]) error {
		for ui, path := range units {
			var held *job
			err := scanSamples(ctx, path, func(s *Sample) error {
				if held != nil {
					if err := emit.Emit(held.s.Source, *held); err != nil {
						return err
					}
				}
				cp := *s
				cp.Image = append([]byte(nil), s.Image...)
				cp.Audio = append([]byte(nil), s.Audio...)
				if s.Image == nil {
					cp.Image = nil
				}
				if s.Audio == nil {
					cp.Audio = nil
				}
				if cp.Source == "" {
					cp.Source = cp.Key
				}
				held = &job{unit: ui, s: cp}
				return nil
			})
			if err != nil {
				return err
			}
			if held != nil {
				held.last = true
				if err := emit.Emit(held.s.Source, *held); err != nil {
					return err
				}
			}
		}
		return nil
	})
	encoded := pipeline.Map(p, "encode", jobs, func(ctx context.Context, j job) (r enc, err error) {
		src := j.s.Source
		r = enc{unit: j.unit, last: j.last, key: j.s.Key, sum: j.s.SHA256}
		defer func() {
			if v := recover(); v != nil {
				r.vals, err = nil, nil
				r.rej = &pipeline.RejectError{Stage: "encode", Reason: pipeline.ReasonPanic, Source: src,
					Detail: fmt.Sprintf("%v\n%s", v, debug.Stack())}
			}
		}()
		vals, e := set.EncodeRow(&j.s)
		var re *pipeline.RejectError
		switch {
		case e == nil:
			r.vals = vals
		case errors.As(e, &re):
			cp := *re
			cp.Stage, cp.Source = "encode", src
			if cp.Detail == "" && cp.Err != nil {
				cp.Detail = cp.Err.Error()
			}
			r.rej = &cp
		default:
			return r, pipeline.Fatal(fmt.Errorf("encoders: %s: %w", src, e))
		}
		return r, nil
	}, pipeline.Ordered())

	var w *partWriter
	var rejects []*pipeline.RejectError
	defer func() {
		if w != nil {
			_ = w.abort() // a failed run leaves only temporary files, removed here
		}
	}()
	pipeline.Sink(p, "write", encoded, func(ctx context.Context, it pipeline.Item[enc]) error {
		r := it.Value
		name := filepath.Base(units[r.unit])
		if r.rej != nil {
			rejects = append(rejects, r.rej)
		} else {
			if w == nil {
				var err error
				if w, err = newPartWriter(filepath.Join(o.Out, PartsDir, name), schema, c.RowGroupRows); err != nil {
					return err
				}
			}
			if err := w.append(r.key, r.sum, r.vals); err != nil {
				return err
			}
		}
		if r.last {
			rec := UnitRecord{Input: name}
			if len(rejects) > 0 {
				rec.Rejects, rec.Rejected = name, int64(len(rejects))
				rec.RejectedByReason = map[string]int64{}
				for _, x := range rejects {
					rec.RejectedByReason[x.Reason]++
				}
				if err := writeRejects(filepath.Join(o.Out, RejectsDir, name), rejects); err != nil {
					return err
				}
			} else if err := removeIfExists(filepath.Join(o.Out, RejectsDir, name)); err != nil {
				return err
			}
			if w != nil {
				rec.Part, rec.Rows = name, w.rows
				err := w.commit()
				w = nil
				if err != nil {
					return err
				}
			}
			prog.Units = append(prog.Units, rec)
			rejects = nil
			if err := prog.save(o.Out); err != nil {
				return err
			}
		}
		if r.rej != nil {
			return r.rej
		}
		return nil
	})
	sum, err := p.Wait()
	res := &Result{Summary: sum, Progress: prog, State: st}
	if err != nil {
		return res, err
	}
	prog.Done = true
	return res, prog.save(o.Out)
}

// writeRejects writes a rejects table atomically.
func writeRejects(path string, rs []*pipeline.RejectError) error {
	b := array.NewRecordBuilder(memory.DefaultAllocator, RejectSchema)
	defer b.Release()
	for _, r := range rs {
		detail := r.Detail
		if detail == "" && r.Err != nil {
			detail = r.Err.Error()
		}
		for i, v := range []string{r.Source, r.Stage, r.Reason, detail} {
			b.Field(i).(*array.StringBuilder).Append(v)
		}
	}
	pw, err := newPartWriter(path, RejectSchema, 1<<20)
	if err != nil {
		return err
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := pw.w.Write(rec); err != nil {
		return errors.Join(err, pw.abort())
	}
	pw.b.Release()
	if err := errors.Join(pw.w.Close(), syncAndRename(pw.tmp, pw.path)); err != nil {
		return errors.Join(fmt.Errorf("encoders: write rejects %s: %w", path, err), removeIfExists(pw.tmp))
	}
	return nil
}
