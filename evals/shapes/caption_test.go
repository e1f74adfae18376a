package shapes_test

import (
	"strings"
	"testing"

	"github.com/immkit/immkit/evals/shapes"
	"github.com/immkit/immkit/testdata/gen"
)

func TestFromCaption(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want shapes.Attr
	}{
		{"a small red triangle in the upper left", shapes.Attr{"red", "triangle", "small", "upper left"}},
		{"A LARGE Orange star, lower middle.", shapes.Attr{"orange", "star", "large", "lower middle"}},
		{"center: large white circle", shapes.Attr{"white", "circle", "large", "center"}},
		{"a large blue square", shapes.Attr{"blue", "square", "large", ""}},
		{"a small red red cross cross in the center", shapes.Attr{"red", "cross", "small", "center"}},
		{"a small red green cross in the center", shapes.Attr{"", "cross", "small", "center"}},
		{"a small large cyan star in the middle left and the middle right", shapes.Attr{"cyan", "star", "", ""}},
		{"a small purple hexagon in the middle right", shapes.Attr{"", "", "small", "middle right"}},
		{"a smallred triangles in the upperleft", shapes.Attr{}},
		{"in the upper middle", shapes.Attr{Position: "upper middle"}},
		{"middle", shapes.Attr{}},
		{"", shapes.Attr{}},
		{"\xff\xfe\x00 magenta\tsquare", shapes.Attr{Color: "magenta", Shape: "square"}},
	} {
		if got := shapes.FromCaption(tc.in); got != tc.want {
			t.Errorf("FromCaption(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// TestFromCaptionCorpus reads every caption of a corpus back and compares it with the
// attributes the generator drew (its manifest record), and with gen.ParseCaption (a
// second, independent parser).
func TestFromCaptionCorpus(t *testing.T) {
	o := gen.Options{Seed: 23}
	for i := range 300 {
		s := o.Spec(i)
		got := shapes.FromCaption(s.Caption)
		want := shapes.Attr{Color: s.Color, Shape: s.Shape, Size: s.Size, Position: s.Position}
		if got != want {
			t.Errorf("%q: %+v, want %+v", s.Caption, got, want)
		}
		if p, err := gen.ParseCaption(s.Caption); err != nil || p != s.Attributes {
			t.Errorf("gen.ParseCaption(%q) = %+v, %v", s.Caption, p, err)
		}
	}
}

func TestFromLabel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want shapes.Attr
	}{
		{"red-triangle", shapes.Attr{Color: "red", Shape: "triangle"}},
		{"triangle", shapes.Attr{Shape: "triangle"}},
		{"Cyan", shapes.Attr{Color: "cyan"}},
		{"purple-hexagon", shapes.Attr{}},
		{"", shapes.Attr{}},
	} {
		if got := shapes.FromLabel(tc.in); got != tc.want {
			t.Errorf("FromLabel(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func FuzzFromCaption(f *testing.F) {
	for i := range 10 {
		f.Add(gen.Options{Seed: 1}.Spec(i).Caption)
	}
	f.Add("a small red green cross")
	f.Fuzz(func(t *testing.T, s string) {
		a := shapes.FromCaption(s)
		// Whatever was recognised must be recognised again from the canonical caption
		// built from it.
		if a.Color != "" && a.Shape != "" && a.Size != "" && a.Position != "" {
			back := shapes.FromCaption(gen.Attributes{Color: a.Color, Shape: a.Shape, Size: a.Size, Position: a.Position}.Caption())
			if back != a {
				t.Errorf("%q: %+v, canonical caption gives %+v", s, a, back)
			}
		}
		for _, v := range []string{a.Color, a.Shape, a.Size, a.Position} {
			for _, w := range strings.Fields(v) {
				if !strings.Contains(strings.ToLower(s), w) {
					t.Errorf("%q: recognised %q that it does not contain", s, v)
				}
			}
		}
	})
}
