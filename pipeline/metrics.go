package pipeline

import (
	"sync"
	"sync/atomic"
	"time"
)

// StageMetrics is a snapshot of one stage's counters (a JSON object in the summary).
//
// Queue depth is the number of items in the stage's output channel: QueueDepth now,
// QueuePeak the largest value seen right after one of the stage's sends; both are at most
// QueueCap. In flight is the number of items the stage has taken from its input and not yet
// sent on, rejected or dropped (in the hands of workers or waiting in the reorder buffer):
// at most InFlightBound, which is Workers for an unordered stage, Window for an ordered one
// and 1 for a Sink. Together they bound the items held anywhere in a run:
// sum over stages of QueueCap + InFlightBound.
type StageMetrics struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"` // "source", "map" or "sink"
	Workers  int    `json:"workers"`
	Ordered  bool   `json:"ordered"`
	Window   int    `json:"window,omitempty"` // reorder window of an ordered stage
	ItemsIn  int64  `json:"items_in"`
	ItemsOut int64  `json:"items_out"` // sent on (map, source) or accepted (sink)
	Rejected int64  `json:"rejected"`
	Dropped  int64  `json:"dropped"`
	// RejectedByReason and DroppedByReason count this stage's rejects and drops by reason.
	RejectedByReason map[string]int64 `json:"rejected_by_reason,omitempty"`
	DroppedByReason  map[string]int64 `json:"dropped_by_reason,omitempty"`
	Bytes            int64            `json:"bytes"` // of output values, when the Bytes option is set
	BusySeconds      float64          `json:"busy_seconds"`
	QueueCap         int              `json:"queue_cap"`
	QueueDepth       int              `json:"queue_depth"`
	QueuePeak        int              `json:"queue_peak"`
	InFlight         int              `json:"in_flight"`
	InFlightPeak     int              `json:"in_flight_peak"`
	InFlightBound    int              `json:"in_flight_bound"`
	ReorderPeak      int              `json:"reorder_peak,omitempty"` // most results waiting for an earlier one
}

// stage holds the live counters of one stage.
type stage struct {
	name    string
	kind    string
	workers int
	ordered bool
	window  int
	bound   int // in-flight bound

	in, out, rejected, dropped, bytes, busyNs atomic.Int64

	queueCap  int
	queueLen  func() int // nil for a sink
	queuePeak atomic.Int64

	inflight, inflightPeak atomic.Int64
	reorderPeak            atomic.Int64

	mu       sync.Mutex // guards rejectBy and dropBy
	rejectBy map[string]int64
	dropBy   map[string]int64
}

// count adds one to (*m)[reason], making the map on first use.
func (s *stage) count(m *map[string]int64, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *m == nil {
		*m = map[string]int64{}
	}
	(*m)[reason]++
}

func maxInto(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// sent records one item sent on the output channel, whose length is now n.
func (s *stage) sent(n int) {
	s.out.Add(1)
	maxInto(&s.queuePeak, int64(n))
}

func (s *stage) take() { maxInto(&s.inflightPeak, s.inflight.Add(1)) }
func (s *stage) done() { s.inflight.Add(-1) }

func (s *stage) snapshot() StageMetrics {
	m := StageMetrics{
		Name:          s.name,
		Kind:          s.kind,
		Workers:       s.workers,
		Ordered:       s.ordered,
		Window:        s.window,
		ItemsIn:       s.in.Load(),
		ItemsOut:      s.out.Load(),
		Rejected:      s.rejected.Load(),
		Dropped:       s.dropped.Load(),
		Bytes:         s.bytes.Load(),
		BusySeconds:   time.Duration(s.busyNs.Load()).Seconds(),
		QueueCap:      s.queueCap,
		QueuePeak:     int(s.queuePeak.Load()),
		InFlight:      int(s.inflight.Load()),
		InFlightPeak:  int(s.inflightPeak.Load()),
		InFlightBound: s.bound,
		ReorderPeak:   int(s.reorderPeak.Load()),
	}
	if s.queueLen != nil {
		m.QueueDepth = s.queueLen()
	}
	s.mu.Lock()
	if len(s.rejectBy) > 0 {
		m.RejectedByReason = copyCounts(s.rejectBy)
	}
	if len(s.dropBy) > 0 {
		m.DroppedByReason = copyCounts(s.dropBy)
	}
	s.mu.Unlock()
	return m
}
