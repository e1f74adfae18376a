package run

import (
	"strconv"
	"strings"

	"github.com/immkit/immkit/evals/shapes"
	"github.com/immkit/immkit/imm/mmdata"
)

// ShapesReport is the agreement report of evals/shapes.
type ShapesReport = shapes.Report

// ShapesLabels reports whether every label names a colour and/or shape of the shapes
// corpus (testdata/gen labels).
func ShapesLabels(labels []string) bool {
	if len(labels) == 0 {
		return false
	}
	for _, l := range labels {
		if a := shapes.FromLabel(l); a.Color == "" && a.Shape == "" {
			return false
		}
	}
	return true
}

// detect runs the shapes detectors on decoded media; labels are class ids (nil or the
// null class: no label).
func (s *Session) detect(m *mmdata.Media, labels []int32) []shapes.Sample {
	var names []string
	if labels != nil {
		names = make([]string, len(labels))
		for i, l := range labels {
			if int(l) < len(s.Cfg.Labels) {
				names[i] = s.Cfg.Labels[l]
			}
		}
	}
	return shapes.Detect(m.Images, m.Captions, m.Audio, m.AudioRate, names)
}

func (s *Session) evalShapes(o EvalOptions, res *EvalResult) error {
	res.Shapes = map[string]*ShapesReport{}
	for _, st := range o.Steps {
		var all []shapes.Sample
		err := s.generated(o, st, func(m *mmdata.Media, labels []int32) error {
			all = append(all, s.detect(m, labels)...)
			return nil
		})
		if err != nil {
			return err
		}
		r := shapes.Agreement(all)
		res.Shapes[strconv.Itoa(st)] = &r
	}
	var real []shapes.Sample
	if _, err := s.real(o.N, func(m *mmdata.Media, labels []int32) error {
		real = s.detect(m, labels)
		return nil
	}); err != nil {
		return err
	}
	r := shapes.Agreement(real)
	res.Shapes["real"] = &r
	return nil
}

// ShapesMarkdown renders the shapes part of an eval as one Markdown table: a row per
// modality pair and attribute, a column per sampling-step count and one for the real val
// data, each cell "agreement (chance) n=N".
func ShapesMarkdown(res *EvalResult) string {
	var names []string
	var reports []shapes.Report
	for _, st := range res.Steps {
		if r, ok := res.Shapes[strconv.Itoa(st)]; ok {
			names = append(names, strconv.Itoa(st)+" steps")
			reports = append(reports, *r)
		}
	}
	if r, ok := res.Shapes["real"]; ok {
		names = append(names, "real val data")
		reports = append(reports, *r)
	}
	var b strings.Builder
	if err := shapes.WriteMarkdown(&b, names, reports); err != nil {
		return err.Error() + "\n"
	}
	return b.String()
}
