package run

import (
	"fmt"
	"image"
	"strconv"

	"github.com/immkit/immkit/evals/mnist"
	"github.com/immkit/immkit/imm/mmdata"
)

// EvalOptions configure Session.Eval.
type EvalOptions struct {
	N     int   // generated samples per step count; default 256
	Steps []int // sampling-step counts; default the run's sheet steps
	CFG   float64
	// Shapes scores cross-modal agreement with evals/shapes (the run must be on the
	// shapes corpus).
	Shapes bool
	// MNIST scores the accuracy of this classifier on generated images for their
	// conditioning labels (label names "0".."9").
	MNIST *mnist.Classifier
	Chunk int    // particles generated at once; default 64
	Key   uint64 // noise key; default SheetKey
}

// EvalResult is RUN/eval.json.
type EvalResult struct {
	Run        string  `json:"run"`
	Checkpoint string  `json:"checkpoint"`
	Step       int     `json:"step"`
	N          int     `json:"n"`
	Steps      []int   `json:"steps"`
	CFG        float64 `json:"cfg"`
	// Shapes holds the agreement report per step count ("1", "2", ...) and "real": the
	// same detectors on decoded val particles, the ceiling of the measurement.
	Shapes map[string]*ShapesReport `json:"shapes,omitempty"`
	// MNISTAccuracy is the classifier's accuracy on generated digits for their
	// conditioning labels, per step count, and "real" on decoded val particles.
	MNISTAccuracy map[string]float64 `json:"mnist_accuracy,omitempty"`
}

// generated samples o.N particles per step count in chunks, labels cycling through the
// classes, and calls use with the decoded media of each chunk and its labels.
func (s *Session) generated(o EvalOptions, steps int, use func(m *mmdata.Media, labels []int32) error) error {
	all := SheetLabels(s.Cfg.Model.Classes(), o.N)
	for start, chunk := 0, 0; start < o.N; start, chunk = start+o.Chunk, chunk+1 {
		n := min(o.Chunk, o.N-start)
		var labels []int32
		if all != nil {
			labels = all[start : start+n]
		}
		media, err := Generate(s.Layout, s.Tr, []int{steps}, n, labels, o.CFG, o.Key+uint64(chunk)<<20, nil, nil)
		if err != nil {
			return err
		}
		if err := use(media[0], labels); err != nil {
			return err
		}
	}
	return nil
}

// real decodes up to n val particles and calls use with them and their labels.
func (s *Session) real(n int, use func(m *mmdata.Media, labels []int32) error) (int, error) {
	p, err := s.ValParticles("val", n)
	if err != nil {
		return 0, err
	}
	m, err := s.Layout.Decode(p.X, p.N)
	if err != nil {
		return 0, err
	}
	return p.N, use(m, p.Labels)
}

// Eval generates and scores samples as o says and returns the result (the caller writes
// it to RUN/eval.json).
func (s *Session) Eval(o EvalOptions) (*EvalResult, error) {
	if o.N <= 0 {
		o.N = 256
	}
	if len(o.Steps) == 0 {
		o.Steps = s.Cfg.SampleSteps
	}
	if o.Chunk <= 0 {
		o.Chunk = 64
	}
	if o.Key == 0 {
		o.Key = SheetKey
	}
	if !o.Shapes && o.MNIST == nil {
		return nil, fmt.Errorf("run: nothing to evaluate: choose the shapes agreement or an MNIST classifier")
	}
	res := &EvalResult{Run: s.Dir, Checkpoint: s.Checkpoint, Step: s.Tr.Step, N: o.N, Steps: o.Steps, CFG: o.CFG}
	if o.MNIST != nil {
		if s.Layout.Image == nil {
			return nil, fmt.Errorf("run: the MNIST accuracy needs an image segment; the run has %v", segmentNames(s.Layout))
		}
		digits := make([]int, len(s.Cfg.Labels))
		for i, name := range s.Cfg.Labels {
			d, err := strconv.Atoi(name)
			if err != nil || d < 0 || d >= mnist.Classes {
				return nil, fmt.Errorf("run: label %q of the run is not a digit 0-9; is this an MNIST run?", name)
			}
			digits[i] = d
		}
		res.MNISTAccuracy = map[string]float64{}
		score := func(key string) func(m *mmdata.Media, labels []int32) error {
			var right, total int
			return func(m *mmdata.Media, labels []int32) error {
				if labels == nil {
					return fmt.Errorf("run: the MNIST accuracy needs a class-conditional run")
				}
				for i, img := range m.Images {
					if int(labels[i]) >= len(digits) {
						continue // unlabelled
					}
					total++
					if o.MNIST.Predict(image.Image(img)) == digits[labels[i]] {
						right++
					}
				}
				if total > 0 {
					res.MNISTAccuracy[key] = float64(right) / float64(total)
				}
				return nil
			}
		}
		for _, st := range o.Steps {
			if err := s.generated(o, st, score(strconv.Itoa(st))); err != nil {
				return nil, err
			}
		}
		if _, err := s.real(o.N, score("real")); err != nil {
			return nil, err
		}
	}
	if o.Shapes {
		if err := s.evalShapes(o, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}
