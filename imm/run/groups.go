package run

import (
	"fmt"

	"github.com/immkit/immkit/imm/mmdata"
	"github.com/immkit/immkit/shards"
)

// labelGroups composes training batches in which every group of m consecutive particles
// shares one class label, so that the group's MMD compares samples of one conditional
// distribution p(x | c) (imm.TrainConfig.GroupLabels). With groups of mixed labels the
// loss matches the mixture over the group's labels, and the label reaches the model only
// through each particle's own pair.
//
// It reads whole loader batches into a pool, in the loader's seeded order, until the
// pool holds b/m groups: a label's k-th group is its samples k*m .. k*m+m-1 in pool
// order, and the groups are taken in the order in which they complete. Samples left in
// the pool are dropped, so a batch depends only on the loader position before it and a
// checkpoint's loader state resumes exactly.
type labelGroups struct {
	layout  *mmdata.Layout
	b, m    int
	D       int
	maxPool int // loader batches one training batch may read
	// pool, one loader batch per entry, grown as needed and reused
	x, mask [][]float32
	labels  [][]int32
}

func newLabelGroups(layout *mmdata.Layout, b, m int) *labelGroups {
	return &labelGroups{layout: layout, b: b, m: m, D: layout.Dim(), maxPool: maxPoolBatches}
}

// maxPoolBatches bounds how many loader batches one training batch may read: a split in
// which few labels have m samples is an error, not an endless read.
const maxPoolBatches = 64

// next fills x and mask (b particles) and returns their labels.
func (g *labelGroups) next(loader interface{ Next() (*shards.Batch, error) }, x, mask []float32) ([]int32, error) {
	need := g.b / g.m
	open := map[int32][]int{} // label -> pool indices of its incomplete group
	var groups [][]int        // complete groups, pool indices, in completion order
	for p := 0; len(groups) < need; p++ {
		if p == g.maxPool {
			return nil, fmt.Errorf("run: %d batches of %d samples hold only %d groups of %d samples sharing a label; a batch needs %d (too many labels for --batch, or use --group-labels=false)",
				g.maxPool, g.b, len(groups), g.m, need)
		}
		bt, err := loader.Next()
		if err != nil {
			return nil, err
		}
		if p == len(g.x) {
			g.x = append(g.x, make([]float32, g.b*g.D))
			g.mask = append(g.mask, make([]float32, g.b*g.D))
			g.labels = append(g.labels, nil)
		}
		labels, err := g.layout.Assemble(bt, g.x[p], g.mask[p])
		if err != nil {
			return nil, err
		}
		if labels == nil {
			return nil, fmt.Errorf("run: label groups need labelled data")
		}
		g.labels[p] = labels
		for i, l := range labels {
			idx := append(open[l], p*g.b+i)
			if len(idx) < g.m {
				open[l] = idx
				continue
			}
			delete(open, l)
			if len(groups) < need {
				groups = append(groups, idx)
			}
		}
	}
	out := make([]int32, 0, g.b)
	for k, grp := range groups {
		for j, at := range grp {
			p, i, dst := at/g.b, at%g.b, (k*g.m+j)*g.D
			copy(x[dst:dst+g.D], g.x[p][i*g.D:(i+1)*g.D])
			copy(mask[dst:dst+g.D], g.mask[p][i*g.D:(i+1)*g.D])
			out = append(out, g.labels[p][i])
		}
	}
	return out, nil
}
