package encoders

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/immkit/immkit/internal/flock"
)

// StateFile is the fitted state of an output directory: the resolved config and the
// artefacts, written by Fit under OUT.
const StateFile = "encode.json"

// State is the content of OUT/encode.json.
type State struct {
	Format    int        `json:"format"`
	Config    Config     `json:"config"`
	Artefacts []Artefact `json:"artefacts"` // sorted by name
}

const stateFormat = 1

// ErrNotFitted is returned by LoadState when OUT holds no fitted state.
var ErrNotFitted = errors.New("encoders: output directory holds no fitted state (run immdata fit, or encode --fit)")

// fitKey orders samples for the seeded fitting sample.
func fitKey(seed uint64, s *Sample) [32]byte {
	h := sha256.New()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seed)
	h.Write(b[:])
	h.Write(s.SHA256[:])
	h.Write([]byte(s.Key))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Fit reads every raw part of in, fits the learned encoders of c (which must have its
// defaults) on the FitSamples samples with the smallest seeded hash of (sha256, key) and
// the label vocabulary on all labels, writes the artefacts under out/artefacts and the
// state to out/encode.json, and returns the state. The result depends only on the set of
// input rows and the config.
//
// Workers sharing out fit one at a time (a lock on out/progress/fit.lock); each first
// removes the temporary files a killed fit left in out and out/artefacts, which only a fit
// writes, so a resumed directory ends byte-identical to one never interrupted.
func Fit(ctx context.Context, in, out string, c Config) (*State, error) {
	set, err := NewSet(c)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(out, ProgressDir), 0o755); err != nil {
		return nil, fmt.Errorf("encoders: %w", err)
	}
	unlock, err := flock.Lock(filepath.Join(out, ProgressDir, "fit.lock"))
	if err != nil {
		return nil, fmt.Errorf("encoders: %w", err)
	}
	defer unlock()
	if err := removeStaleTemps(out, filepath.Join(out, ArtefactsDir)); err != nil {
		return nil, err
	}
	parts, err := InputParts(in)
	if err != nil {
		return nil, err
	}
	type pick struct {
		h [32]byte
		s Sample
	}
	var picks []pick
	labels := map[string]bool{}
	n := c.FitSamples
	for _, p := range parts {
		err := scanSamples(ctx, p, func(s *Sample) error {
			labels[s.Label] = true
			h := fitKey(c.Seed, s)
			if len(picks) == n && bytes.Compare(h[:], picks[n-1].h[:]) >= 0 {
				return nil
			}
			cp := *s
			cp.Image = bytes.Clone(s.Image)
			cp.Audio = bytes.Clone(s.Audio)
			i := sort.Search(len(picks), func(i int) bool { return bytes.Compare(picks[i].h[:], h[:]) > 0 })
			picks = append(picks, pick{})
			copy(picks[i+1:], picks[i:])
			picks[i] = pick{h, cp}
			if len(picks) > n {
				picks = picks[:n]
			}
			return ctx.Err()
		})
		if err != nil {
			return nil, err
		}
	}
	d := &FitData{Seed: c.Seed}
	for _, p := range picks {
		d.Samples = append(d.Samples, p.s)
	}
	for l := range labels {
		d.Labels = append(d.Labels, l)
	}
	sort.Strings(d.Labels)
	st := &State{Format: stateFormat, Config: c, Artefacts: []Artefact{}}
	for _, e := range set.Encoders {
		f, ok := e.(Fitter)
		if !ok {
			continue
		}
		arts, err := f.Fit(ctx, d, out)
		if err != nil {
			return nil, err
		}
		st.Artefacts = append(st.Artefacts, arts...)
	}
	sort.Slice(st.Artefacts, func(i, j int) bool { return st.Artefacts[i].Name < st.Artefacts[j].Name })
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(out, StateFile), append(b, '\n')); err != nil {
		return nil, err
	}
	return st, nil
}

// removeStaleTemps removes the temporary files (".NAME.tmp*", as writeFileAtomic and
// safetensors.WriteFile name them) directly under each of dirs.
func removeStaleTemps(dirs ...string) error {
	var err error
	for _, d := range dirs {
		stale, _ := filepath.Glob(filepath.Join(d, ".*.tmp*"))
		for _, f := range stale {
			err = errors.Join(err, removeIfExists(f))
		}
	}
	if err != nil {
		return fmt.Errorf("encoders: remove a killed fit's temporary files: %w", err)
	}
	return nil
}

// LoadState reads OUT/encode.json; ErrNotFitted when there is none.
func LoadState(out string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(out, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFitted
	}
	if err != nil {
		return nil, fmt.Errorf("encoders: %w", err)
	}
	var st State
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&st); err != nil {
		return nil, fmt.Errorf("encoders: %s: %w", filepath.Join(out, StateFile), err)
	}
	if st.Format != stateFormat {
		return nil, fmt.Errorf("encoders: %s has format %d, want %d", filepath.Join(out, StateFile), st.Format, stateFormat)
	}
	return &st, nil
}

// Open builds the encoders of a fitted state, loading and checking every artefact.
func (st *State) Open(out string) (*Set, error) {
	set, err := NewSet(st.Config)
	if err != nil {
		return nil, err
	}
	for _, e := range set.Encoders {
		if f, ok := e.(Fitter); ok {
			if err := f.Load(out, st.Artefacts); err != nil {
				return nil, err
			}
		}
	}
	return set, nil
}
