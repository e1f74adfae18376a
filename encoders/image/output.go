package image

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"

	"github.com/disintegration/imaging"
)

// WritePNG encodes img as PNG.
func WritePNG(w io.Writer, img image.Image) error {
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("image: encode png: %w", err)
	}
	return nil
}

// SavePNG writes img to path as PNG atomically (temporary name, then rename).
func SavePNG(path string, img image.Image) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriter(tmp)
	if err := WritePNG(bw, img); err != nil {
		return errors.Join(err, tmp.Close())
	}
	if err := bw.Flush(); err != nil {
		return errors.Join(err, tmp.Close())
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Grid lays pictures out in rows (for the trainer: one row per number of sampling steps, one
// column per sample), pad pixels apart and around, on bg. Cells are as large as the largest
// picture; a picture is placed at its cell's top-left corner; rows may differ in length and
// nil entries leave a cell empty.
func Grid(rows [][]*image.NRGBA, pad int, bg color.NRGBA) (*image.NRGBA, error) {
	if pad < 0 {
		return nil, fmt.Errorf("image: grid padding %d < 0", pad)
	}
	cw, ch, cols := 0, 0, 0
	for _, r := range rows {
		cols = max(cols, len(r))
		for _, img := range r {
			if img != nil {
				cw, ch = max(cw, img.Rect.Dx()), max(ch, img.Rect.Dy())
			}
		}
	}
	if cols == 0 || cw == 0 {
		return nil, fmt.Errorf("image: empty grid")
	}
	W, H := pad+cols*(cw+pad), pad+len(rows)*(ch+pad)
	if int64(W)*int64(H) > DefaultLimits.MaxPixels {
		return nil, fmt.Errorf("%w: grid %dx%d", ErrTooLarge, W, H)
	}
	bg.A = 255
	out := imaging.New(W, H, bg)
	for i, r := range rows {
		for j, img := range r {
			if img == nil {
				continue
			}
			out = imaging.Paste(out, img, image.Pt(pad+j*(cw+pad), pad+i*(ch+pad)))
		}
	}
	return out, nil
}
