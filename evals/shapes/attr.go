package shapes

import (
	"strings"

	"github.com/immkit/immkit/testdata/gen"
)

// Attr are the attributes of one sample as read from one modality, as caption words of
// testdata/gen ([gen.Colors], [gen.Shapes], [gen.Sizes], [gen.Positions]). An empty field
// means the attribute was not recognised (or the modality cannot carry it: sound has no
// position).
type Attr struct {
	Color    string `json:"color"`
	Shape    string `json:"shape"`
	Size     string `json:"size"`
	Position string `json:"position"`
}

// Get returns the attribute named by one of the Attribute constants ("" for an unknown
// name).
func (a Attr) Get(attribute string) string {
	switch attribute {
	case AttrColor:
		return a.Color
	case AttrShape:
		return a.Shape
	case AttrSize:
		return a.Size
	case AttrPosition:
		return a.Position
	case AttrColorShape:
		if a.Color == "" || a.Shape == "" {
			return ""
		}
		return a.Color + "-" + a.Shape
	}
	return ""
}

// Attribute names, as used in a [Report]. AttrColorShape is the joint attribute: it agrees
// when both colour and shape agree.
const (
	AttrColor      = "color"
	AttrShape      = "shape"
	AttrSize       = "size"
	AttrPosition   = "position"
	AttrColorShape = "color+shape"
)

// Attributes lists the attribute names in report order.
var Attributes = []string{AttrColor, AttrShape, AttrColorShape, AttrSize, AttrPosition}

// values returns the number of distinct values of an attribute (K of the uniform chance
// rate 1/K).
func values(attribute string) int {
	switch attribute {
	case AttrColor:
		return len(gen.Colors)
	case AttrShape:
		return len(gen.Shapes)
	case AttrSize:
		return len(gen.Sizes)
	case AttrPosition:
		return len(gen.Positions)
	case AttrColorShape:
		return len(gen.Colors) * len(gen.Shapes)
	}
	return 0
}

// words splits text into lower-case runs of letters a..z.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return r < 'a' || r > 'z'
	})
}

// FromCaption reads the attributes a caption names. It looks for the caption words of
// testdata/gen anywhere in the text, in any case, order and punctuation; an attribute is
// recognised when the text names exactly one distinct value of it ("a red red circle" is
// red, "a red green circle" has no colour). Positions are the two-word phrases ("upper
// left") and "center".
func FromCaption(s string) Attr {
	w := words(s)
	var a Attr
	a.Color = unique(w, 1, func(x []string) string {
		for _, c := range gen.Colors {
			if x[0] == c.Name {
				return c.Name
			}
		}
		return ""
	})
	a.Shape = unique(w, 1, func(x []string) string {
		for _, sh := range gen.Shapes {
			if x[0] == sh.Name {
				return sh.Name
			}
		}
		return ""
	})
	a.Size = unique(w, 1, func(x []string) string {
		for _, sz := range gen.Sizes {
			if x[0] == sz.Name {
				return sz.Name
			}
		}
		return ""
	})
	a.Position = unique(w, 2, func(x []string) string {
		for _, p := range gen.Positions {
			pw := strings.Fields(p.Name)
			if len(pw) <= len(x) && slicesEqual(x[:len(pw)], pw) {
				return p.Name
			}
		}
		return ""
	})
	return a
}

// unique runs match on every window of up to n words starting at each word and returns the
// single distinct value found, or "" when none or several distinct values are found.
func unique(w []string, n int, match func([]string) string) string {
	found := ""
	for i := range w {
		v := match(w[i:min(i+n, len(w))])
		switch {
		case v == "":
		case found == "":
			found = v
		case found != v:
			return ""
		}
	}
	return found
}

func slicesEqual(a, b []string) bool {
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

// FromLabel reads the attributes a conditioning label names: testdata/gen labels are a
// shape ("triangle"), a colour ("red") or both ("red-triangle").
func FromLabel(label string) Attr {
	var a Attr
	for _, w := range strings.Split(strings.ToLower(label), "-") {
		if _, ok := gen.ColorByName(w); ok {
			a.Color = w
		}
		if _, ok := gen.ShapeByName(w); ok {
			a.Shape = w
		}
	}
	return a
}
