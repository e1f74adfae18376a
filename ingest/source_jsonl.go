package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// jsonlSource reads one JSON object per line. Flags name the key, text, label, image and
// audio fields; an image or audio field holds a path relative to the jsonl file's directory
// (which must stay inside it) or base64 bytes (optionally as a data: URL). The remaining
// fields are kept as a JSON object in the meta column.
type jsonlSource struct {
	path string
	opts *SourceOptions
}

func (s *jsonlSource) Units(_ context.Context, emit func(Unit) error) error {
	name := filepath.ToSlash(filepath.Clean(s.path))
	return emit(Unit{ID: name, Part: path.Base(name), Candidates: s.candidates})
}

func (s *jsonlSource) candidates(ctx context.Context, emit func(*Candidate) error) error {
	name := filepath.ToSlash(filepath.Clean(s.path))
	f, err := os.Open(s.path)
	if err != nil {
		return emit(&Candidate{Key: name, Source: name, Reject: &Reject{Source: name, Stage: StageSource, Reason: ReasonReadError, Detail: err.Error()}})
	}
	defer f.Close()
	baseDir, err := filepath.Abs(filepath.Dir(s.path))
	if err == nil {
		baseDir, err = filepath.EvalSymlinks(baseDir)
	}
	if err != nil {
		return fmt.Errorf("ingest: jsonl %s: %w", s.path, err)
	}
	stem, _ := splitKey(path.Base(name))
	dirLabel := path.Base(path.Dir(name))
	r := bufio.NewReaderSize(f, 1<<20)
	for lineNo := 1; ; lineNo++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, err := readLine(r, s.opts.MaxFileBytes)
		src := fmt.Sprintf("%s:%d", name, lineNo)
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return nil
		}
		if errors.Is(err, errLineTooLong) {
			if err := emit(rejectCandidate(src, ReasonFileTooLarge, fmt.Sprintf("line longer than --max-file-bytes %d", s.opts.MaxFileBytes))); err != nil {
				return err
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return emit(rejectCandidate(src, ReasonReadError, err.Error()))
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		c := s.record(line, src, fmt.Sprintf("%s:%d", stem, lineNo), baseDir, dirLabel)
		if err := emit(c); err != nil {
			return err
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line without its newline, at most max bytes (the rest of a longer
// line is skipped and errLineTooLong returned).
func readLine(r *bufio.Reader, max int64) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if int64(len(line)+len(chunk)) > max {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			return nil, errLineTooLong
		}
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimRight(line, "\r\n"), err
	}
}

func rejectCandidate(src, reason, detail string) *Candidate {
	return &Candidate{Key: src, Source: src, Reject: &Reject{Source: src, Stage: StageSource, Reason: reason, Detail: detail}}
}

// record turns one jsonl line into a candidate.
func (s *jsonlSource) record(line []byte, src, defaultKey, baseDir, dirLabel string) *Candidate {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		return rejectCandidate(src, ReasonBadJSON, err.Error())
	}
	o := s.opts
	c := &Candidate{Key: defaultKey, Source: src}
	take := func(field string) (json.RawMessage, bool) {
		v, ok := obj[field]
		if ok {
			delete(obj, field)
		}
		return v, ok && string(v) != "null"
	}
	scalar := func(v json.RawMessage) (string, bool) {
		var str string
		if json.Unmarshal(v, &str) == nil {
			return str, true
		}
		var num json.Number
		if json.Unmarshal(v, &num) == nil {
			return num.String(), true
		}
		return "", false
	}
	keyField := o.KeyField
	if _, ok := obj[keyField]; !ok {
		keyField = ColKey
	}
	if v, ok := take(keyField); ok {
		k, ok := scalar(v)
		if !ok {
			return rejectCandidate(src, ReasonBadRow, fmt.Sprintf("key field %q is not a string or number", o.KeyField))
		}
		c.Key = k
	}
	if v, ok := take(o.TextField); ok {
		var t string
		if err := json.Unmarshal(v, &t); err != nil {
			return rejectCandidate(src, ReasonBadRow, fmt.Sprintf("text field %q is not a string", o.TextField))
		}
		c.Text = &t
	}
	if v, ok := take(o.LabelField); ok && (o.LabelFrom == LabelAuto || o.LabelFrom == LabelField) {
		l, ok := scalar(v)
		if !ok {
			return rejectCandidate(src, ReasonBadRow, fmt.Sprintf("label field %q is not a string or number", o.LabelField))
		}
		c.Label = &l
	}
	if c.Label == nil && o.LabelFrom == LabelDir && dirLabel != "." {
		c.Label = strPtr(dirLabel)
	}
	for _, m := range []struct {
		field string
		kind  Kind
	}{{o.ImageField, KindImage}, {o.AudioField, KindAudio}} {
		v, ok := take(m.field)
		if !ok {
			continue
		}
		var str string
		if err := json.Unmarshal(v, &str); err != nil {
			return rejectCandidate(src, ReasonBadRow, fmt.Sprintf("%s field %q is not a string (path or base64)", m.kind, m.field))
		}
		mem, rej := mediaMember(str, m.kind, src+"#"+m.field, baseDir, o.MaxFileBytes)
		if rej != nil {
			return rejectCandidate(src, rej.reason, rej.detail)
		}
		c.Members = append(c.Members, mem)
	}
	if len(obj) > 0 {
		b, err := json.Marshal(obj) // remaining fields, keys sorted
		if err != nil {
			return rejectCandidate(src, ReasonBadJSON, err.Error())
		}
		c.Meta = string(b)
	}
	return c
}

// mediaMember resolves a jsonl media field: a data: URL or base64 bytes, or a path relative
// to baseDir that must stay inside it (symlinks resolved).
func mediaMember(v string, kind Kind, src, baseDir string, max int64) (Member, *probeError) {
	if rest, ok := strings.CutPrefix(v, "data:"); ok {
		i := strings.Index(rest, ";base64,")
		if i < 0 {
			return Member{}, perr(ReasonBadBase64, "data: URL without ;base64,")
		}
		b, err := base64.StdEncoding.DecodeString(rest[i+len(";base64,"):])
		if err != nil {
			return Member{}, perr(ReasonBadBase64, "%v", err)
		}
		return Member{Kind: kind, Name: "", Source: src, Data: b}, nil
	}
	safe := v != "" && !filepath.IsAbs(v) && safeMemberName(filepath.ToSlash(v))
	if safe {
		if _, err := os.Lstat(filepath.Join(baseDir, filepath.FromSlash(v))); err == nil {
			return pathMember(v, kind, src, baseDir, max)
		}
	}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil && len(v) >= 8 {
		return Member{Kind: kind, Source: src, Data: b}, nil
	}
	if !safe {
		return Member{}, perr(ReasonUnsafePath, "%s path %q leaves the jsonl file's directory", kind, v)
	}
	return Member{}, perr(ReasonReadError, "%s field %q is neither an existing relative path nor base64", kind, v)
}

// pathMember is a media file named by a jsonl field, relative to baseDir.
func pathMember(v string, kind Kind, src, baseDir string, max int64) (Member, *probeError) {
	p := filepath.Join(baseDir, filepath.FromSlash(v))
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return Member{}, perr(ReasonReadError, "%s path %q: %v", kind, v, err)
	}
	if !within(baseDir, real) {
		return Member{}, perr(ReasonSymlinkOutsideRoot, "%s path %q resolves outside the jsonl file's directory", kind, v)
	}
	return Member{Kind: kind, Name: path.Base(filepath.ToSlash(v)), Source: src,
		Load: func() ([]byte, error) { return readLimited(real, max) }}, nil
}
