package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// textSource is a plain text file given as a source: one sample per file, line or
// paragraph (--text-unit).
type textSource struct {
	path string
	opts *SourceOptions
}

func (t *textSource) Units(_ context.Context, emit func(Unit) error) error {
	p := filepath.ToSlash(filepath.Clean(t.path))
	base := path.Base(p)
	key, _ := splitKey(base)
	max := t.opts.MaxFileBytes
	c := &Candidate{Key: key, Source: p, Members: []Member{{Kind: KindText, Name: base, Source: p,
		Load: func() ([]byte, error) { return readLimited(t.path, max) }}}}
	applyLabel(c, t.opts, path.Base(path.Dir(p)), path.Dir(p) != ".")
	return emit(Unit{ID: p, Part: base, Candidates: func(ctx context.Context, emit func(*Candidate) error) error {
		if t.opts.TextUnit == TextUnitFile {
			return emit(c)
		}
		return splitTextCandidate(ctx, c, t.opts, emit)
	}})
}

// splitTextCandidate splits a candidate made of one text member into one candidate per
// non-blank line (key#L<n>) or paragraph (key#P<n>, paragraphs separated by blank lines).
func splitTextCandidate(ctx context.Context, c *Candidate, o *SourceOptions, emit func(*Candidate) error) error {
	m := c.Members[0]
	b := m.Data
	if m.Load != nil {
		var err error
		if b, err = m.Load(); err != nil {
			var pe *probeError
			if !errors.As(err, &pe) {
				pe = &probeError{reason: ReasonReadError, detail: err.Error()}
			}
			return emit(&Candidate{Key: c.Key, Source: m.Source, Reject: &Reject{Source: m.Source, Stage: StageSource, Reason: pe.reason, Detail: pe.detail}})
		}
	}
	if len(b) == 0 {
		return emit(&Candidate{Key: c.Key, Source: m.Source, Reject: &Reject{Source: m.Source, Stage: StageSource, Reason: ReasonEmptyFile, Detail: "text file is empty"}})
	}
	lines := bytes.Split(b, []byte("\n"))
	n := 0
	var para []string
	paraStart := 0
	flushPara := func(end int) error {
		if len(para) == 0 {
			return nil
		}
		n++
		text := strings.Join(para, "\n")
		para = para[:0]
		return emit(&Candidate{Key: fmt.Sprintf("%s#P%d", c.Key, n), Source: fmt.Sprintf("%s:%d-%d", m.Source, paraStart, end), Label: c.Label, Text: &text})
	}
	for i, l := range lines {
		if err := ctx.Err(); err != nil {
			return err
		}
		l = bytes.TrimRight(l, "\r")
		blank := len(bytes.TrimSpace(l)) == 0
		if o.TextUnit == TextUnitLine {
			if blank {
				continue
			}
			text := string(l)
			n++
			if err := emit(&Candidate{Key: fmt.Sprintf("%s#L%d", c.Key, i+1), Source: fmt.Sprintf("%s:%d", m.Source, i+1), Label: c.Label, Text: &text}); err != nil {
				return err
			}
			continue
		}
		if blank {
			if err := flushPara(i); err != nil {
				return err
			}
			continue
		}
		if len(para) == 0 {
			paraStart = i + 1
		}
		para = append(para, string(l))
	}
	if err := flushPara(len(lines)); err != nil {
		return err
	}
	if n == 0 {
		return emit(&Candidate{Key: c.Key, Source: m.Source, Reject: &Reject{Source: m.Source, Stage: StageSource, Reason: ReasonNoContent, Detail: "text file has only blank lines"}})
	}
	return nil
}
