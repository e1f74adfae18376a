package run

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"

	"github.com/immkit/immkit/imm"
	"github.com/immkit/immkit/imm/mmdata"
	"github.com/immkit/immkit/kernels"
	"github.com/immkit/immkit/shards"
)

// Session is a finished (or interrupted) multimodal run opened for sampling and
// evaluation: its config, layout and the newest good checkpoint.
type Session struct {
	Dir        string
	Cfg        *Config
	Layout     *mmdata.Layout
	Tr         *imm.Trainer[float32]
	Checkpoint string
}

// Open opens the run directory dir on dev; bad checkpoints are skipped with a warning on
// log (nil: silent).
func Open(dir string, dev kernels.Device[float32], log io.Writer) (*Session, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	layout, err := cfg.OpenLayout()
	if err != nil {
		return nil, err
	}
	tr, path, err := LoadNewest(Checkpoints{Dir: filepath.Join(dir, "ckpt")}, dev, func(p string, err error) {
		if log != nil {
			fmt.Fprintf(log, "warning: skipping checkpoint %s: %v; falling back to the previous one\n", p, err)
		}
	})
	if err != nil {
		return nil, err
	}
	if !tr.Model.Equal(cfg.Model) {
		return nil, fmt.Errorf("run: checkpoint %s does not hold the model of %s", path, ConfigPath(dir))
	}
	return &Session{Dir: dir, Cfg: cfg, Layout: layout, Tr: tr, Checkpoint: path}, nil
}

// Particles are assembled real samples: X and Mask hold N particles of the layout
// (mmdata.Layout.Assemble), Labels their label ids (nil without classes), Keys their keys.
type Particles struct {
	N      int
	X      []float32
	Mask   []float32
	Labels []int32
	Keys   []string
}

// ValParticles reads the first n samples of the split (shards.SplitVal or SplitTrain) in
// the loader's order for the run's seed and assembles them.
func (s *Session) ValParticles(split string, n int) (*Particles, error) {
	l, err := shards.NewLoader(s.Cfg.Data, s.Layout.LoaderOptions(shards.LoaderOptions{Split: split, Seed: s.Cfg.Train.Seed, GlobalBatch: n, Epochs: 1}))
	if err != nil {
		return nil, err
	}
	defer l.Close()
	if l.Samples() == 0 {
		return nil, fmt.Errorf("run: the %s split of %s is empty", split, s.Cfg.Data)
	}
	b, err := l.Next()
	if err != nil {
		return nil, fmt.Errorf("run: read the %s split of %s: %w", split, s.Cfg.Data, err)
	}
	p := &Particles{N: b.Len(), Keys: slices.Clone(b.Keys)}
	D := s.Layout.Dim()
	p.X, p.Mask = make([]float32, p.N*D), make([]float32, p.N*D)
	if p.Labels, err = s.Layout.Assemble(b, p.X, p.Mask); err != nil {
		return nil, err
	}
	return p, nil
}

// Given returns the present mask that holds the named segments of p (their real
// coordinates) as conditioning.
func (s *Session) Given(p *Particles, names []string) ([]float32, error) {
	present := make([]float32, len(p.Mask))
	D := s.Layout.Dim()
	for _, name := range names {
		off, ok := s.Layout.Offset(name)
		if !ok {
			return nil, fmt.Errorf("run: the run has no %s segment to condition on (it has %v)", name, segmentNames(s.Layout))
		}
		var w int
		for _, sg := range s.Layout.Segments {
			if sg.Name == name {
				w = sg.Tokens * sg.Features
			}
		}
		for i := range p.N {
			copy(present[i*D+off:i*D+off+w], p.Mask[i*D+off:i*D+off+w])
		}
	}
	return present, nil
}

func segmentNames(l *mmdata.Layout) []string {
	var out []string
	for _, s := range l.Segments {
		out = append(out, s.Name)
	}
	return out
}

// LabelID returns the class id of a label name of the run.
func (s *Session) LabelID(name string) (int32, error) {
	for i, l := range s.Cfg.Labels {
		if l == name {
			return int32(i), nil
		}
	}
	return 0, fmt.Errorf("run: unknown label %q (the run's labels: %v)", name, s.Cfg.Labels)
}
