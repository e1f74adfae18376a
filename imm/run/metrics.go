package run

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Record is one line of metrics.jsonl. A step whose loss or gradient norm was not finite
// (its update skipped) has Skipped set and the non-finite values as strings in NonFinite
// ("NaN", "+Inf"; JSON has no such numbers), with Loss and GradNorm 0.
type Record struct {
	Objective   string  `json:"objective,omitempty"`
	Step        int     `json:"step"`
	Loss        float64 `json:"loss"`
	GradNorm    float64 `json:"grad_norm"`
	LR          float64 `json:"lr,omitempty"`
	Skipped     bool    `json:"skipped,omitempty"`
	NonFinite   string  `json:"non_finite,omitempty"`
	SamplesPerS float64 `json:"samples_per_s,omitempty"`
	Elapsed     float64 `json:"elapsed_s"`
}

// Clean makes r encodable: non-finite Loss or GradNorm go to NonFinite.
func (r Record) Clean() Record {
	bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }
	if bad(r.Loss) || bad(r.GradNorm) {
		r.NonFinite = fmt.Sprintf("loss=%v grad_norm=%v", r.Loss, r.GradNorm)
		r.Loss, r.GradNorm = 0, 0
	}
	return r
}

// ReadMetrics reads a metrics file; a missing file is an empty history and lines that do
// not parse (a torn last line after a kill) are dropped.
func ReadMetrics(path string) ([]Record, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m Record
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("run: read %s: %w", path, err)
	}
	return out, nil
}

// WriteMetrics replaces the metrics file with rs, atomically.
func WriteMetrics(path string, rs []Record) error {
	var b []byte
	for _, r := range rs {
		j, err := json.Marshal(r.Clean())
		if err != nil {
			return fmt.Errorf("run: metrics: %w", err)
		}
		b = append(append(b, j...), '\n')
	}
	return WriteAtomic(path, b)
}

// MetricsLog appends records to a metrics file through a buffer; Flush before a
// checkpoint so the file covers every step the checkpoint holds.
type MetricsLog struct {
	f *os.File
	w *bufio.Writer
}

// AppendMetrics opens path for appending.
func AppendMetrics(path string) (*MetricsLog, error) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	return &MetricsLog{f: f, w: bufio.NewWriter(f)}, nil
}

// Add writes one record.
func (l *MetricsLog) Add(r Record) error {
	b, err := json.Marshal(r.Clean())
	if err != nil {
		return fmt.Errorf("run: metrics: %w", err)
	}
	_, err = l.w.Write(append(b, '\n'))
	return err
}

// Flush writes the buffered records to the file.
func (l *MetricsLog) Flush() error { return l.w.Flush() }

// Close flushes and closes the file.
func (l *MetricsLog) Close() error { return errors.Join(l.w.Flush(), l.f.Close()) }

// TrimMetrics keeps the records of objective obj up to step last (and every record of
// other objectives): the history that matches a checkpoint at step last.
func TrimMetrics(rs []Record, obj string, last int) []Record {
	kept := rs[:0]
	for _, m := range rs {
		if m.Objective != obj || m.Step <= last {
			kept = append(kept, m)
		}
	}
	return kept
}

// WriteAtomic writes b to a temporary file next to path and renames it over path.
func WriteAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}

var palette = []color.Color{
	color.RGBA{R: 31, G: 119, B: 180, A: 255},
	color.RGBA{R: 214, G: 39, B: 40, A: 255},
	color.RGBA{R: 44, G: 160, B: 44, A: 255},
	color.RGBA{R: 148, G: 103, B: 189, A: 255},
}

// LossPNG plots the training loss of each objective in rs (moving average over 25 steps,
// log scale; skipped steps left out); label names an objective in the legend.
func LossPNG(path string, rs []Record, label func(objective string) string) error {
	p := plot.New()
	p.Title.Text = "training loss (moving average of 25 steps)"
	p.X.Label.Text = "step"
	p.Y.Label.Text = "loss"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	byObj := map[string][]Record{}
	var order []string
	lines := 0
	for _, m := range rs {
		if m.Skipped {
			continue
		}
		if _, ok := byObj[m.Objective]; !ok {
			order = append(order, m.Objective)
		}
		byObj[m.Objective] = append(byObj[m.Objective], m)
	}
	for k, obj := range order {
		list := byObj[obj]
		var xy plotter.XYs
		var acc float64
		for i, m := range list {
			acc += m.Loss
			if i >= 25 {
				acc -= list[i-25].Loss
			}
			v := acc / float64(min(i+1, 25))
			if v > 0 {
				xy = append(xy, plotter.XY{X: float64(m.Step), Y: v})
			}
		}
		if len(xy) == 0 {
			continue
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return fmt.Errorf("run: loss plot: %w", err)
		}
		l.Color = palette[k%len(palette)]
		p.Add(l)
		p.Legend.Add(label(obj), l)
		lines++
	}
	p.Legend.Top = true
	switch {
	case lines == 0: // no positive loss to show: an empty linear axis
		p.Y.Scale, p.Y.Tick.Marker = plot.LinearScale{}, plot.DefaultTicks{}
	case p.Y.Min >= p.Y.Max: // one value (a one-step run): gonum would pad the range below 0
		p.Y.Min, p.Y.Max = p.Y.Min/2, p.Y.Max*2
	}
	if err := p.Save(6*vg.Inch, 4*vg.Inch, path); err != nil {
		return fmt.Errorf("run: save %s: %w", path, err)
	}
	return nil
}
