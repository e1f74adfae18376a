package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Reasons the engine itself assigns to rejects. Stages choose their own reasons for the
// rejects they return (short, lower-case, stable words such as "decode", "too_large").
const (
	ReasonPanic = "panic" // the stage function panicked on this item
	ReasonError = "error" // the stage function returned a plain (non-*RejectError) error
)

// RejectError says that one input item cannot be used. A stage function returns it (see
// Reject and Rejectf); the engine fills in Stage and Source, counts it under Stage and
// Reason, writes it to the run's RejectSink and carries on with the next item.
type RejectError struct {
	Stage  string // stage that rejected the item (filled by the engine)
	Reason string // short stable category: "decode", "too_large", "panic", ...
	Source string // where the item came from: path, "archive.tar#member", "file.jsonl:12"
	Detail string // human-readable detail; when empty, Err's message is used
	Err    error  // underlying error, may be nil
}

func (e *RejectError) Error() string {
	msg := e.Stage + ": " + e.Reason
	if e.Source != "" {
		msg += ": " + e.Source
	}
	if d := e.detail(); d != "" {
		msg += ": " + d
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *RejectError) Unwrap() error { return e.Err }

func (e *RejectError) detail() string {
	if e.Detail != "" {
		return e.Detail
	}
	if e.Err != nil {
		return e.Err.Error()
	}
	return ""
}

// Reject returns a *RejectError with the given reason wrapping err. A stage function returns
// it to reject the current item: return zero, pipeline.Reject("decode", err).
func Reject(reason string, err error) error {
	return &RejectError{Reason: reason, Err: err}
}

// Rejectf returns a *RejectError with the given reason and a formatted detail.
func Rejectf(reason, format string, args ...any) error {
	return &RejectError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// DropError says that an item is intentionally left out of the output without being an
// error, for example an exact duplicate. Dropped items are counted by reason in the summary
// (they balance the inputs = accepted + rejected + dropped invariant) and are not written to
// the reject sink.
type DropError struct {
	Reason string // "duplicate", "filtered", ...
}

func (e *DropError) Error() string { return "pipeline: item dropped: " + e.Reason }

// Drop returns a *DropError: a stage function returns it to leave the current item out.
func Drop(reason string) error { return &DropError{Reason: reason} }

// fatalError marks an error returned by a Map function that must stop the run.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// Fatal marks err as fatal: a Map function that returns Fatal(err) stops the whole run and
// Wait returns err. Use it for failures that are not the item's fault (the output disk is
// full, a shared model failed to load). Without it, an error from a Map function rejects
// the item with reason "error". Errors from Source and Sink functions are always fatal.
func Fatal(err error) error {
	if err == nil {
		return nil
	}
	return &fatalError{err: err}
}

// RejectSink receives every reject of a run. The engine serialises calls, so an
// implementation need not be safe for concurrent use. An error from WriteReject is an output
// failure: it stops the run and is returned by Wait. The sink's owner closes it after Wait.
type RejectSink interface {
	WriteReject(r *RejectError) error
}

// MemRejects is a RejectSink that keeps every reject in memory, for tests and small runs.
// It is safe for concurrent use.
type MemRejects struct {
	mu   sync.Mutex
	list []*RejectError
}

// WriteReject appends r.
func (m *MemRejects) WriteReject(r *RejectError) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.list = append(m.list, r)
	return nil
}

// Rejects returns the rejects written so far, in the order they were written.
func (m *MemRejects) Rejects() []*RejectError {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*RejectError(nil), m.list...)
}

// RejectRecord is the JSON shape of one reject, the same columns as the rejects Parquet
// table of DESIGN.md: source, stage, reason, detail.
type RejectRecord struct {
	Source string `json:"source"`
	Stage  string `json:"stage"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

// Record returns the reject as a RejectRecord (Detail falls back to Err's message).
func (e *RejectError) Record() RejectRecord {
	return RejectRecord{Source: e.Source, Stage: e.Stage, Reason: e.Reason, Detail: e.detail()}
}

// JSONLRejects is a RejectSink writing one JSON object (RejectRecord) per line to W.
// It does not buffer: wrap W in a bufio.Writer and flush it after Wait for large runs.
type JSONLRejects struct {
	W   io.Writer
	enc *json.Encoder
}

// NewJSONLRejects returns a JSONLRejects writing to w.
func NewJSONLRejects(w io.Writer) *JSONLRejects { return &JSONLRejects{W: w} }

// WriteReject writes r as one line.
func (j *JSONLRejects) WriteReject(r *RejectError) error {
	if j.enc == nil {
		j.enc = json.NewEncoder(j.W)
		j.enc.SetEscapeHTML(false)
	}
	if err := j.enc.Encode(r.Record()); err != nil {
		return fmt.Errorf("pipeline: write reject: %w", err)
	}
	return nil
}

// ErrUnbalanced is wrapped by the error Wait returns when a run finished without error but
// accepted + rejected + dropped != inputs (a stage lost or invented items).
var ErrUnbalanced = errors.New("pipeline: accepted + rejected + dropped != inputs")
