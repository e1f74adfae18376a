package run

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/immkit/immkit/imm/mmdata"
	"github.com/immkit/immkit/imm/nn"
	"github.com/immkit/immkit/shards"
)

// Every group of a composed batch shares a label, every particle is a real sample's
// assembled row (found, with its label, in the loader's stream read independently), no
// sample appears twice in a batch, and a composer on a loader resumed from the state
// after batch k gives the same batches k+1, ... as one that read from the start.
func TestLabelGroups(t *testing.T) {
	f := colorShapes.get(t)
	o := mmdata.Options{ArtefactsDir: f.Encoded, Seed: 1, TextLen: 8, ImagePatch: 4}
	layout, err := mmdata.NewLayout(f.Shards, o)
	if err != nil {
		t.Fatal(err)
	}
	const B, M, steps = 8, 2, 6
	D := layout.Dim()
	newLoader := func() *shards.Loader {
		l, err := shards.NewLoader(f.Shards, layout.LoaderOptions(shards.LoaderOptions{Seed: 3, GlobalBatch: B, DropLast: true}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	// every sample of the split, assembled on its own: row -> label
	ref := newLoader()
	rows := map[string]int32{}
	for range 8 * ref.StepsPerEpoch() { // the epochs the composer may read
		b, err := ref.Next()
		if err != nil {
			t.Fatal(err)
		}
		x, mask := make([]float32, B*D), make([]float32, B*D)
		labels, err := layout.Assemble(b, x, mask)
		if err != nil {
			t.Fatal(err)
		}
		for i := range B {
			rows[rowKey(x[i*D:(i+1)*D], mask[i*D:(i+1)*D])] = labels[i]
		}
	}

	compose := func(l *shards.Loader, n int) (xs [][]float32, states []shards.State) {
		g := newLabelGroups(layout, B, M)
		for range n {
			x, mask := make([]float32, B*D), make([]float32, B*D)
			labels, err := g.next(l, x, mask)
			if err != nil {
				t.Fatal(err)
			}
			if len(labels) != B {
				t.Fatalf("%d labels for a batch of %d", len(labels), B)
			}
			seen := map[string]bool{}
			for i := range B {
				if labels[i] != labels[i-i%M] {
					t.Fatalf("particle %d has label %d, its group starts with %d", i, labels[i], labels[i-i%M])
				}
				k := rowKey(x[i*D:(i+1)*D], mask[i*D:(i+1)*D])
				want, ok := rows[k]
				switch {
				case !ok:
					t.Fatalf("particle %d is no sample of the split", i)
				case want != labels[i]:
					t.Fatalf("particle %d: label %d, its sample has %d", i, labels[i], want)
				case seen[k]:
					t.Fatalf("particle %d repeats a sample of the batch", i)
				}
				seen[k] = true
			}
			xs = append(xs, x)
			states = append(states, l.State())
		}
		return xs, states
	}
	full, states := compose(newLoader(), steps)
	const k = 2
	l := newLoader()
	if err := l.Resume(states[k]); err != nil {
		t.Fatal(err)
	}
	rest, _ := compose(l, steps-k-1)
	for i, x := range rest {
		if !slices.Equal(x, full[k+1+i]) {
			t.Fatalf("batch %d after resuming at %d differs from the uninterrupted one", k+1+i, k)
		}
	}
	// groups the pool cannot fill within its bound: a clear error, not an endless read
	g := newLabelGroups(layout, B, B)
	g.maxPool = 1
	x, mask := make([]float32, B*D), make([]float32, B*D)
	if _, err := g.next(newLoader(), x, mask); err == nil || !strings.Contains(err.Error(), "sharing a label") {
		t.Fatalf("a group of %d from one batch of %d labels: err = %v", B, len(layout.Labels), err)
	}
}

// rowKey is a particle's values and mask as bytes.
func rowKey(x, mask []float32) string {
	b := make([]byte, 0, 8*len(x))
	for i := range x {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x[i]))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(mask[i]))
	}
	return string(b)
}

// A run with label groups, interrupted at step 3 and resumed, ends as the uninterrupted
// run: the composer keeps no state beyond the loader position.
func TestMultimodalGroupLabelsResume(t *testing.T) {
	f := colorShapes.get(t)
	opts := func(out string) Options {
		o := testOptions(t, out, 6)
		o.Data, o.Artefacts = f.Shards, f.Encoded
		o.Train.GroupLabels = true
		return o
	}
	full := t.TempDir()
	if _, err := Train(context.Background(), opts(full)); err != nil {
		t.Fatal(err)
	}
	part := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	o := opts(part)
	o.OnStep = func(step int) {
		if step == 3 {
			cancel()
		}
	}
	if _, err := Train(ctx, o); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted run: err = %v", err)
	}
	o = opts(part)
	o.Resume = true
	if _, err := Train(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	sameRun(t, full, part, 6)
}

// Hold with groups: at p = 1 every particle holds a non-empty proper subset of its
// segments, the same one across each group of g when the members have the same segments,
// and a member lacking a held segment holds nothing.
func TestHoldGroups(t *testing.T) {
	segs := []nn.Segment{{Name: "image", Tokens: 2, Features: 3}, {Name: "audio", Tokens: 1, Features: 4}, {Name: "text", Tokens: 3, Features: 2}}
	D := nn.MultimodalConfig{Segments: segs}.Dim()
	held := func(present []float32, i int) []int {
		var h []int
		for k, s := range segs {
			off := nn.MultimodalConfig{Segments: segs}.Offset(k)
			if slices.Contains(present[i*D+off:i*D+off+s.Tokens*s.Features], 1) {
				h = append(h, k)
			}
		}
		return h
	}
	for _, g := range []int{1, 4} {
		const n = 40
		mask := make([]float32, n*D)
		for i := range mask {
			mask[i] = 1
		}
		// particle 7 (in the second group of 4) has no audio
		off := nn.MultimodalConfig{Segments: segs}.Offset(1)
		clear(mask[7*D+off : 7*D+off+4])
		present := Hold(rand.New(rand.NewPCG(1, uint64(g))), 1, segs, g, mask, n)
		distinct := map[string]bool{}
		for i := range n {
			h := held(present, i)
			switch {
			case i == 7 && g == 1: // its own group: one of its two segments
				if len(h) != 1 || h[0] == 1 {
					t.Fatalf("g=1: particle 7 (image and text) holds %v", h)
				}
				continue
			case i == 7:
				if first := held(present, 4); slices.Contains(first, 1) && len(h) != 0 {
					t.Fatalf("g=%d: particle 7 lacks the audio its group holds, yet holds %v", g, h)
				}
				continue
			}
			if len(h) == 0 || len(h) == len(segs) {
				t.Fatalf("g=%d: particle %d holds %v, not a non-empty proper subset", g, i, h)
			}
			if first := held(present, i-i%g); !slices.Equal(h, first) {
				t.Fatalf("g=%d: particle %d holds %v, the first of its group %v", g, i, h, first)
			}
			for k := range mask[i*D : (i+1)*D] {
				if present[i*D+k]+mask[i*D+k] != 1 {
					t.Fatalf("g=%d: particle %d value %d is both (or neither) held and in the loss", g, i, k)
				}
			}
			distinct[fmt.Sprint(h)] = true
		}
		if len(distinct) < 2 {
			t.Fatalf("g=%d: every particle holds the same segments %v", g, distinct)
		}
	}
}
