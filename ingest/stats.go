package ingest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/immkit/immkit/internal/flock"
)

// Stats count what a run did. Invariant: Inputs = Samples + Duplicates + Rejected.
type Stats struct {
	Inputs           int64            `json:"inputs"`
	Samples          int64            `json:"samples"`
	Duplicates       int64            `json:"duplicates"`
	Rejected         int64            `json:"rejected"`
	RejectedByReason map[string]int64 `json:"rejected_by_reason"`
	BytesIn          int64            `json:"bytes_in"`  // bytes read from the inputs
	BytesOut         int64            `json:"bytes_out"` // bytes of committed part files
	Seconds          float64          `json:"seconds"`   // wall time (the longest worker when merged)
	Modalities       Modalities       `json:"modalities"`
}

// Modalities counts the samples holding each modality.
type Modalities struct {
	Image int64 `json:"image"`
	Audio int64 `json:"audio"`
	Text  int64 `json:"text"`
	Label int64 `json:"label"`
}

// Add accumulates o into s; Seconds are summed (a worker's runs follow each other).
func (s *Stats) Add(o Stats) {
	s.Inputs += o.Inputs
	s.Samples += o.Samples
	s.Duplicates += o.Duplicates
	s.Rejected += o.Rejected
	for k, v := range o.RejectedByReason {
		if s.RejectedByReason == nil {
			s.RejectedByReason = map[string]int64{}
		}
		s.RejectedByReason[k] += v
	}
	s.BytesIn += o.BytesIn
	s.BytesOut += o.BytesOut
	s.Seconds += o.Seconds
	s.Modalities.Image += o.Modalities.Image
	s.Modalities.Audio += o.Modalities.Audio
	s.Modalities.Text += o.Modalities.Text
	s.Modalities.Label += o.Modalities.Label
}

// Check verifies the accounting invariant.
func (s *Stats) Check() error {
	if s.Inputs != s.Samples+s.Duplicates+s.Rejected {
		return fmt.Errorf("ingest: accounting broken: inputs %d != samples %d + duplicates %d + rejected %d",
			s.Inputs, s.Samples, s.Duplicates, s.Rejected)
	}
	return nil
}

// RunStats is the content of OUT/ingest-stats.json: the totals over every worker whose
// progress file is in OUT, and which workers have finished.
type RunStats struct {
	Stats
	NumWorkers  int   `json:"num_workers"`
	WorkersDone []int `json:"workers_done"`
	Complete    bool  `json:"complete"` // every worker finished
	Parts       int   `json:"parts"`
}

// MergeStats totals the progress files of every worker under out.
func MergeStats(out string) (RunStats, error) {
	var rs RunStats
	rs.RejectedByReason = map[string]int64{}
	files, err := filepath.Glob(filepath.Join(out, progressDir, "worker-*.json"))
	if err != nil {
		return rs, err
	}
	sort.Strings(files)
	for _, f := range files {
		p, err := readProgress(f)
		if err != nil {
			return rs, err
		}
		st := p.Total()
		secs := st.Seconds
		st.Seconds = 0
		rs.Add(st)
		rs.Seconds = max(rs.Seconds, secs)
		rs.NumWorkers = max(rs.NumWorkers, p.NumWorkers)
		for _, pr := range p.Parts {
			if pr.Part != "" {
				rs.Parts++
			}
		}
		if p.Done {
			rs.WorkersDone = append(rs.WorkersDone, p.Worker)
		}
	}
	sort.Ints(rs.WorkersDone)
	rs.Complete = rs.NumWorkers > 0 && len(rs.WorkersDone) == rs.NumWorkers
	return rs, nil
}

// WriteStats merges the workers' progress and writes OUT/ingest-stats.json atomically,
// holding a lock so that workers finishing together do not overwrite a newer total.
func WriteStats(out string) (RunStats, error) {
	unlock, err := flock.Lock(filepath.Join(out, progressDir, "stats.lock"))
	if err != nil {
		return RunStats{}, fmt.Errorf("ingest: %w", err)
	}
	defer unlock()
	rs, err := MergeStats(out)
	if err != nil {
		return rs, err
	}
	b, err := json.MarshalIndent(rs, "", "  ")
	if err != nil {
		return rs, err
	}
	return rs, writeFileAtomic(filepath.Join(out, "ingest-stats.json"), append(b, '\n'))
}

// writeFileAtomic writes data to a temporary file in the same directory, syncs it and
// renames it over path, then syncs the directory.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("ingest: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o644); err != nil {
		return errorsJoin(fmt.Errorf("ingest: write %s: %w", path, err), f.Close())
	}
	if _, err = f.Write(data); err != nil {
		return errorsJoin(fmt.Errorf("ingest: write %s: %w", path, err), f.Close())
	}
	if err = f.Sync(); err != nil {
		return errorsJoin(fmt.Errorf("ingest: sync %s: %w", path, err), f.Close())
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("ingest: close %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("ingest: commit %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("ingest: sync dir %s: %w", dir, err)
	}
	err = d.Sync()
	return errorsJoin(err, d.Close())
}

// WriteStatsFile writes rs as indented JSON to path atomically (--stats-json).
func WriteStatsFile(path string, rs RunStats) error {
	b, err := json.MarshalIndent(rs, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}
