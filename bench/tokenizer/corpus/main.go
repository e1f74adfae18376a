// Command corpus writes the tokenizer benchmark inputs into a directory: opticks.txt (Isaac
// Newton's Opticks from GOROOT), gosrc-8M.txt (the first 8 MiB of GOROOT/src/**/*.go in path
// order), prose-1M.txt (Opticks repeated to 1 MiB), letter-1M.txt (1 MiB of "a"), and for the
// training comparison heldout.txt (GOROOT/src/go/types/*.go not in the training files).
package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"unicode/utf8"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: corpus DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "corpus:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	src := filepath.Join(runtime.GOROOT(), "src")
	opticks, err := os.ReadFile(filepath.Join(src, "testdata", "Isaac.Newton-Opticks.txt"))
	if err != nil {
		return err
	}
	var paths []string
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Strings(paths)
	var gosrc, held bytes.Buffer
	const size = 8 << 20
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || !utf8.Valid(b) {
			continue
		}
		switch {
		case gosrc.Len() < size:
			gosrc.Write(b)
		case held.Len() < 1<<20:
			held.Write(b)
		}
	}
	var prose bytes.Buffer
	for prose.Len() < 1<<20 {
		prose.Write(opticks)
	}
	files := map[string][]byte{
		"opticks.txt":   opticks,
		"gosrc-8M.txt":  cut(gosrc.Bytes(), size),
		"prose-1M.txt":  cut(prose.Bytes(), 1<<20),
		"letter-1M.txt": bytes.Repeat([]byte("a"), 1<<20),
		"heldout.txt":   cut(held.Bytes(), 1<<20),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// cut returns b[:n], shortened so that it does not split a UTF-8 sequence.
func cut(b []byte, n int) []byte {
	if n > len(b) {
		n = len(b)
	}
	for n > 0 && n < len(b) && !utf8.RuneStart(b[n]) {
		n--
	}
	return b[:n]
}
