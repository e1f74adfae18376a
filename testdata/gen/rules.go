package gen

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"math/rand/v2"
	"strings"
)

// Color is one entry of the palette: its caption word, the fill colour of the shape and the
// pitch of the notes in the sample's WAV clip.
type Color struct {
	Name    string
	RGB     color.RGBA
	PitchHz float64
}

// Colors is the palette. The fill colours are saturated (or white) so they stand apart from
// the grey textured background; the pitches are three semitones apart (A3, C4, D#4, F#4,
// A4, C5, D#5, F#5), about 19% from their neighbours, so a pitch tracker separates them
// easily.
var Colors = []Color{
	{"red", color.RGBA{220, 20, 20, 255}, 220.00},
	{"green", color.RGBA{30, 220, 50, 255}, 261.63},
	{"blue", color.RGBA{30, 60, 230, 255}, 311.13},
	{"yellow", color.RGBA{240, 220, 20, 255}, 369.99},
	{"magenta", color.RGBA{220, 30, 220, 255}, 440.00},
	{"cyan", color.RGBA{20, 210, 220, 255}, 523.25},
	{"white", color.RGBA{250, 250, 250, 255}, 622.25},
	{"orange", color.RGBA{250, 140, 0, 255}, 739.99},
}

// Shape is one class of drawn shape. Its WAV rhythm is Notes equal notes (see [Shape.Rhythm]).
type Shape struct {
	Name  string
	Notes int
}

// Shapes are the shape classes, in the order samples cycle through them (sample i has shape
// Shapes[i%len(Shapes)], so every class is equally frequent). Each has a distinct note count.
var Shapes = []Shape{
	{"circle", 1},
	{"cross", 2},
	{"triangle", 3},
	{"square", 4},
	{"star", 5},
}

// crossHalfWidth is the half width of a cross arm in unit coordinates.
const crossHalfWidth = 0.34

// squareHalf is the half side of a square in unit coordinates.
const squareHalf = 0.85

// starInner is the inner radius of the five-pointed star relative to the outer one.
const starInner = 0.45

var starPoly = func() [][2]float64 {
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

var trianglePoly = [][2]float64{{0, -1}, {1, 1}, {-1, 1}}

// Contains reports whether the point (u, v) lies inside the shape drawn in unit
// coordinates: the shape's centre is (0, 0), its bounding square is [-1, 1]², v grows
// downwards as image rows do. Circle: u²+v² <= 1. Square: |u|,|v| <= 0.85. Triangle:
// apex (0,-1), base (-1,1)-(1,1). Star: five points, outer radius 1, inner 0.45, one point
// up. Cross: |u|,|v| <= 1 with |u| <= 0.34 or |v| <= 0.34. The image renderer uses this
// test (with 2x2 supersampling); evaluators may use it to build templates.
func (s Shape) Contains(u, v float64) bool {
	switch s.Name {
	case "circle":
		return float64(u*u)+float64(v*v) <= 1 // no FMA: same result on every GOARCH
	case "square":
		return math.Abs(u) <= squareHalf && math.Abs(v) <= squareHalf
	case "triangle":
		return inPolygon(trianglePoly, u, v)
	case "star":
		return inPolygon(starPoly, u, v)
	case "cross":
		au, av := math.Abs(u), math.Abs(v)
		return au <= 1 && av <= 1 && (au <= crossHalfWidth || av <= crossHalfWidth)
	}
	return false
}

// inPolygon is the even-odd crossing test.
func inPolygon(p [][2]float64, u, v float64) bool {
	in := false
	for i, j := 0, len(p)-1; i < len(p); j, i = i, i+1 {
		xi, yi, xj, yj := p[i][0], p[i][1], p[j][0], p[j][1]
		if (yi > v) != (yj > v) {
			x := xi + float64((v-yi)*(xj-xi))/(yj-yi)
			if u < x {
				in = !in
			}
		}
	}
	return in
}

// Note is one tone of a rhythm, in seconds from the start of the clip.
type Note struct{ Start, End float64 }

// Rhythm returns the notes of the shape's clip of the given length: the clip is divided into
// Notes equal slots and note k sounds from 10% to 80% of slot k, so every note is followed
// by a silent gap of at least 20% of a slot (60 ms for a five-note, one-second clip).
func (s Shape) Rhythm(seconds float64) []Note {
	n := max(s.Notes, 1)
	slot := seconds / float64(n)
	notes := make([]Note, n)
	for k := range notes {
		notes[k] = Note{Start: (float64(k) + 0.1) * slot, End: (float64(k) + 0.8) * slot}
	}
	return notes
}

// Size is the caption word for the shape's scale. Scale is the shape's radius (half its
// bounding square) as a fraction of a grid cell (a third of the image side); Amplitude is
// the peak amplitude of the clip's notes, relative to full scale.
type Size struct {
	Name      string
	Scale     float64
	Amplitude float64
}

// Sizes are the two scales.
var Sizes = []Size{
	{"small", 0.30, 0.30},
	{"large", 0.46, 0.70},
}

// Position is a cell of the 3x3 grid the image is divided into. Row 0 is the top row,
// Col 0 the left column.
type Position struct {
	Name     string
	Row, Col int
}

// Positions are the nine grid cells in row-major order.
var Positions = []Position{
	{"upper left", 0, 0}, {"upper middle", 0, 1}, {"upper right", 0, 2},
	{"middle left", 1, 0}, {"center", 1, 1}, {"middle right", 1, 2},
	{"lower left", 2, 0}, {"lower middle", 2, 1}, {"lower right", 2, 2},
}

// Attributes are what a sample shows and sounds like, as caption words.
type Attributes struct {
	Color    string `json:"color"`
	Shape    string `json:"shape"`
	Size     string `json:"size"`
	Position string `json:"position"`
}

// Caption returns the sample's caption, "a <size> <colour> <shape> in the <position>":
// "a small red triangle in the upper left".
func (a Attributes) Caption() string {
	return fmt.Sprintf("a %s %s %s in the %s", a.Size, a.Color, a.Shape, a.Position)
}

// ErrCaption is returned (wrapped) by ParseCaption when a caption does not name exactly one
// value of each attribute.
var ErrCaption = errors.New("gen: caption does not state colour, shape, size and position")

// ParseCaption reads the attributes back from a caption. It is lenient about form (case,
// punctuation, word order, extra words) but strict about content: each of colour, shape,
// size and position must be named exactly once. On error the attributes that were found are
// still returned, so an evaluator can give partial credit.
func ParseCaption(caption string) (Attributes, error) {
	words := strings.FieldsFunc(strings.ToLower(caption), func(r rune) bool {
		return !(r >= 'a' && r <= 'z')
	})
	var a Attributes
	var problems []string
	pick := func(what string, dst *string, found []string) {
		switch {
		case len(found) == 0:
			problems = append(problems, "no "+what)
		case len(found) > 1:
			problems = append(problems, fmt.Sprintf("%d %ss %q", len(found), what, found))
		default:
			*dst = found[0]
		}
	}
	var colors, shapes, sizes, positions []string
	for i, w := range words {
		for _, c := range Colors {
			if w == c.Name {
				colors = append(colors, w)
			}
		}
		for _, s := range Shapes {
			if w == s.Name {
				shapes = append(shapes, w)
			}
		}
		for _, s := range Sizes {
			if w == s.Name {
				sizes = append(sizes, w)
			}
		}
		for _, p := range Positions {
			pw := strings.Fields(p.Name)
			if i+len(pw) <= len(words) && equalWords(words[i:i+len(pw)], pw) {
				positions = append(positions, p.Name)
			}
		}
	}
	pick("colour", &a.Color, colors)
	pick("shape", &a.Shape, shapes)
	pick("size", &a.Size, sizes)
	pick("position", &a.Position, positions)
	if problems != nil {
		return a, fmt.Errorf("%w: %q: %s", ErrCaption, caption, strings.Join(problems, ", "))
	}
	return a, nil
}

func equalWords(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ColorByName, ShapeByName, SizeByName and PositionByName look up a rule by caption word.
func ColorByName(name string) (Color, bool) {
	for _, c := range Colors {
		if c.Name == name {
			return c, true
		}
	}
	return Color{}, false
}

// ShapeByName returns the shape with the given name.
func ShapeByName(name string) (Shape, bool) {
	for _, s := range Shapes {
		if s.Name == name {
			return s, true
		}
	}
	return Shape{}, false
}

// SizeByName returns the size with the given name.
func SizeByName(name string) (Size, bool) {
	for _, s := range Sizes {
		if s.Name == name {
			return s, true
		}
	}
	return Size{}, false
}

// PositionByName returns the grid cell with the given name.
func PositionByName(name string) (Position, bool) {
	for _, p := range Positions {
		if p.Name == name {
			return p, true
		}
	}
	return Position{}, false
}

// Spec is one sample: its attributes, where its shape is drawn, its sound and its files.
// It is what OUT/manifest.jsonl holds, one Spec per line.
type Spec struct {
	Index int    `json:"index"`
	Key   string `json:"key"`
	Label string `json:"label"`
	Attributes
	Caption string `json:"caption"`
	// CenterX, CenterY and Radius place the shape in the image, in pixels: unit
	// coordinate (u, v) of [Shape.Contains] is pixel (CenterX + u*Radius, CenterY + v*Radius),
	// pixel (x, y) covering [x, x+1) x [y, y+1).
	CenterX     float64 `json:"center_x"`
	CenterY     float64 `json:"center_y"`
	Radius      float64 `json:"radius"`
	ImageSize   int     `json:"image_size"`
	ImageFormat string  `json:"image_format"` // jpeg or png
	// PlainBackground is set for [BackgroundPlain]: one grey per image, no stripes or noise.
	PlainBackground bool    `json:"plain_background,omitempty"`
	PitchHz         float64 `json:"pitch_hz"`
	Notes           int     `json:"notes"`
	// Image, Text and Audio are file paths relative to the output directory, with slashes.
	Image string `json:"image"`
	Text  string `json:"text"`
	Audio string `json:"audio"`
}

// newSampleRand returns sample i's random stream. Attributes are drawn first, then the
// image texture, then the audio noise, so each part is a pure function of (seed, i).
func newSampleRand(seed uint64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(i)))
}

// Spec returns the specification of sample i under the options (defaults applied).
func (o Options) Spec(i int) Spec {
	o = o.withDefaults()
	return o.drawSpec(i, newSampleRand(o.Seed, i))
}

func (o Options) drawSpec(i int, r *rand.Rand) Spec {
	shape := Shapes[i%len(Shapes)]
	col := Colors[r.IntN(len(Colors))]
	size := Sizes[r.IntN(len(Sizes))]
	pos := Positions[r.IntN(len(Positions))]
	if o.Layout == LayoutCenter {
		pos, _ = PositionByName("center")
	}
	cell := float64(o.ImageSize) / 3
	radius := size.Scale * cell
	slack := (0.5 - size.Scale) * cell * 0.5 // keep the shape inside its cell
	jx := (r.Float64()*2 - 1) * slack
	jy := (r.Float64()*2 - 1) * slack
	s := Spec{
		Index:           i,
		Key:             fmt.Sprintf("%06d", i),
		Attributes:      Attributes{Color: col.Name, Shape: shape.Name, Size: size.Name, Position: pos.Name},
		CenterX:         float64((float64(pos.Col)+0.5)*cell) + jx,
		CenterY:         float64((float64(pos.Row)+0.5)*cell) + jy,
		Radius:          radius,
		ImageSize:       o.ImageSize,
		PitchHz:         col.PitchHz,
		Notes:           shape.Notes,
		PlainBackground: o.Background == BackgroundPlain,
	}
	s.Caption = s.Attributes.Caption()
	switch o.LabelBy {
	case LabelColor:
		s.Label = col.Name
	case LabelColorShape:
		s.Label = col.Name + "-" + shape.Name
	default:
		s.Label = shape.Name
	}
	s.ImageFormat = o.ImageFormat
	if o.ImageFormat == FormatMixed {
		s.ImageFormat = FormatJPEG
		if i%2 == 1 {
			s.ImageFormat = FormatPNG
		}
	}
	ext := ".jpg"
	if s.ImageFormat == FormatPNG {
		ext = ".png"
	}
	base := s.Label + "/" + s.Key
	s.Image, s.Text, s.Audio = base+ext, base+".txt", base+".wav"
	return s
}
