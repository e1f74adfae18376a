package shapes

import (
	"fmt"
	"image"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// Modality names, as used in [Sample.Absent] and a [Report]. Label is the conditioning
// label, treated as one more source of attributes.
const (
	Image   = "image"
	Caption = "caption"
	Audio   = "audio"
	Label   = "label"
)

// Sample is one generated sample's attributes as read from each modality.
type Sample struct {
	Image, Caption, Audio Attr
	// Label is the conditioning label the sample was generated for ("red-triangle",
	// "triangle" or "red", as testdata/gen labels), or "" for unconditional generation.
	Label string
	// Absent lists the modalities (Image, Caption, Audio) the sample has no output for,
	// e.g. those a model was not trained on; their Attr is ignored. nil means all three
	// are present. A present modality whose attributes were not recognised counts as a
	// disagreement, not as absent.
	Absent []string
}

// attr returns the sample's attributes from a modality, and whether it is present.
func (s Sample) attr(modality string) (Attr, bool) {
	if slices.Contains(s.Absent, modality) {
		return Attr{}, false
	}
	switch modality {
	case Image:
		return s.Image, true
	case Caption:
		return s.Caption, true
	case Audio:
		return s.Audio, true
	case Label:
		return FromLabel(s.Label), s.Label != ""
	}
	return Attr{}, false
}

// carries reports whether a modality can express an attribute at all: sound has no
// position, labels name colour and/or shape only.
func carries(modality, attribute string) bool {
	switch modality {
	case Audio:
		return attribute != AttrPosition
	case Label:
		return attribute == AttrColor || attribute == AttrShape || attribute == AttrColorShape
	}
	return true
}

// Pairs are the modality pairs a Report compares, in report order.
var Pairs = [][2]string{
	{Image, Caption}, {Image, Audio}, {Caption, Audio},
	{Image, Label}, {Caption, Label}, {Audio, Label},
}

// PairAgreement is the agreement of two modalities on one attribute.
type PairAgreement struct {
	A         string `json:"a"`
	B         string `json:"b"`
	Attribute string `json:"attribute"`
	// N is the number of samples where both modalities are present (for the label: where
	// the label names the attribute).
	N int `json:"n"`
	// Agree is the number of those samples where both name the same value; an attribute
	// that one side does not recognise never agrees.
	Agree int     `json:"agree"`
	Rate  float64 `json:"rate"` // Agree / N
	// Chance is the agreement expected if the two sides were independent with the same
	// marginals: Σ_k p_A(k) p_B(k) over the attribute's values k, p from the N samples
	// (unrecognised values take part in p but never agree).
	Chance float64 `json:"chance"`
	// Uniform is 1/K for an attribute of K values: chance agreement of a uniform guess.
	Uniform float64 `json:"uniform"`
}

// Recognition is how often a modality's attribute was recognised at all.
type Recognition struct {
	Modality   string  `json:"modality"`
	Attribute  string  `json:"attribute"`
	N          int     `json:"n"` // samples where the modality is present
	Recognised int     `json:"recognised"`
	Rate       float64 `json:"rate"`
}

// Report is the cross-modal consistency of a set of samples. It marshals to JSON as is.
type Report struct {
	Samples int `json:"samples"`
	// Pairs holds, for every pair in [Pairs] and every attribute both modalities carry
	// ([Attributes] order), the agreement; pairs with no sample having both are left out.
	Pairs []PairAgreement `json:"pairs"`
	// Recognised holds, per present modality and attribute it carries, the recognition
	// rate.
	Recognised []Recognition `json:"recognised"`
}

// Agreement computes the agreement of every pair of modalities (and of each modality
// with the conditioning label) on every attribute, with chance rates.
func Agreement(samples []Sample) Report {
	r := Report{Samples: len(samples), Pairs: []PairAgreement{}, Recognised: []Recognition{}}
	for _, m := range []string{Image, Caption, Audio} {
		for _, at := range Attributes {
			if !carries(m, at) {
				continue
			}
			rec := Recognition{Modality: m, Attribute: at}
			for _, s := range samples {
				if a, ok := s.attr(m); ok {
					rec.N++
					if a.Get(at) != "" {
						rec.Recognised++
					}
				}
			}
			if rec.N > 0 {
				rec.Rate = float64(rec.Recognised) / float64(rec.N)
				r.Recognised = append(r.Recognised, rec)
			}
		}
	}
	for _, p := range Pairs {
		for _, at := range Attributes {
			if !carries(p[0], at) || !carries(p[1], at) {
				continue
			}
			pa := PairAgreement{A: p[0], B: p[1], Attribute: at, Uniform: 1 / float64(values(at))}
			ca, cb := map[string]int{}, map[string]int{}
			for _, s := range samples {
				a, okA := s.attr(p[0])
				b, okB := s.attr(p[1])
				if !okA || !okB {
					continue
				}
				va, vb := a.Get(at), b.Get(at)
				if p[1] == Label && vb == "" {
					continue // the label does not name this attribute
				}
				pa.N++
				ca[va]++
				cb[vb]++
				if va != "" && va == vb {
					pa.Agree++
				}
			}
			if pa.N == 0 {
				continue
			}
			n := float64(pa.N)
			pa.Rate = float64(pa.Agree) / n
			for k, c := range ca {
				if k != "" {
					pa.Chance += float64(c) / n * float64(cb[k]) / n
				}
			}
			r.Pairs = append(r.Pairs, pa)
		}
	}
	return r
}

// Markdown renders the report as two Markdown tables: agreement per pair and attribute,
// and recognition per modality and attribute.
func (r Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d samples.\n\n", r.Samples)
	b.WriteString("| pair | attribute | n | agreement | chance (marginals) | chance (uniform) |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|\n")
	for _, p := range r.Pairs {
		fmt.Fprintf(&b, "| %s-%s | %s | %d | %.3f | %.3f | %.3f |\n", p.A, p.B, p.Attribute, p.N, p.Rate, p.Chance, p.Uniform)
	}
	b.WriteString("\n| modality | attribute | n | recognised |\n|---|---|---:|---:|\n")
	for _, c := range r.Recognised {
		fmt.Fprintf(&b, "| %s | %s | %d | %.3f |\n", c.Modality, c.Attribute, c.N, c.Rate)
	}
	return b.String()
}

// WriteMarkdown writes one Markdown table comparing several reports (e.g. one per number
// of sampling steps, named by names): a row per pair and attribute, a column per report
// holding "agreement (chance)", chance from the marginals.
func WriteMarkdown(w io.Writer, names []string, reports []Report) error {
	if len(names) != len(reports) {
		return fmt.Errorf("shapes: %d names for %d reports", len(names), len(reports))
	}
	type key struct{ a, b, at string }
	var rows []key
	cells := map[key][]string{}
	for i, r := range reports {
		for _, p := range r.Pairs {
			k := key{p.A, p.B, p.Attribute}
			if _, ok := cells[k]; !ok {
				rows = append(rows, k)
				cells[k] = make([]string, len(reports))
			}
			cells[k][i] = fmt.Sprintf("%.3f (%.3f) n=%d", p.Rate, p.Chance, p.N)
		}
	}
	var b strings.Builder
	b.WriteString("| pair | attribute |")
	for _, n := range names {
		fmt.Fprintf(&b, " %s |", n)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---:|", len(names)) + "\n")
	for _, k := range rows {
		fmt.Fprintf(&b, "| %s-%s | %s |", k.a, k.b, k.at)
		for _, c := range cells[k] {
			if c == "" {
				c = "-"
			}
			fmt.Fprintf(&b, " %s |", c)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Detect runs the detectors on a batch of decoded samples, on GOMAXPROCS goroutines.
// Sample i has images[i], captions[i], audio[i] (mono at rate Hz) and labels[i]; a nil
// slice means the modality is absent from every sample, a nil image or waveform that it is
// absent from that sample. The batch size is the longest slice; shorter slices count as
// absent past their end (labels as "").
func Detect(images []*image.RGBA, captions []string, audio [][]float32, rate int, labels []string) []Sample {
	n := max(len(images), len(captions), len(audio), len(labels))
	out := make([]Sample, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				s := &out[i]
				if i < len(images) && images[i] != nil {
					s.Image = FromImage(images[i])
				} else {
					s.Absent = append(s.Absent, Image)
				}
				if i < len(captions) {
					s.Caption = FromCaption(captions[i])
				} else {
					s.Absent = append(s.Absent, Caption)
				}
				if i < len(audio) && audio[i] != nil {
					s.Audio = FromAudio(audio[i], rate)
				} else {
					s.Absent = append(s.Absent, Audio)
				}
				if i < len(labels) {
					s.Label = labels[i]
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}
