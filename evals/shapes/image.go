package shapes

import (
	"image"
	"math"
	"slices"

	"github.com/immkit/immkit/testdata/gen"
)

// Outlines of the shapes in unit coordinates (centre (0, 0), bounding square [-1, 1]², v
// downwards), restated from testdata/gen's documentation rather than calling its drawing
// code, so that a mistake in either shows up as a detector failure.
const (
	squareHalf     = 0.85 // half side of the square
	crossHalfWidth = 0.34 // half width of a cross arm
	starInner      = 0.45 // inner radius of the five-pointed star
)

// starOutline is the star's polygon: ten vertices alternating between radius 1 and
// starInner, the first pointing up.
var starOutline = func() [][2]float64 {
	p := make([][2]float64, 10)
	for k := range p {
		a := -math.Pi/2 + float64(k)*math.Pi/5
		r := 1.0
		if k%2 == 1 {
			r = starInner
		}
		p[k] = [2]float64{r * math.Cos(a), r * math.Sin(a)}
	}
	return p
}()

// outline is one shape's membership test and area (in units of the radius squared).
type outline struct {
	name   string
	inside func(u, v float64) bool
	area   float64
	// cy is the v coordinate of the outline's area centroid.
	cy float64
}

var outlines = []outline{
	{"circle", func(u, v float64) bool { return u*u+v*v <= 1 }, math.Pi, 0},
	{"square", func(u, v float64) bool { return math.Abs(u) <= squareHalf && math.Abs(v) <= squareHalf }, 4 * squareHalf * squareHalf, 0},
	// Apex (0, -1), base from (-1, 1) to (1, 1): the centroid is a third of the way up.
	{"triangle", func(u, v float64) bool { return v <= 1 && math.Abs(u) <= (v+1)/2 }, 2, 1.0 / 3},
	{"star", func(u, v float64) bool { return inPolygon(starOutline, u, v) }, 5 * starInner * math.Sin(math.Pi/5), 0},
	{"cross", func(u, v float64) bool {
		au, av := math.Abs(u), math.Abs(v)
		return au <= 1 && av <= 1 && (au <= crossHalfWidth || av <= crossHalfWidth)
	}, 8*crossHalfWidth - 4*crossHalfWidth*crossHalfWidth, 0},
}

// inPolygon is the even-odd rule.
func inPolygon(p [][2]float64, u, v float64) bool {
	in := false
	for i, j := 0, len(p)-1; i < len(p); j, i = i, i+1 {
		if (p[i][1] > v) != (p[j][1] > v) && u < p[i][0]+(v-p[i][1])*(p[j][0]-p[i][0])/(p[j][1]-p[i][1]) {
			in = !in
		}
	}
	return in
}

// Image detector thresholds.
const (
	// minAlpha is the blend weight from which a pixel counts as showing a palette colour.
	minAlpha = 0.4
	// maxResidual is the largest distance, as a fraction of |colour - background|, between
	// a pixel and its best blend of background and palette colour for the pixel to count.
	maxResidual = 0.35
	// minArea is the smallest blob mass, as a fraction of the image area, that can be the
	// shape: half the area of a small star (1.32 (0.1 side)²).
	minArea = 0.0066

	// sizeThreshold separates small (radius 0.30 of a grid cell) from large (0.46).
	sizeThreshold = 0.38
)

// rgbImage is an image as float64 RGB values in 0..255: pixel (x, y) at pix[3*(y*w+x)+c].
type rgbImage struct {
	w, h int
	pix  []float64
}

func toRGB(img image.Image) rgbImage {
	b := img.Bounds()
	m := rgbImage{w: b.Dx(), h: b.Dy(), pix: make([]float64, 3*b.Dx()*b.Dy())}
	i := 0
	switch src := img.(type) {
	case *image.RGBA: // premultiplied: composited on black, as RGBA() below
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := src.Pix[src.PixOffset(b.Min.X, y):]
			for x := range m.w {
				m.pix[i], m.pix[i+1], m.pix[i+2] = float64(row[4*x]), float64(row[4*x+1]), float64(row[4*x+2])
				i += 3
			}
		}
	default:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bb, _ := img.At(x, y).RGBA()
				m.pix[i], m.pix[i+1], m.pix[i+2] = float64(r)/257, float64(g)/257, float64(bb)/257
				i += 3
			}
		}
	}
	return m
}

// FromImage reads the colour, shape, size and position of the one shape an image shows.
// It takes any image size; it is meant for the corpus's 64 px images and for the 16..64 px
// images decoded from generated latents. Accuracy per resolution is in docs/eval.md.
//
// Method: images larger than 32 px are area-averaged down to 32 px. The background is the
// per-channel median colour bg. Each pixel p is explained as the blend bg + α (c - bg) of
// the background and a palette colour c, α the least-squares blend weight clamped to at
// most 1: the pixel shows the colour whose blend leaves the smallest residual, provided
// α >= 0.4 and the residual is at most 0.35 |c - bg|. The shape is the 8-connected blob of
// one colour with the largest α mass, if that mass is at least 0.66% of the image (half a
// small star). Every outline is then fitted to the soft mask α around the blob by least
// squares over its centre, radius and a Gaussian blur (at most 0.6 px and 0.3 radius),
// rendered with 4x4 supersampled area coverage; the best outline names the shape unless
// its error exceeds 0.4 of the mask's energy. The fitted radius in grid cells (a third of
// the side) gives the size, the fitted centre (or the blob's centroid when no outline fits)
// the grid cell.
func FromImage(img image.Image) Attr {
	m := toRGB(img)
	if side := float64(max(m.w, m.h)); side > workSide {
		m = m.shrink(side / workSide)
	}
	if m.w < 3 || m.h < 3 {
		return Attr{}
	}
	bg := m.median()
	n := m.w * m.h
	best := make([]int8, n)     // palette index of the colour shown, -1 for none
	alpha := make([]float64, n) // its blend weight
	type dir struct {
		d     [3]float64
		norm2 float64
	}
	dirs := make([]dir, len(gen.Colors))
	for k, c := range gen.Colors {
		d := [3]float64{float64(c.RGB.R) - bg[0], float64(c.RGB.G) - bg[1], float64(c.RGB.B) - bg[2]}
		dirs[k] = dir{d, d[0]*d[0] + d[1]*d[1] + d[2]*d[2]}
	}
	for i := range n {
		p := m.pix[3*i : 3*i+3]
		e := [3]float64{p[0] - bg[0], p[1] - bg[1], p[2] - bg[2]}
		best[i] = -1
		bestRes := math.Inf(1)
		for k, d := range dirs {
			if d.norm2 < 1 {
				continue
			}
			a := (e[0]*d.d[0] + e[1]*d.d[1] + e[2]*d.d[2]) / d.norm2
			if a < minAlpha {
				continue
			}
			a = min(a, 1)
			r0, r1, r2 := e[0]-a*d.d[0], e[1]-a*d.d[1], e[2]-a*d.d[2]
			res := math.Sqrt((r0*r0 + r1*r1 + r2*r2) / d.norm2)
			if res <= maxResidual && res < bestRes {
				best[i], alpha[i], bestRes = int8(k), a, res
			}
		}
	}
	blob, color, mass := largestBlob(m.w, m.h, best, alpha)
	if blob == nil || mass < minArea*float64(n) {
		return Attr{}
	}
	a := Attr{Color: gen.Colors[color].Name}

	// Soft mask of the blob's colour around the blob: the clamped blend weight of every
	// pixel whose residual is moderate, 0 elsewhere.
	x0, y0, x1, y1 := m.w, m.h, 0, 0
	for i, in := range blob {
		if in {
			x, y := i%m.w, i/m.w
			x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x+1), max(y1, y+1)
		}
	}
	const margin = 2
	win := image.Rect(x0-margin, y0-margin, x1+margin, y1+margin).Intersect(image.Rect(0, 0, m.w, m.h))
	d := dirs[color]
	mask := make([]float64, win.Dx()*win.Dy())
	var sum, sx, sy float64
	for y := win.Min.Y; y < win.Max.Y; y++ {
		for x := win.Min.X; x < win.Max.X; x++ {
			p := m.pix[3*(y*m.w+x):]
			e := [3]float64{p[0] - bg[0], p[1] - bg[1], p[2] - bg[2]}
			al := (e[0]*d.d[0] + e[1]*d.d[1] + e[2]*d.d[2]) / d.norm2
			al = min(max(al, 0), 1)
			r0, r1, r2 := e[0]-al*d.d[0], e[1]-al*d.d[1], e[2]-al*d.d[2]
			if (r0*r0+r1*r1+r2*r2)/d.norm2 > 4*maxResidual*maxResidual {
				al = 0
			}
			mask[(y-win.Min.Y)*win.Dx()+x-win.Min.X] = al
			sum += al
			sx += al * (float64(x) + 0.5)
			sy += al * (float64(y) + 0.5)
		}
	}
	cx, cy := sx/sum, sy/sum
	f := fitter{win: win, mask: mask, cov: make([]float64, len(mask)), tmp: make([]float64, len(mask))}
	for _, v := range mask {
		f.energy += v * v
	}
	bestErr, bestFit := math.Inf(1), fit{}
	for _, o := range outlines {
		r := math.Sqrt(sum / o.area)
		ft := f.fit(o, fit{cx: cx, cy: cy - o.cy*r, r: r, blur: blurStart})
		if ft.err < bestErr {
			bestErr, bestFit = ft.err, ft
			bestFit.shape = o.name
		}
	}
	if bestErr <= maxFitError {
		a.Shape = bestFit.shape
		cx, cy = bestFit.cx, bestFit.cy
		cell := float64(min(m.w, m.h)) / 3
		a.Size = gen.Sizes[0].Name
		if bestFit.r/cell > sizeThreshold {
			a.Size = gen.Sizes[1].Name
		}
	}
	col := min(max(int(3*cx/float64(m.w)), 0), 2)
	row := min(max(int(3*cy/float64(m.h)), 0), 2)
	for _, p := range gen.Positions {
		if p.Row == row && p.Col == col {
			a.Position = p.Name
		}
	}
	return a
}

// Outline fit settings, tuned on corpus seeds 7 and 9 (docs/eval.md).
const (
	workSide  = 32.0 // larger images are area-averaged down to this side first
	blurStart = 0.0  // initial blur of the outline fit, pixels
	blurMax   = 0.6  // largest blur, pixels
	blurFrac  = 0.3  // largest blur as a fraction of the radius
	// maxFitError is the largest normalised squared error of the best outline fit for the
	// shape to be recognised.
	maxFitError = 0.4
)

// shrink area-averages the image by the factor f > 1 (each output pixel is the mean of the
// f x f input square it covers, partial pixels weighted by overlap).
func (m rgbImage) shrink(f float64) rgbImage {
	w, h := max(int(math.Round(float64(m.w)/f)), 1), max(int(math.Round(float64(m.h)/f)), 1)
	fx, fy := float64(m.w)/float64(w), float64(m.h)/float64(h)
	// weights[o] lists (input index, overlap) for output index o along one axis.
	type tap struct {
		i int
		w float64
	}
	taps := func(n, in int, f float64) [][]tap {
		out := make([][]tap, n)
		for o := range out {
			lo, hi := float64(o)*f, float64(o+1)*f
			for i := int(lo); i < in && float64(i) < hi; i++ {
				ov := min(hi, float64(i+1)) - max(lo, float64(i))
				if ov > 1e-12 {
					out[o] = append(out[o], tap{i, ov / f})
				}
			}
		}
		return out
	}
	tx, ty := taps(w, m.w, fx), taps(h, m.h, fy)
	rows := make([]float64, 3*w*m.h) // horizontal pass: w x m.h
	for y := range m.h {
		for x, ts := range tx {
			for _, t := range ts {
				for c := range 3 {
					rows[3*(y*w+x)+c] += t.w * m.pix[3*(y*m.w+t.i)+c]
				}
			}
		}
	}
	out := rgbImage{w: w, h: h, pix: make([]float64, 3*w*h)}
	for y, ts := range ty {
		for _, t := range ts {
			for x := range w {
				for c := range 3 {
					out.pix[3*(y*w+x)+c] += t.w * rows[3*(t.i*w+x)+c]
				}
			}
		}
	}
	return out
}

// median returns the per-channel median colour.
func (m rgbImage) median() [3]float64 {
	var out [3]float64
	v := make([]float64, m.w*m.h)
	for c := range 3 {
		for i := range v {
			v[i] = m.pix[3*i+c]
		}
		slices.Sort(v)
		out[c] = v[len(v)/2]
	}
	return out
}

// largestBlob labels the 8-connected components of pixels showing the same palette colour
// and returns the one with the largest blend-weight mass (nil when there is none).
func largestBlob(w, h int, best []int8, alpha []float64) (blob []bool, color int, mass float64) {
	label := make([]int32, len(best))
	var stack []int
	next := int32(0)
	bestLabel := int32(0)
	for start := range best {
		if best[start] < 0 || label[start] != 0 {
			continue
		}
		next++
		k := best[start]
		m := 0.0
		stack = append(stack[:0], start)
		label[start] = next
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			m += alpha[i]
			x, y := i%w, i/w
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					nx, ny := x+dx, y+dy
					if nx < 0 || ny < 0 || nx >= w || ny >= h {
						continue
					}
					j := ny*w + nx
					if best[j] == k && label[j] == 0 {
						label[j] = next
						stack = append(stack, j)
					}
				}
			}
		}
		if m > mass {
			mass, color, bestLabel = m, int(k), next
		}
	}
	if bestLabel == 0 {
		return nil, 0, 0
	}
	blob = make([]bool, len(best))
	for i, l := range label {
		blob[i] = l == bestLabel
	}
	return blob, color, mass
}

// fit is one outline placement: centre (cx, cy) and radius r in pixels, the standard
// deviation blur in pixels of the Gaussian the rendered outline is blurred with (resampling,
// JPEG chroma subsampling and generative decoders all blur), and its error.
type fit struct {
	cx, cy, r, blur float64
	err             float64
	shape           string
}

// fitter fits outlines to a soft mask over a window of the image: mask[(y-win.Min.Y)*
// win.Dx() + x-win.Min.X] is the blend weight of pixel (x, y). cov and tmp are scratch
// buffers of the same layout.
type fitter struct {
	win      image.Rectangle
	mask     []float64
	energy   float64
	cov, tmp []float64
}

// supersample is the number of coverage samples per pixel side.
const supersample = 4

// errorOf renders the outline at the placement with area coverage, blurs it, and returns
// the sum of squared differences to the mask divided by the mask's energy.
func (f *fitter) errorOf(o outline, p fit) float64 {
	w := f.win.Dx()
	for y := f.win.Min.Y; y < f.win.Max.Y; y++ {
		for x := f.win.Min.X; x < f.win.Max.X; x++ {
			cov := 0
			for sy := range supersample {
				v := (float64(y) + (float64(sy)+0.5)/supersample - p.cy) / p.r
				if v < -1 || v > 1 {
					continue
				}
				for sx := range supersample {
					u := (float64(x) + (float64(sx)+0.5)/supersample - p.cx) / p.r
					if u >= -1 && u <= 1 && o.inside(u, v) {
						cov++
					}
				}
			}
			f.cov[(y-f.win.Min.Y)*w+x-f.win.Min.X] = float64(cov) / (supersample * supersample)
		}
	}
	if p.blur > 0.05 {
		blur(f.cov, f.tmp, w, f.win.Dy(), p.blur)
	}
	var sse float64
	for i, a := range f.mask {
		sse += (a - f.cov[i]) * (a - f.cov[i])
	}
	return sse / max(f.energy, 1e-9)
}

// blur convolves the w x h image v (row-major) in place with a Gaussian of standard
// deviation sigma pixels, truncated at 2.5 sigma, zero outside; tmp is scratch of the same
// size.
func blur(v, tmp []float64, w, h int, sigma float64) {
	rad := int(math.Ceil(2.5 * sigma))
	k := make([]float64, 2*rad+1)
	sum := 0.0
	for i := range k {
		d := float64(i - rad)
		k[i] = math.Exp(-d * d / (2 * sigma * sigma))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	for y := range h {
		for x := range w {
			s := 0.0
			for i, kv := range k {
				if xx := x + i - rad; xx >= 0 && xx < w {
					s += kv * v[y*w+xx]
				}
			}
			tmp[y*w+x] = s
		}
	}
	for y := range h {
		for x := range w {
			s := 0.0
			for i, kv := range k {
				if yy := y + i - rad; yy >= 0 && yy < h {
					s += kv * tmp[yy*w+x]
				}
			}
			v[y*w+x] = s
		}
	}
}

// fit refines a placement by coordinate descent on centre, radius and blur with shrinking
// steps.
func (f *fitter) fit(o outline, p fit) fit {
	p.err = f.errorOf(o, p)
	step, rstep, bstep := 0.5, 0.1, 0.3
	for range 3 {
		for improved := true; improved; {
			improved = false
			for _, c := range [8]fit{
				{cx: p.cx + step, cy: p.cy, r: p.r, blur: p.blur}, {cx: p.cx - step, cy: p.cy, r: p.r, blur: p.blur},
				{cx: p.cx, cy: p.cy + step, r: p.r, blur: p.blur}, {cx: p.cx, cy: p.cy - step, r: p.r, blur: p.blur},
				{cx: p.cx, cy: p.cy, r: p.r * (1 + rstep), blur: p.blur}, {cx: p.cx, cy: p.cy, r: p.r / (1 + rstep), blur: p.blur},
				{cx: p.cx, cy: p.cy, r: p.r, blur: min(p.blur+bstep, blurMax, blurFrac*p.r)}, {cx: p.cx, cy: p.cy, r: p.r, blur: max(p.blur-bstep, 0)},
			} {
				if c.err = f.errorOf(o, c); c.err < p.err {
					p, improved = c, true
				}
			}
		}
		step, rstep, bstep = step/2, rstep/2, bstep/2
	}
	return p
}
