package shards

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// copyArtefacts makes a shard set self-contained: every artefact the parts name (tokenizer,
// labels, codebooks, PCA bases; paths relative to the encode output) is looked up beside the
// parts (the part's directory and its parent, which is the encode output for
// ENC/parts/*.parquet), checked against its recorded sha256 and copied to out/<path> under
// a temporary name, then renamed. An artefact found nowhere with the right hash is left
// out with a warning (the manifest still names it and its hash); it returns the names of
// those left out.
func copyArtefacts(parts []string, arts []Artefact, out string, log *slog.Logger) ([]string, error) {
	var missing []string
	for _, a := range arts {
		rel, err := artefactPath(a)
		if err != nil {
			return nil, err
		}
		dst := filepath.Join(out, rel)
		if ok, _ := fileHasSHA256(dst, a.SHA256); ok {
			continue // a resumed or repeated run
		}
		src := ""
		seen := map[string]bool{}
		for _, p := range parts {
			for _, root := range []string{filepath.Dir(p), filepath.Dir(filepath.Dir(p))} {
				c := filepath.Join(root, rel)
				if seen[c] {
					continue
				}
				seen[c] = true
				if ok, _ := fileHasSHA256(c, a.SHA256); ok {
					src = c
					break
				}
			}
			if src != "" {
				break
			}
		}
		if src == "" {
			log.Warn("shard: artefact not found beside the parts with its recorded sha256; the shard set names it but does not hold it", "artefact", a.Name, "path", a.Path)
			missing = append(missing, a.Name)
			continue
		}
		if err := copyFileAtomic(src, dst); err != nil {
			return nil, err
		}
	}
	return missing, nil
}

// artefactPath checks that an artefact path from part metadata stays inside the dataset
// (relative, no "..") and returns it in OS form.
func artefactPath(a Artefact) (string, error) {
	p := a.Path
	if p == "" || path.IsAbs(p) || filepath.IsAbs(p) || strings.Contains(p, `\`) {
		return "", fmt.Errorf("shards: artefact %s has path %q; want a relative slash-separated path", a.Name, p)
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") || c != p {
		return "", fmt.Errorf("shards: artefact %s has path %q, which leaves the dataset or is not clean", a.Name, p)
	}
	return filepath.FromSlash(c), nil
}

// fileHasSHA256 reports whether the regular file at p has the lower-case hex sha256 want.
func fileHasSHA256(p, want string) (bool, error) {
	st, err := os.Lstat(p)
	if err != nil || !st.Mode().IsRegular() {
		return false, err
	}
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == want, nil
}

func copyFileAtomic(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("shards: %w", err)
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("shards: %w", err)
	}
	defer in.Close()
	tmp := dst + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("shards: %w", err)
	}
	_, err = io.Copy(f, in)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("shards: copy artefact %s: %w", src, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("shards: %w", err)
	}
	return nil
}
