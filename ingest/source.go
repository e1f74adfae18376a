package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Unit is one input as scale-out and resume see it: a sample group of a directory tree, a
// tar shard, a jsonl, text or Parquet file. Units are assigned to workers by a stable hash of
// ID and recorded in the progress file once every candidate they hold is committed.
type Unit struct {
	ID string // stable identity for resume: the source argument joined with the path inside it
	// Part is the name partitioning hashes: the path relative to the source root (a file
	// source's base name), with slashes, the same on every machine.
	Part string
	// Candidates streams the unit's candidates in a deterministic order.
	Candidates func(ctx context.Context, emit func(*Candidate) error) error
}

// Source enumerates its units in a deterministic order.
type Source interface {
	Units(ctx context.Context, emit func(Unit) error) error
}

// Label sources for --label-from.
const (
	LabelAuto  = "auto"  // a label field or .cls member when present, else the parent directory
	LabelDir   = "dir"   // the name of the directory holding the files
	LabelField = "field" // the jsonl/Parquet label field, or a .cls/.label member
	LabelNone  = "none"
)

// Text units for --text-unit.
const (
	TextUnitFile      = "file"
	TextUnitLine      = "line"
	TextUnitParagraph = "paragraph"
)

// SourceOptions configure how sources read and group their inputs.
type SourceOptions struct {
	LabelFrom    string   // LabelAuto, LabelDir, LabelField or LabelNone
	TextUnit     string   // TextUnitFile, TextUnitLine or TextUnitParagraph, for text-only items
	MaxFileBytes int64    // larger files are rejected as file_too_large without being read
	Skip         []string // real paths not to descend into (the output directory)
	Exclude      []string // glob patterns (path.Match) of paths inside a directory source to leave out

	// Field (jsonl) and column (Parquet) names.
	KeyField, TextField, LabelField, ImageField, AudioField string
}

// DefaultSourceOptions returns the options the ingest command starts from.
func DefaultSourceOptions() SourceOptions {
	return SourceOptions{
		LabelFrom: LabelAuto, TextUnit: TextUnitFile, MaxFileBytes: 256 << 20,
		KeyField: "id", TextField: "text", LabelField: "label", ImageField: "image", AudioField: "audio",
	}
}

// Validate checks the option values.
func (o *SourceOptions) Validate() error {
	switch o.LabelFrom {
	case LabelAuto, LabelDir, LabelField, LabelNone:
	default:
		return fmt.Errorf("--label-from: want auto, dir, field or none, got %q", o.LabelFrom)
	}
	switch o.TextUnit {
	case TextUnitFile, TextUnitLine, TextUnitParagraph:
	default:
		return fmt.Errorf("--text-unit: want file, line or paragraph, got %q", o.TextUnit)
	}
	if o.MaxFileBytes <= 0 {
		return fmt.Errorf("--max-file-bytes: must be > 0, got %d", o.MaxFileBytes)
	}
	return nil
}

// OpenSource picks the source for one command-line argument: a directory tree, a tar,
// tar.gz or webdataset shard, a jsonl file, a Parquet file or a plain text file.
func OpenSource(arg string, o *SourceOptions) (Source, error) {
	fi, err := os.Stat(arg)
	if err != nil {
		return nil, fmt.Errorf("ingest: source %s: %w", arg, err)
	}
	if fi.IsDir() {
		return newDirSource(arg, o)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("ingest: source %s is not a directory or regular file", arg)
	}
	lower := strings.ToLower(arg)
	switch {
	case isTarName(lower):
		return &tarSource{path: arg, name: filepath.ToSlash(filepath.Clean(arg)), opts: o}, nil
	case strings.HasSuffix(lower, ".jsonl"), strings.HasSuffix(lower, ".ndjson"):
		return &jsonlSource{path: arg, opts: o}, nil
	case strings.HasSuffix(lower, ".parquet"):
		return &parquetSource{path: arg, opts: o}, nil
	case strings.HasSuffix(lower, ".txt"), strings.HasSuffix(lower, ".text"):
		return &textSource{path: arg, opts: o}, nil
	}
	// Unknown name: sniff a tar (ustar magic) or gzip.
	f, err := os.Open(arg)
	if err != nil {
		return nil, fmt.Errorf("ingest: source %s: %w", arg, err)
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if bytes.HasPrefix(head, []byte{0x1f, 0x8b}) || (n >= 262 && string(head[257:262]) == "ustar") {
		return &tarSource{path: arg, name: filepath.ToSlash(filepath.Clean(arg)), opts: o}, nil
	}
	return nil, fmt.Errorf("ingest: source %s: not a directory, tar, tar.gz, jsonl, parquet or txt file", arg)
}

// readLimited reads a whole regular file, rejecting one larger than max before reading it.
// Anything else (FIFO, device, socket) is not_regular_file and never opened for reading
// in a way that can block: the path is checked with stat first, then opened with
// O_NONBLOCK and checked again on the open descriptor, so a FIFO or device put in place
// of a regular file after the walk (or named by a jsonl field) cannot stall the run.
func readLimited(path string, max int64) ([]byte, error) {
	if fi, err := os.Stat(path); err != nil {
		return nil, perr(ReasonReadError, "%v", err)
	} else if !fi.Mode().IsRegular() {
		return nil, perr(ReasonNotRegular, "not a regular file: %s", fi.Mode().Type())
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, perr(ReasonReadError, "%v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, perr(ReasonReadError, "%v", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, perr(ReasonNotRegular, "not a regular file: %s", fi.Mode().Type())
	}
	if fi.Size() > max {
		return nil, perr(ReasonFileTooLarge, "%d bytes > --max-file-bytes %d", fi.Size(), max)
	}
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, perr(ReasonReadError, "read %s: %v", path, err)
	}
	return b, nil
}

// within reports whether path (absolute, symlinks resolved) lies inside root.
func isTarName(lower string) bool {
	return strings.HasSuffix(lower, ".tar") || strings.HasSuffix(lower, ".tar.gz") || strings.HasSuffix(lower, ".tgz")
}

func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

func strPtr(s string) *string { return &s }
