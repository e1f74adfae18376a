package mmdata

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strconv"

	"github.com/immkit/immkit/encoders/audio"
	imgenc "github.com/immkit/immkit/encoders/image"
)

// SheetPad is the gap in pixels between and around the tiles of grid.png.
const SheetPad = 2

// WriteSheet writes the sample sheet of media generated with the sampling-step counts in
// steps (media[i] for steps[i]) into dir: dir/grid.png (row i = steps[i], column k =
// sample k, tiles SheetPad pixels apart on a dark grey background; absent when no media
// has pictures), dir/steps-<N>/sample-<k>.wav (16-bit PCM, peak-normalised to 0.9 when
// louder) and dir/captions.json ({"<N>": ["caption of sample 0", ...]}, absent without
// captions). Each file is written to a temporary name and renamed.
func WriteSheet(dir string, steps []int, media []*Media) error {
	if len(steps) != len(media) || len(steps) == 0 {
		return fmt.Errorf("mmdata: sheet of %d step counts and %d media", len(steps), len(media))
	}
	seen := map[int]bool{}
	for i, s := range steps {
		if s < 1 || seen[s] {
			return fmt.Errorf("mmdata: sheet step counts %v must be positive and distinct", steps)
		}
		seen[s] = true
		if media[i] == nil {
			return fmt.Errorf("mmdata: sheet media %d (steps %d) is nil", i, s)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mmdata: sheet: %w", err)
	}
	var rows [][]*image.NRGBA
	pics := false
	for _, m := range media {
		var row []*image.NRGBA
		for _, img := range m.Images {
			if img == nil {
				row = append(row, nil)
				continue
			}
			pics = true
			row = append(row, &image.NRGBA{Pix: img.Pix, Stride: img.Stride, Rect: img.Rect}) // opaque: same bytes
		}
		rows = append(rows, row)
	}
	if pics {
		grid, err := imgenc.Grid(rows, SheetPad, color.NRGBA{R: 32, G: 32, B: 32, A: 255})
		if err != nil {
			return fmt.Errorf("mmdata: sheet grid: %w", err)
		}
		if err := imgenc.SavePNG(filepath.Join(dir, "grid.png"), grid); err != nil {
			return fmt.Errorf("mmdata: sheet grid: %w", err)
		}
	}
	caps := map[string][]string{}
	for i, m := range media {
		if m.Captions != nil {
			caps[strconv.Itoa(steps[i])] = m.Captions
		}
		if len(m.Audio) == 0 {
			continue
		}
		sub := filepath.Join(dir, fmt.Sprintf("steps-%d", steps[i]))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return fmt.Errorf("mmdata: sheet: %w", err)
		}
		if m.AudioRate < 1 {
			return fmt.Errorf("mmdata: sheet media %d has audio at %d Hz", i, m.AudioRate)
		}
		for k, w := range m.Audio {
			if w == nil {
				continue
			}
			var buf bytes.Buffer
			if err := audio.WriteWAV(&buf, &audio.Audio{Samples: normalisePeak(w), Rate: m.AudioRate, Channels: 1}, audio.WAVPCM16); err != nil {
				return fmt.Errorf("mmdata: sheet audio: %w", err)
			}
			if err := writeAtomic(filepath.Join(sub, fmt.Sprintf("sample-%d.wav", k)), buf.Bytes()); err != nil {
				return err
			}
		}
	}
	if len(caps) > 0 {
		b, err := json.MarshalIndent(caps, "", "  ")
		if err != nil {
			return fmt.Errorf("mmdata: sheet captions: %w", err)
		}
		if err := writeAtomic(filepath.Join(dir, "captions.json"), append(b, '\n')); err != nil {
			return err
		}
	}
	return nil
}

// normalisePeak returns w scaled to a peak of 0.9 when its peak is above that, else w.
func normalisePeak(w []float32) []float32 {
	var peak float32
	for _, v := range w {
		peak = max(peak, v, -v)
	}
	if peak <= 0.9 {
		return w
	}
	out := make([]float32, len(w))
	for i, v := range w {
		out[i] = v * 0.9 / peak
	}
	return out
}

func writeAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("mmdata: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, os.Remove(f.Name()))
		}
	}()
	if _, err = f.Write(data); err != nil {
		return errors.Join(fmt.Errorf("mmdata: write %s: %w", path, err), f.Close())
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("mmdata: write %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("mmdata: %w", err)
	}
	return nil
}
