package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

const (
	partsDir       = "parts"
	rejectsDir     = "rejects"
	progressDir    = "progress"
	progressFormat = 2
)

// PartRecord is one commit of a worker: the part and rejects files it wrote (either may be
// empty when the commit had no rows or no rejects), the file listing the units it completed,
// and their counts. The unit IDs live in a side file per commit (a JSON array of strings) so
// that neither memory nor the progress file grows with the corpus.
type PartRecord struct {
	Part      string `json:"part,omitempty"`    // file name under OUT/parts
	Rejects   string `json:"rejects,omitempty"` // file name under OUT/rejects
	Rows      int64  `json:"rows"`
	UnitsFile string `json:"units_file"` // file name under OUT/progress
	NumUnits  int    `json:"num_units"`
	Stats     Stats  `json:"stats"`
}

// Progress is a worker's progress file, OUT/progress/worker-W.json, rewritten atomically
// after every commit. A unit listed in it is complete: every candidate it held is in a
// committed part, a committed rejects file or a duplicate count.
type Progress struct {
	Format     int          `json:"format"`
	Worker     int          `json:"worker"`
	NumWorkers int          `json:"num_workers"`
	Parts      []PartRecord `json:"parts"`
	Done       bool         `json:"done"`    // the worker finished all its units
	Seconds    float64      `json:"seconds"` // wall time over all runs of this worker
}

// Total sums the stats of every commit, with the worker's seconds.
func (p *Progress) Total() Stats {
	var s Stats
	for _, r := range p.Parts {
		rs := r.Stats
		rs.Seconds = 0
		s.Add(rs)
	}
	s.Seconds = p.Seconds
	if s.RejectedByReason == nil {
		s.RejectedByReason = map[string]int64{}
	}
	return s
}

func progressPath(out string, worker int) string {
	return filepath.Join(out, progressDir, fmt.Sprintf("worker-%d.json", worker))
}

func readProgress(path string) (*Progress, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var p Progress
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("ingest: progress file %s: %w", path, err)
	}
	if p.Format != progressFormat {
		return nil, fmt.Errorf("ingest: progress file %s has format %d, want %d", path, p.Format, progressFormat)
	}
	return &p, nil
}

// loadProgress returns the worker's progress, or a fresh one when there is none.
func loadProgress(out string, worker, numWorkers int) (*Progress, bool, error) {
	p, err := readProgress(progressPath(out, worker))
	if errors.Is(err, os.ErrNotExist) {
		return &Progress{Format: progressFormat, Worker: worker, NumWorkers: numWorkers}, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if p.NumWorkers != numWorkers || p.Worker != worker {
		return nil, true, fmt.Errorf("ingest: %s was written by worker %d of %d, this run is worker %d of %d",
			progressPath(out, worker), p.Worker, p.NumWorkers, worker, numWorkers)
	}
	return p, true, nil
}

func (p *Progress) save(out string) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return writeFileAtomic(progressPath(out, p.Worker), b)
}

func errorsJoin(errs ...error) error { return errors.Join(errs...) }

// readUnits adds the unit IDs of a commit's side file to set.
func readUnits(out, name string, set map[string]bool) error {
	b, err := os.ReadFile(filepath.Join(out, progressDir, name))
	if err != nil {
		return fmt.Errorf("ingest: committed unit list: %w", err)
	}
	var ids []string
	if err := json.Unmarshal(b, &ids); err != nil {
		return fmt.Errorf("ingest: committed unit list %s: %w", name, err)
	}
	for _, id := range ids {
		set[id] = true
	}
	return nil
}
