// Package testenv locates the repository, the peer cache that scripts/deps.d fills
// (tiktoken rank files, npm peers, Debian tools) and decides what a test does when a peer
// is missing: skip with the reason on a developer machine, fail under CI (CI=true), so that
// a check CI is meant to run is never reported as passing when it did not run.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	rootOnce sync.Once
	root     string
)

// RepoRoot returns the directory holding go.mod, found by walking up from the working
// directory (go test runs in the package directory).
func RepoRoot(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			return
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				root = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return
			}
			dir = parent
		}
	})
	if root == "" {
		t.Fatal("testenv: go.mod not found above the working directory")
	}
	return root
}

// CacheDir is where scripts/deps.d puts fetched peers and data: $IMMKIT_CACHE, or .cache
// at the repository root.
func CacheDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("IMMKIT_CACHE"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(t), ".cache")
}

// InCI reports whether the tests run under CI (CI=true), where missing peers are failures.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing ends a test whose peer or fixture is absent: t.Skip with the reason and the fix
// on a developer machine, t.Fatal under CI.
func Missing(t testing.TB, what, fix string) {
	t.Helper()
	msg := "testenv: " + what + " is missing; run " + fix
	if InCI() {
		t.Fatal(msg + " (CI must run this check)")
	}
	t.Skip(msg)
}

// CachePath returns CacheDir/rel if it exists, or calls Missing.
func CachePath(t testing.TB, rel, fix string) string {
	t.Helper()
	p := filepath.Join(CacheDir(t), rel)
	if _, err := os.Stat(p); err != nil {
		Missing(t, p, fix)
	}
	return p
}

// LookPath returns the path of an executable (node, /usr/bin/python3, sox ...) or calls Missing.
func LookPath(t testing.TB, name, fix string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name, fix)
	}
	return p
}
