package run

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/immkit/immkit/imm"
	"github.com/immkit/immkit/kernels"
)

// Checkpoints is a run's checkpoint directory: Dir/step-NNNNNN.safetensors (each with its
// .sha256 file, see imm.Trainer.Save) and Dir/latest holding the name of the newest one.
// Save keeps the Keep newest files (0 means 3), so a damaged newest one leaves an older
// good one to fall back to.
type Checkpoints struct {
	Dir  string
	Keep int
}

// Path is the file of the checkpoint after step.
func (c Checkpoints) Path(step int) string {
	return filepath.Join(c.Dir, fmt.Sprintf("step-%06d.safetensors", step))
}

// List returns the checkpoint files, newest (highest step) first.
func (c Checkpoints) List() ([]string, error) {
	ents, err := os.ReadDir(c.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	type item struct {
		step int
		path string
	}
	var items []item
	for _, e := range ents {
		name := e.Name()
		num, ok := strings.CutPrefix(name, "step-")
		if !ok {
			continue
		}
		num, ok = strings.CutSuffix(num, ".safetensors")
		if !ok {
			continue
		}
		if s, err := strconv.Atoi(num); err == nil {
			items = append(items, item{s, filepath.Join(c.Dir, name)})
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].step > items[j].step })
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.path
	}
	return out, nil
}

// Save writes tr's checkpoint for its current step, points latest at it and removes all
// but the Keep newest checkpoints. It returns the path written.
func Save[T kernels.Float](c Checkpoints, tr *imm.Trainer[T]) (string, error) {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return "", fmt.Errorf("run: %w", err)
	}
	path := c.Path(tr.Step)
	if err := tr.Save(path); err != nil {
		return "", err
	}
	if err := WriteAtomic(filepath.Join(c.Dir, "latest"), []byte(filepath.Base(path)+"\n")); err != nil {
		return "", err
	}
	keep := c.Keep
	if keep <= 0 {
		keep = 3
	}
	list, err := c.List()
	if err != nil {
		return "", err
	}
	for i, p := range list {
		if i >= keep {
			err = errors.Join(err, os.Remove(p), ignoreMissing(os.Remove(imm.SumPath(p))))
		}
	}
	if err != nil {
		return "", fmt.Errorf("run: prune checkpoints: %w", err)
	}
	return path, nil
}

func ignoreMissing(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// ErrNoCheckpoint is returned by LoadNewest when the directory has no checkpoint.
var ErrNoCheckpoint = errors.New("run: no checkpoint")

// LoadNewest loads the newest checkpoint that passes its hash and structure checks. Each
// bad one is reported through skip (its path and the error) before falling back to the
// next older one; when none loads, the error names every file tried.
func LoadNewest[T kernels.Float](c Checkpoints, d kernels.Device[T], skip func(path string, err error)) (*imm.Trainer[T], string, error) {
	list, err := c.List()
	if err != nil {
		return nil, "", err
	}
	if len(list) == 0 {
		return nil, "", fmt.Errorf("%w in %s", ErrNoCheckpoint, c.Dir)
	}
	var errs []error
	for _, p := range list {
		tr, err := imm.Load(d, p)
		if err == nil {
			return tr, p, nil
		}
		errs = append(errs, err)
		if skip != nil {
			skip(p, err)
		}
	}
	return nil, "", fmt.Errorf("run: no good checkpoint in %s: %w", c.Dir, errors.Join(errs...))
}
