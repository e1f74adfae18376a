package toy

import (
	"errors"
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

const span = 1.6 // half-width of the scatter plot axes (data has std 0.5)

var (
	gray = color.RGBA{R: 190, G: 190, B: 190, A: 255}
	blue = color.RGBA{R: 31, G: 119, B: 180, A: 255}
)

func scatterPlot(title string, pts, ref []float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = -span, span, -span, span
	for i, set := range [][]float64{ref, pts} {
		if set == nil {
			continue
		}
		xy := make(plotter.XYs, len(set)/2)
		for k := range xy {
			xy[k].X, xy[k].Y = set[2*k], set[2*k+1]
		}
		s, err := plotter.NewScatter(xy)
		if err != nil {
			return nil, fmt.Errorf("toy: scatter: %w", err)
		}
		s.GlyphStyle.Radius = vg.Points(0.7)
		s.GlyphStyle.Shape = draw.CircleGlyph{}
		s.GlyphStyle.Color = blue
		if i == 0 {
			s.GlyphStyle.Color = gray
		}
		p.Add(s)
	}
	return p, nil
}

// scatterPNG plots samples (blue) over held-out data (gray).
func scatterPNG(path, title string, pts, ref []float64) error {
	p, err := scatterPlot(title, pts, ref)
	if err != nil {
		return err
	}
	if err := p.Save(4*vg.Inch, 4*vg.Inch, path); err != nil {
		return fmt.Errorf("toy: save %s: %w", path, err)
	}
	return nil
}

// gridPNG draws held-out data and every sample set: row 1 data and IMM, row 2 flow matching.
func gridPNG(path string, o Options, held []float64, panels map[string][]float64, sum *Summary) error {
	cols := max(len(o.IMMSteps)+1, len(o.FMSteps))
	rows := [][]*plot.Plot{{}, {}}
	d, err := scatterPlot("held-out data", held, nil)
	if err != nil {
		return err
	}
	rows[0] = append(rows[0], d)
	for r, obj := range []string{"imm", "fm"} {
		steps := o.IMMSteps
		if obj == "fm" {
			steps = o.FMSteps
		}
		for _, n := range steps {
			s, ok := panels[fmt.Sprintf("%s %d", obj, n)]
			if !ok {
				continue
			}
			title := fmt.Sprintf("%s %d: %.4f", map[string]string{"imm": "IMM", "fm": "FM"}[obj], n, sum.Results[obj].Energy[fmt.Sprint(n)])
			p, err := scatterPlot(title, s, nil)
			if err != nil {
				return err
			}
			rows[r] = append(rows[r], p)
		}
	}
	for r := range rows {
		for len(rows[r]) < cols {
			e := plot.New()
			e.HideAxes()
			rows[r] = append(rows[r], e)
		}
	}
	if _, ok := sum.Results["fm"]; !ok {
		rows = rows[:1]
	}
	const side = 2.6 * vg.Inch
	img := vgimg.New(side*vg.Length(cols), side*vg.Length(len(rows)))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(rows), Cols: cols, PadX: vg.Millimeter, PadY: vg.Millimeter,
		PadTop: vg.Millimeter, PadBottom: vg.Millimeter, PadLeft: vg.Millimeter, PadRight: vg.Millimeter}
	canvases := plot.Align(rows, tiles, dc)
	for r := range rows {
		for c := range rows[r] {
			rows[r][c].Draw(canvases[r][c])
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("toy: %w", err)
	}
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(f)
	return errors.Join(err, f.Close())
}
