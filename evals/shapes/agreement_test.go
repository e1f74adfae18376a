package shapes_test

import (
	"encoding/json"
	"image"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/immkit/immkit/encoders/audio"
	"github.com/immkit/immkit/evals/shapes"
	"github.com/immkit/immkit/testdata/gen"
)

// reference recomputes one pair's figures by brute force: agreement by counting, chance as
// the mean over all ordered pairs of samples (i, j) of [a_i == b_j != ""], which equals
// Σ_k p_A(k) p_B(k).
func reference(samples []shapes.Sample, a, b, attribute string) (n, agree int, chance float64) {
	get := func(s shapes.Sample, m string) (string, bool) {
		for _, x := range s.Absent {
			if x == m {
				return "", false
			}
		}
		var at shapes.Attr
		switch m {
		case shapes.Image:
			at = s.Image
		case shapes.Caption:
			at = s.Caption
		case shapes.Audio:
			at = s.Audio
		case shapes.Label:
			if s.Label == "" {
				return "", false
			}
			at = shapes.FromLabel(s.Label)
			if at.Get(attribute) == "" {
				return "", false
			}
		}
		return at.Get(attribute), true
	}
	var va, vb []string
	for _, s := range samples {
		x, okA := get(s, a)
		y, okB := get(s, b)
		if okA && okB {
			va, vb = append(va, x), append(vb, y)
			if x != "" && x == y {
				agree++
			}
		}
	}
	n = len(va)
	hits := 0
	for _, x := range va {
		for _, y := range vb {
			if x != "" && x == y {
				hits++
			}
		}
	}
	if n > 0 {
		chance = float64(hits) / float64(n*n)
	}
	return n, agree, chance
}

// checkReport compares every pair of a report with the brute-force reference.
func checkReport(t *testing.T, samples []shapes.Sample, r shapes.Report) {
	t.Helper()
	if r.Samples != len(samples) {
		t.Errorf("report of %d samples, want %d", r.Samples, len(samples))
	}
	for _, p := range r.Pairs {
		n, agree, chance := reference(samples, p.A, p.B, p.Attribute)
		if p.N != n || p.Agree != agree || math.Abs(p.Rate-float64(agree)/float64(n)) > 1e-12 || math.Abs(p.Chance-chance) > 1e-12 {
			t.Errorf("%s-%s %s: n %d agree %d rate %g chance %g; reference n %d agree %d chance %g",
				p.A, p.B, p.Attribute, p.N, p.Agree, p.Rate, p.Chance, n, agree, chance)
		}
	}
}

func find(r shapes.Report, a, b, attribute string) (shapes.PairAgreement, bool) {
	for _, p := range r.Pairs {
		if p.A == a && p.B == b && p.Attribute == attribute {
			return p, true
		}
	}
	return shapes.PairAgreement{}, false
}

func TestAgreementSmall(t *testing.T) {
	red := shapes.Attr{Color: "red", Shape: "circle", Size: "small", Position: "center"}
	blue := shapes.Attr{Color: "blue", Shape: "circle", Size: "large", Position: "center"}
	samples := []shapes.Sample{
		{Image: red, Caption: red, Audio: shapes.Attr{Color: "red", Shape: "circle"}, Label: "red-circle"},
		{Image: blue, Caption: red, Audio: shapes.Attr{Color: "blue"}, Label: "blue-circle"},
		{Image: shapes.Attr{}, Caption: blue, Label: "blue-circle", Absent: []string{shapes.Audio}},
		{Image: blue, Caption: blue, Audio: blue, Label: "circle"},
	}
	r := shapes.Agreement(samples)
	checkReport(t, samples, r)
	for _, tc := range []struct {
		a, b, attr string
		n, agree   int
		chance     float64
	}{
		// image colours red, blue, "", blue; caption red, red, blue, blue.
		{shapes.Image, shapes.Caption, shapes.AttrColor, 4, 2, (1.0/4)*(2.0/4) + (2.0/4)*(2.0/4)},
		// audio absent from sample 2: image red, blue, blue; audio red, blue, blue.
		{shapes.Image, shapes.Audio, shapes.AttrColor, 3, 3, (1.0/3)*(1.0/3) + (2.0/3)*(2.0/3)},
		// sample 3's label names no colour: image red, blue, "" against red, blue, blue.
		{shapes.Image, shapes.Label, shapes.AttrColor, 3, 2, (1.0/3)*(1.0/3) + (1.0/3)*(2.0/3)},
		{shapes.Audio, shapes.Label, shapes.AttrShape, 3, 2, 2.0 / 3},
		{shapes.Image, shapes.Caption, shapes.AttrColorShape, 4, 2, (1.0/4)*(2.0/4) + (2.0/4)*(2.0/4)},
	} {
		p, ok := find(r, tc.a, tc.b, tc.attr)
		if !ok || p.N != tc.n || p.Agree != tc.agree || math.Abs(p.Chance-tc.chance) > 1e-12 {
			t.Errorf("%s-%s %s: %+v (found %v), want n %d agree %d chance %g", tc.a, tc.b, tc.attr, p, ok, tc.n, tc.agree, tc.chance)
		}
	}
	if _, ok := find(r, shapes.Image, shapes.Audio, shapes.AttrPosition); ok {
		t.Error("image-audio position reported, but sound has no position")
	}
	if _, ok := find(r, shapes.Image, shapes.Label, shapes.AttrSize); ok {
		t.Error("image-label size reported, but labels name no size")
	}
	if p, _ := find(r, shapes.Image, shapes.Caption, shapes.AttrColor); p.Uniform != 1.0/8 {
		t.Errorf("uniform chance of colour %g, want 1/8", p.Uniform)
	}
	for _, rc := range r.Recognised {
		if rc.Modality == shapes.Image && rc.Attribute == shapes.AttrColor && (rc.N != 4 || rc.Recognised != 3) {
			t.Errorf("image colour recognition %+v, want 3 of 4", rc)
		}
		if rc.Modality == shapes.Audio && rc.Attribute == shapes.AttrShape && (rc.N != 3 || rc.Recognised != 2) {
			t.Errorf("audio shape recognition %+v, want 2 of 3", rc)
		}
	}

	// JSON round trip and Markdown.
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back shapes.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Pairs) != len(r.Pairs) || back.Pairs[0] != r.Pairs[0] || !strings.Contains(string(b), `"chance":`) {
		t.Errorf("JSON round trip lost pairs: %s", b)
	}
	md := r.Markdown()
	if !strings.Contains(md, "| image-caption | color | 4 | 0.500 | 0.375 | 0.125 |") {
		t.Errorf("Markdown lacks the image-caption colour row:\n%s", md)
	}
	var sb strings.Builder
	if err := shapes.WriteMarkdown(&sb, []string{"1 step", "2 steps"}, []shapes.Report{r, shapes.Agreement(samples[:1])}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "| image-caption | color | 0.500 (0.375) n=4 | 1.000 (1.000) n=1 |") {
		t.Errorf("WriteMarkdown lacks the image-caption colour row:\n%s", sb.String())
	}
	if err := shapes.WriteMarkdown(&sb, []string{"a"}, nil); err == nil {
		t.Error("WriteMarkdown with 1 name for 0 reports: no error")
	}
	if e := shapes.Agreement(nil); e.Samples != 0 || len(e.Pairs) != 0 {
		t.Errorf("empty report %+v", e)
	}
}

// TestAgreementCorpus runs Detect and Agreement on corpus samples (images at 32 px
// through pixel latents, captions, the WAV clips, colour-shape labels): every pair agrees
// on nearly every sample. Pairing each sample's image and sound with other samples'
// captions and labels (cyclic shifts) must bring every rate down to its chance rate.
func TestAgreementCorpus(t *testing.T) {
	const n = 60
	samples := corpus(t, gen.Options{Seed: 24, LabelBy: gen.LabelColorShape}, n)
	r := rand.New(rand.NewPCG(1, 1))
	images := make([]*image.RGBA, n)
	captions, labels := make([]string, n), make([]string, n)
	waves := make([][]float32, n)
	rate := 0
	for i, x := range samples {
		img := imageAt(t, x.Image, 32, 0, r)
		images[i] = image.NewRGBA(img.Bounds())
		for y := range 32 {
			for xx := range 32 {
				images[i].Set(xx, y, img.At(xx, y))
			}
		}
		captions[i], labels[i] = x.Spec.Caption, x.Spec.Label
		a, err := audio.Decode(x.Audio)
		if err != nil {
			t.Fatal(err)
		}
		waves[i], rate = a.Mono(), a.Rate
	}
	detected := shapes.Detect(images, captions, waves, rate, labels)
	rep := shapes.Agreement(detected)
	checkReport(t, detected, rep)
	if len(rep.Pairs) != 5+4+4+3*3 { // audio has no position, labels name colour and shape
		t.Errorf("%d pairs reported, want 22", len(rep.Pairs))
	}
	for _, p := range rep.Pairs {
		if p.N != n || p.Rate < 0.95 {
			t.Errorf("%s-%s %s: rate %.3f n %d, want >= 0.95 over %d", p.A, p.B, p.Attribute, p.Rate, p.N, n)
		}
		if p.Rate-p.Chance < 0.45 {
			t.Errorf("%s-%s %s: rate %.3f not clearly above chance %.3f", p.A, p.B, p.Attribute, p.Rate, p.Chance)
		}
	}

	var shifted []shapes.Sample
	for k := 1; k < n; k += 3 {
		for i, s := range detected {
			o := detected[(i+k)%n]
			shifted = append(shifted, shapes.Sample{Image: s.Image, Audio: s.Audio, Caption: o.Caption, Label: o.Label})
		}
	}
	rs := shapes.Agreement(shifted)
	for _, p := range rs.Pairs {
		if p.A == shapes.Image && p.B == shapes.Audio || p.A == shapes.Caption && p.B == shapes.Label {
			continue // both still from the same sample
		}
		sd := math.Sqrt(p.Chance * (1 - p.Chance) / n) // samples repeat across shifts: n, not N
		if math.Abs(p.Rate-p.Chance) > 4*sd+1.0/n {
			t.Errorf("shuffled %s-%s %s: rate %.3f, chance %.3f (sd %.3f)", p.A, p.B, p.Attribute, p.Rate, p.Chance, sd)
		}
	}
	t.Logf("\n%s", rep.Markdown())
}

func TestDetectAbsent(t *testing.T) {
	tone := make([]float32, 16000)
	for i := range tone {
		if i > 2000 && i < 12000 {
			tone[i] = float32(0.7 * math.Sin(2*math.Pi*440*float64(i)/16000))
		}
	}
	got := shapes.Detect(nil, nil, [][]float32{nil, tone}, 16000, []string{"circle"})
	if len(got) != 2 {
		t.Fatalf("%d samples, want 2", len(got))
	}
	if want := []string{shapes.Image, shapes.Caption, shapes.Audio}; strings.Join(got[0].Absent, ",") != strings.Join(want, ",") || got[0].Label != "circle" {
		t.Errorf("sample 0: %+v, want all absent, label circle", got[0])
	}
	if a := got[1].Audio; a != (shapes.Attr{Color: "magenta", Shape: "circle", Size: "large"}) || len(got[1].Absent) != 2 {
		t.Errorf("sample 1: %+v, want a large magenta circle in sound only", got[1])
	}
}
