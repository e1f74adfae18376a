package mmdata

import (
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/immkit/immkit/shards"
)

// stats sets the normalisation statistics: the given ones (checked), or the per-channel
// image latent and per-bin mel mean and std over the first StatsSamples samples of the
// training split, in loader order with seed 0.
func (l *Layout) stats() error {
	if st := l.Opts.Stats; st != nil {
		if l.Image != nil && (len(st.ImageMean) != l.Image.C || len(st.ImageStd) != l.Image.C) {
			return fmt.Errorf("mmdata: given statistics have %d/%d image channels, the latent has %d", len(st.ImageMean), len(st.ImageStd), l.Image.C)
		}
		if l.Audio != nil && (len(st.AudioMean) != l.Audio.NMels || len(st.AudioStd) != l.Audio.NMels) {
			return fmt.Errorf("mmdata: given statistics have %d/%d mel bins, the mel has %d", len(st.AudioMean), len(st.AudioStd), l.Audio.NMels)
		}
		if err := checkRange(st.AudioMin, st.AudioMax, l.Audio); err != nil {
			return err
		}
		for _, v := range [][]float64{st.ImageStd, st.AudioStd} {
			for _, s := range v {
				if !(s > 0) || math.IsInf(s, 0) {
					return fmt.Errorf("mmdata: given statistics have a standard deviation %v; want finite positive values", s)
				}
			}
		}
		l.Stats = *st
	} else {
		if l.Image != nil {
			if err := l.imageStats(); err != nil {
				return err
			}
		}
		if l.Audio != nil {
			if err := l.audioStats(); err != nil {
				return err
			}
		}
	}
	if l.Image != nil {
		l.Image.Mean, l.Image.Std = l.Stats.ImageMean, l.Stats.ImageStd
	}
	if l.Audio != nil {
		l.Audio.Mean, l.Audio.Std = l.Stats.AudioMean, l.Stats.AudioStd
		l.Audio.Min, l.Audio.Max = l.Stats.AudioMin, l.Stats.AudioMax
	}
	return nil
}

// checkRange checks given per-bin mel bounds: both absent, or both one finite value per
// bin with min <= max.
func checkRange(lo, hi []float64, a *AudioSegment) error {
	if len(lo) == 0 && len(hi) == 0 {
		return nil
	}
	if a == nil || len(lo) != a.NMels || len(hi) != a.NMels {
		bins := 0
		if a != nil {
			bins = a.NMels
		}
		return fmt.Errorf("mmdata: given statistics have a mel range of %d/%d bins, the mel has %d", len(lo), len(hi), bins)
	}
	for c := range lo {
		if math.IsNaN(lo[c]) || math.IsNaN(hi[c]) || math.IsInf(lo[c], 0) || math.IsInf(hi[c], 0) || lo[c] > hi[c] {
			return fmt.Errorf("mmdata: given statistics have the mel range [%v, %v] in bin %d; want finite bounds, min <= max", lo[c], hi[c], c)
		}
	}
	return nil
}

// moments accumulates per-channel sums in float64, and the per-channel range.
type moments struct {
	n         []float64
	sum, sq   []float64
	low, high []float64
}

func newMoments(c int) *moments {
	m := &moments{n: make([]float64, c), sum: make([]float64, c), sq: make([]float64, c), low: make([]float64, c), high: make([]float64, c)}
	for i := range c {
		m.low[i], m.high[i] = math.Inf(1), math.Inf(-1)
	}
	return m
}

func (m *moments) add(c int, v float32) {
	x := float64(v)
	m.n[c]++
	m.sum[c] += x
	m.sq[c] += x * x
	m.low[c], m.high[c] = math.Min(m.low[c], x), math.Max(m.high[c], x)
}

// pooled returns the moments of all channels together, repeated for every channel.
func (m *moments) pooled() *moments {
	var n, sum, sq float64
	for c := range m.n {
		n, sum, sq = n+m.n[c], sum+m.sum[c], sq+m.sq[c]
	}
	p := newMoments(len(m.n))
	for c := range p.n {
		p.n[c], p.sum[c], p.sq[c] = n, sum, sq
	}
	return p
}

// bounds returns the per-channel range; a channel without values gets [0, 0].
func (m *moments) bounds() (lo, hi []float64) {
	lo, hi = make([]float64, len(m.n)), make([]float64, len(m.n))
	for c := range m.n {
		if m.n[c] > 0 {
			lo[c], hi[c] = m.low[c], m.high[c]
		}
	}
	return lo, hi
}

func (m *moments) result() (mean, std []float64) {
	mean, std = make([]float64, len(m.n)), make([]float64, len(m.n))
	for c := range m.n {
		if m.n[c] == 0 {
			std[c] = 1
			continue
		}
		mu := m.sum[c] / m.n[c]
		mean[c] = mu
		std[c] = math.Max(math.Sqrt(math.Max(m.sq[c]/m.n[c]-mu*mu, 0)), minStd)
	}
	return mean, std
}

// statsPass streams the first StatsSamples training samples (loader order, seed 0) that
// are not null in column col, loading cols with seqLen, and calls visit for each; it
// returns how many it visited. what names the statistics in errors.
func (l *Layout) statsPass(what, col string, cols []string, seqLen map[string]int, visit func(b *shards.Batch, i int) error) (n int, err error) {
	ld, err := shards.NewLoader(l.dir, shards.LoaderOptions{Columns: cols, SeqLen: seqLen, GlobalBatch: 256, Epochs: 1, ReuseBatches: true})
	if err != nil {
		return 0, fmt.Errorf("mmdata: %s statistics: %w", what, err)
	}
	defer func() { err = errors.Join(err, ld.Close()) }()
	for n < l.Opts.StatsSamples {
		b, err := ld.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, fmt.Errorf("mmdata: %s statistics: %w", what, err)
		}
		for i := 0; i < b.Len() && n < l.Opts.StatsSamples; i++ {
			if l.nulls[col][b.Keys[i]] {
				continue
			}
			n++
			if err := visit(b, i); err != nil {
				return n, fmt.Errorf("mmdata: %s statistics: %w", what, err)
			}
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("mmdata: %s statistics: the training split has no %s", what, col)
	}
	return n, nil
}

func (l *Layout) imageStats() error {
	s := l.Image
	var seqLen map[string]int
	if s.vq != nil {
		seqLen = map[string]int{colImageTokens: s.Tokens()}
	}
	hw := s.H * s.W
	mo := newMoments(s.C)
	n, err := l.statsPass("image", s.Column, []string{s.Column}, seqLen, func(b *shards.Batch, i int) error {
		if s.vq != nil { // the colour channels of the tokens' code vectors
			tok := b.Tokens[colImageTokens]
			F := s.Features()
			for _, id := range tok.IDs[i*tok.SeqLen : i*tok.SeqLen+int(tok.Lengths[i])] {
				if id < 0 || int(id) >= s.vq.K {
					return fmt.Errorf("sample %q has image token %d outside the codebook of %d", b.Keys[i], id, s.vq.K)
				}
				for j, x := range s.vq.Codebook[int(id)*F : (int(id)+1)*F] {
					mo.add(j%3, x)
				}
			}
			return nil
		}
		lat := b.Latents[colImageLatent]
		v := lat.Data[i*lat.Size : (i+1)*lat.Size]
		for c := range s.C {
			for _, x := range v[c*hw : (c+1)*hw] {
				mo.add(c, x)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	l.Stats.ImageMean, l.Stats.ImageStd = mo.result()
	l.Stats.Samples = max(l.Stats.Samples, n)
	return nil
}

func (l *Layout) audioStats() error {
	s := l.Audio
	size := s.Frames * s.NMels
	mo := newMoments(s.NMels)
	n, err := l.statsPass("audio", colAudioMel, []string{colAudioMel}, map[string]int{colAudioMel: s.melLoadLen()}, func(b *shards.Batch, i int) error {
		mels := b.Floats[colAudioMel]
		if int(mels.Lengths[i]) != size {
			return fmt.Errorf("audio_mel of %q has %d values, want frames x n_mels = %d", b.Keys[i], mels.Lengths[i], size)
		}
		for j, x := range mels.Data[i*mels.Len : i*mels.Len+size] {
			mo.add(j%s.NMels, x)
		}
		return nil
	})
	if err != nil {
		return err
	}
	l.Stats.AudioMin, l.Stats.AudioMax = mo.bounds()
	if l.Opts.AudioNorm == AudioNormGlobal {
		mo = mo.pooled()
	}
	l.Stats.AudioMean, l.Stats.AudioStd = mo.result()
	l.Stats.Samples = max(l.Stats.Samples, n)
	return nil
}
