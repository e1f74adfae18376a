package gen_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/immkit/immkit/testdata/gen"
)

func TestCaptionRoundTrip(t *testing.T) {
	dir := generate(t, gen.Options{Seed: 12, Samples: 200, ImageSize: 24, AudioSeconds: 0.05})
	seen := map[string]bool{}
	for _, m := range readManifest(t, dir) {
		a, err := gen.ParseCaption(m.Caption)
		want := gen.Attributes{Color: m.Color, Shape: m.Shape, Size: m.Size, Position: m.Position}
		if err != nil || a != want {
			t.Errorf("ParseCaption(%q) = %+v, %v; want %+v", m.Caption, a, err, want)
		}
		if a.Caption() != m.Caption {
			t.Errorf("Caption() = %q, want %q", a.Caption(), m.Caption)
		}
		seen[m.Position] = true
	}
	if len(seen) != 9 {
		t.Errorf("200 samples used %d of 9 positions", len(seen))
	}
}

func TestParseCaption(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want gen.Attributes
		ok   bool
	}{
		{"a small red triangle in the upper left", gen.Attributes{"red", "triangle", "small", "upper left"}, true},
		{"A LARGE Orange star, lower middle.", gen.Attributes{"orange", "star", "large", "lower middle"}, true},
		{"center: large white circle", gen.Attributes{"white", "circle", "large", "center"}, true},
		{"a large blue square", gen.Attributes{"blue", "square", "large", ""}, false},
		{"a small red green cross in the center", gen.Attributes{"", "cross", "small", "center"}, false},
		{"a small purple hexagon in the middle right", gen.Attributes{"", "", "small", "middle right"}, false},
		{"", gen.Attributes{}, false},
		{"\xff\xfe small red circle in the center", gen.Attributes{"red", "circle", "small", "center"}, true},
	} {
		got, err := gen.ParseCaption(tc.in)
		if got != tc.want || (err == nil) != tc.ok || (err != nil && !errors.Is(err, gen.ErrCaption)) {
			t.Errorf("ParseCaption(%q) = %+v, %v; want %+v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func ExampleParseCaption() {
	a, err := gen.ParseCaption("a small red triangle in the upper left")
	fmt.Printf("%+v %v\n", a, err)
	c, _ := gen.ColorByName(a.Color)
	s, _ := gen.ShapeByName(a.Shape)
	fmt.Printf("pitch %.0f Hz, %d notes\n", c.PitchHz, s.Notes)
	// Output:
	// {Color:red Shape:triangle Size:small Position:upper left} <nil>
	// pitch 220 Hz, 3 notes
}

// FuzzParseCaption checks that ParseCaption never panics and that whatever it accepts is
// stable: the canonical caption of the parsed attributes parses to the same attributes.
func FuzzParseCaption(f *testing.F) {
	for _, s := range []string{"a small red triangle in the upper left", "center: large white circle", "", "\xff", "upper upper left left"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := gen.ParseCaption(s)
		if err != nil {
			if !errors.Is(err, gen.ErrCaption) {
				t.Fatalf("error %v does not wrap ErrCaption", err)
			}
			return
		}
		b, err := gen.ParseCaption(a.Caption())
		if err != nil || b != a {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, a, a.Caption(), b, err)
		}
	})
}
