package ingest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// dirSource walks a directory tree. Files sharing a key in one directory form one sample
// group and one unit; symlinks are followed only when their target stays inside the root.
type dirSource struct {
	arg      string // as given on the command line
	realRoot string // absolute, symlinks resolved
	opts     *SourceOptions
	skip     map[string]bool // real paths not to descend into (the output directory)
}

func newDirSource(arg string, o *SourceOptions) (*dirSource, error) {
	abs, err := filepath.Abs(arg)
	if err != nil {
		return nil, fmt.Errorf("ingest: source %s: %w", arg, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("ingest: source %s: %w", arg, err)
	}
	d := &dirSource{arg: filepath.Clean(arg), realRoot: real, opts: o, skip: map[string]bool{}}
	for _, s := range o.Skip {
		if a, err := filepath.Abs(s); err == nil {
			if r, err := filepath.EvalSymlinks(a); err == nil {
				d.skip[r] = true
			}
		}
	}
	return d, nil
}

func (d *dirSource) Units(ctx context.Context, emit func(Unit) error) error {
	return d.walk(ctx, d.realRoot, "", map[string]bool{d.realRoot: true}, emit)
}

// rejectUnit is a unit holding one candidate the source rejected.
func rejectUnit(id, part, source, reason, detail string) Unit {
	rej := &Reject{Source: source, Stage: StageSource, Reason: reason, Detail: detail}
	return Unit{ID: id, Part: part, Candidates: func(_ context.Context, emit func(*Candidate) error) error {
		return emit(&Candidate{Key: id, Source: source, Reject: rej})
	}}
}

type dirGroup struct {
	key      string
	members  []Member
	kinds    [KindMeta + 1]int
	conflict string
}

// walk lists one directory (real path abs, slash path rel inside the root), emits its
// sample groups and stray files in name order, then descends into its subdirectories.
func (d *dirSource) walk(ctx context.Context, abs, rel string, visited map[string]bool, emit func(Unit) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		if rel == "" {
			return fmt.Errorf("ingest: read source %s: %w", d.arg, err)
		}
		p := d.shown(rel)
		return emit(rejectUnit(p, rel, p, ReasonReadError, err.Error()))
	}
	// os.ReadDir sorts by name, and every name with the key K has the prefix "K.", so the
	// members of a group are adjacent: a group is emitted as soon as the next key starts,
	// and only one group is held at a time.
	var cur *dirGroup
	flush := func() error {
		if cur == nil {
			return nil
		}
		g := cur
		cur = nil
		return emit(d.groupUnit(rel, g))
	}
	var subdirs []string // real paths
	var subrels []string
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(abs, name)
		relp := path.Join(rel, name)
		shown := d.shown(relp)
		if d.skip[p] {
			continue
		}
		target := p
		typ := e.Type()
		if typ&os.ModeSymlink != 0 {
			t, err := filepath.EvalSymlinks(p)
			if err != nil {
				detail := "broken symlink: " + err.Error()
				if _, serr := os.Stat(p); errors.Is(serr, syscall.ELOOP) {
					detail = "symlink loop: " + serr.Error()
				}
				if err := emit(rejectUnit(shown, relp, shown, ReasonReadError, detail)); err != nil {
					return err
				}
				continue
			}
			if !within(d.realRoot, t) {
				if err := emit(rejectUnit(shown, relp, shown, ReasonSymlinkOutsideRoot, "symlink target is outside the source root")); err != nil {
					return err
				}
				continue
			}
			fi, err := os.Stat(t)
			if err != nil {
				if err := emit(rejectUnit(shown, relp, shown, ReasonReadError, err.Error())); err != nil {
					return err
				}
				continue
			}
			target, typ = t, fi.Mode().Type()
		}
		switch {
		case typ.IsDir():
			if d.skip[target] || visited[target] || d.excluded(relp) {
				continue // the output directory, or a symlink cycle
			}
			subdirs = append(subdirs, target)
			subrels = append(subrels, relp)
			continue
		case !typ.IsRegular():
			if err := emit(rejectUnit(shown, relp, shown, ReasonNotRegular, "not a regular file: "+typ.String())); err != nil {
				return err
			}
			continue
		}
		if d.excluded(relp) {
			continue
		}
		if isTarName(strings.ToLower(name)) {
			t := &tarSource{path: target, name: shown, opts: d.opts}
			if err := emit(Unit{ID: shown, Part: relp, Candidates: t.candidates}); err != nil {
				return err
			}
			continue
		}
		key, ext := splitKey(name)
		kind := kindOfExt(ext)
		if kind == KindUnknown {
			if err := emit(rejectUnit(shown, relp, shown, ReasonUnknownExtension, fmt.Sprintf("extension %q is not an image, audio or text type", ext))); err != nil {
				return err
			}
			continue
		}
		if cur != nil && cur.key != key {
			if err := flush(); err != nil {
				return err
			}
		}
		if cur == nil {
			cur = &dirGroup{key: key}
		}
		g := cur
		g.kinds[kind]++
		if g.kinds[kind] > 1 && g.conflict == "" {
			g.conflict = fmt.Sprintf("more than one %s file for key %q", kind, key)
		}
		max := d.opts.MaxFileBytes
		g.members = append(g.members, Member{Kind: kind, Name: name, Source: shown,
			Load: func() ([]byte, error) { return readLimited(target, max) }})
	}
	if err := flush(); err != nil {
		return err
	}
	for i, sd := range subdirs {
		visited[sd] = true
		if err := d.walk(ctx, sd, subrels[i], visited, emit); err != nil {
			return err
		}
		delete(visited, sd)
	}
	return nil
}

// excluded reports whether a path inside the root (or its base name) matches --exclude.
func (d *dirSource) excluded(rel string) bool {
	for _, pat := range d.opts.Exclude {
		if ok, _ := path.Match(pat, rel); ok {
			return true
		}
		if ok, _ := path.Match(pat, path.Base(rel)); ok {
			return true
		}
	}
	return false
}

func (d *dirSource) shown(rel string) string { return path.Join(filepath.ToSlash(d.arg), rel) }

func (d *dirSource) groupUnit(rel string, g *dirGroup) Unit {
	key := path.Join(rel, g.key)
	id := d.shown(key)
	src := d.shown(path.Join(rel, g.members[0].Name))
	if g.conflict != "" {
		return rejectUnit(id, key, id, ReasonKeyConflict, g.conflict)
	}
	c := &Candidate{Key: key, Source: src, Members: g.members}
	if len(g.members) > 1 {
		c.Source = id + ".{" + memberExts(g.members) + "}"
	}
	applyLabel(c, d.opts, path.Base(rel), rel != "")
	textOnly := g.kinds[KindImage] == 0 && g.kinds[KindAudio] == 0 && g.kinds[KindText] == 1
	if textOnly && d.opts.TextUnit != TextUnitFile {
		return Unit{ID: id, Part: key, Candidates: func(ctx context.Context, emit func(*Candidate) error) error {
			return splitTextCandidate(ctx, c, d.opts, emit)
		}}
	}
	return Unit{ID: id, Part: key, Candidates: func(_ context.Context, emit func(*Candidate) error) error { return emit(c) }}
}

func memberExts(ms []Member) string {
	s := ""
	for i, m := range ms {
		if i > 0 {
			s += ","
		}
		_, ext := splitKey(m.Name)
		s += ext
	}
	return s
}

// applyLabel sets the candidate's label from the directory name or keeps label members,
// following --label-from.
func applyLabel(c *Candidate, o *SourceOptions, dir string, hasDir bool) {
	hasMember := false
	for _, m := range c.Members {
		hasMember = hasMember || m.Kind == KindLabel
	}
	useDir := o.LabelFrom == LabelDir || (o.LabelFrom == LabelAuto && !hasMember)
	if useDir && hasDir && c.Label == nil {
		c.Label = strPtr(dir)
	}
	if o.LabelFrom == LabelDir || o.LabelFrom == LabelNone {
		// Label members are not used: drop them from the group (they are still part of the
		// input, which is accounted for by the sample or reject of the group).
		kept := c.Members[:0:0]
		for _, m := range c.Members {
			if m.Kind != KindLabel {
				kept = append(kept, m)
			}
		}
		c.Members = kept
	}
	if o.LabelFrom == LabelNone {
		c.Label = nil
	}
}
