package shards

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestCopyArtefacts(t *testing.T) {
	enc := filepath.Join(t.TempDir(), "enc")
	part := filepath.Join(enc, "parts", "part-0-00000.parquet")
	body := []byte("IQ== 0\nIg== 1\n")
	for p, b := range map[string][]byte{part: []byte("PAR1"), filepath.Join(enc, "artefacts", "bpe.tiktoken"): body} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256(body)
	good := Artefact{Name: "bpe", Path: "artefacts/bpe.tiktoken", SHA256: hex.EncodeToString(sum[:])}
	stale := Artefact{Name: "labels", Path: "artefacts/bpe.tiktoken", SHA256: hex.EncodeToString(make([]byte, 32))}
	out := filepath.Join(t.TempDir(), "shards")
	missing, err := copyArtefacts([]string{part}, []Artefact{good, stale}, out, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, "artefacts", "bpe.tiktoken"))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("copied artefact %q, %v; want %q", got, err, body)
	}
	if len(missing) != 1 || missing[0] != "labels" {
		t.Errorf("missing = %v, want [labels] (its hash matches no file)", missing)
	}
	for _, bad := range []string{"../escape", "/abs/path", "a/../../b", "", `a\b`} {
		if _, err := copyArtefacts([]string{part}, []Artefact{{Name: "x", Path: bad, SHA256: good.SHA256}}, out, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("artefact path %q accepted", bad)
		}
	}
}
