package ingest

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// tarSource reads a tar, tar.gz or webdataset shard: consecutive members whose paths share
// a key (the path up to the first dot of the base name) form one sample, as webdataset
// groups them. Member names are never used to touch the file system; a name that is
// absolute or climbs out with ".." is rejected as unsafe_path without reading its bytes.
type tarSource struct {
	path string // to open
	name string // as shown in keys of rejects and sources, and as the unit ID
	opts *SourceOptions
}

func (t *tarSource) Units(_ context.Context, emit func(Unit) error) error {
	return emit(Unit{ID: t.name, Part: path.Base(t.name), Candidates: t.candidates})
}

// safeMemberName reports whether a tar member name stays inside the archive's root.
func safeMemberName(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || strings.ContainsRune(name, 0) {
		return false
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return false
		}
	}
	return true
}

type tarGroup struct {
	key     string
	dir     string
	members []Member
	kinds   [KindMeta + 1]int
	reject  *Reject
}

func (t *tarSource) candidates(ctx context.Context, emit func(*Candidate) error) error {
	f, err := os.Open(t.path)
	if err != nil {
		return emit(&Candidate{Key: t.name, Source: t.name, Reject: &Reject{Source: t.name, Stage: StageSource, Reason: ReasonReadError, Detail: err.Error()}})
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var r io.Reader = br
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return emit(&Candidate{Key: t.name, Source: t.name, Reject: &Reject{Source: t.name, Stage: StageSource, Reason: ReasonTarCorrupt, Detail: "gzip: " + err.Error()}})
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	var g *tarGroup
	flush := func() error {
		if g == nil {
			return nil
		}
		c := t.groupCandidate(g)
		g = nil
		if c.Reject == nil && c.Text == nil && len(c.Members) == 1 && c.Members[0].Kind == KindText && t.opts.TextUnit != TextUnitFile {
			return splitTextCandidate(ctx, c, t.opts, emit)
		}
		return emit(c)
	}
	one := func(name, reason, detail string) error {
		src := t.name + "#" + name
		return emit(&Candidate{Key: src, Source: src, Reject: &Reject{Source: src, Stage: StageSource, Reason: reason, Detail: detail}})
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return flush()
		}
		if err != nil {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return emit(&Candidate{Key: t.name, Source: t.name, Reject: &Reject{Source: t.name, Stage: StageSource, Reason: ReasonTarCorrupt, Detail: err.Error()}})
		}
		name := hdr.Name
		if hdr.Typeflag == tar.TypeDir || hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if !safeMemberName(name) {
			if err := flush(); err != nil {
				return err
			}
			if err := one(name, ReasonUnsafePath, "member path leaves the archive root"); err != nil {
				return err
			}
			continue
		}
		name = strings.TrimPrefix(path.Clean(name), "./")
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
			if err := flush(); err != nil {
				return err
			}
			reason := ReasonNotRegular
			if hdr.Typeflag == tar.TypeSymlink || hdr.Typeflag == tar.TypeLink {
				reason = ReasonUnsafePath // links are never followed inside archives
			}
			if err := one(name, reason, fmt.Sprintf("tar member type %q is not a regular file", hdr.Typeflag)); err != nil {
				return err
			}
			continue
		}
		dir, base := path.Split(name)
		key, ext := splitKey(base)
		kind := kindOfExt(ext)
		fullKey := dir + key
		if kind == KindUnknown {
			if err := flush(); err != nil {
				return err
			}
			if err := one(name, ReasonUnknownExtension, fmt.Sprintf("extension %q is not an image, audio or text type", ext)); err != nil {
				return err
			}
			continue
		}
		if g != nil && g.key != fullKey {
			if err := flush(); err != nil {
				return err
			}
		}
		if g == nil {
			g = &tarGroup{key: fullKey, dir: strings.TrimSuffix(dir, "/")}
		}
		src := t.name + "#" + name
		g.kinds[kind]++
		if g.kinds[kind] > 1 && g.reject == nil {
			g.reject = &Reject{Source: t.name + "#" + fullKey, Stage: StageSource, Reason: ReasonKeyConflict, Detail: fmt.Sprintf("more than one %s member for key %q", kind, fullKey)}
		}
		if hdr.Size > t.opts.MaxFileBytes {
			if g.reject == nil {
				g.reject = &Reject{Source: src, Stage: StageSource, Reason: ReasonFileTooLarge, Detail: fmt.Sprintf("%d bytes > --max-file-bytes %d", hdr.Size, t.opts.MaxFileBytes)}
			}
			continue // tar.Reader skips the unread body
		}
		data := make([]byte, hdr.Size)
		if _, err := io.ReadFull(tr, data); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				if g.reject == nil {
					g.reject = &Reject{Source: src, Stage: StageSource, Reason: ReasonTarCorrupt, Detail: "archive ends inside this member"}
				}
				return flush()
			}
			// Any other read error (a sparse member whose map points past its data, a
			// damaged gzip stream) also ends the archive inside this member; the group may
			// have no member yet, so it must carry the reject (found by FuzzTarSource).
			if g.reject == nil {
				g.reject = &Reject{Source: src, Stage: StageSource, Reason: ReasonTarCorrupt, Detail: err.Error()}
			}
			return flush()
		}
		g.members = append(g.members, Member{Kind: kind, Name: base, Source: src, Data: data})
	}
}

func (t *tarSource) groupCandidate(g *tarGroup) *Candidate {
	id := t.name + "#" + g.key
	if g.reject != nil {
		return &Candidate{Key: g.key, Source: g.reject.Source, Reject: g.reject}
	}
	c := &Candidate{Key: g.key, Source: t.name + "#" + path.Join(g.dir, g.members[0].Name), Members: g.members}
	if len(g.members) > 1 {
		c.Source = id + ".{" + memberExts(g.members) + "}"
	}
	applyLabel(c, t.opts, path.Base(g.dir), g.dir != "")
	return c
}
