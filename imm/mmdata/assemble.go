package mmdata

import (
	"fmt"
	"math"
	"slices"

	"github.com/immkit/immkit/shards"
)

// Assemble writes batch b as b.Len() particles into x and their mask into mask (each
// b.Len()*Dim() values; particle i at [i*Dim, (i+1)*Dim), segments at their offsets).
// mask is 1 for real coordinates and 0 for padding: text positions after the end token
// (TextPadEnd), frames past the end of the clip, and every coordinate of a modality the
// sample lacks (a null value); x is 0 wherever mask is 0. labels are the samples'
// label_id, with -1 (no label) mapped to Classes, the null class of the network; nil when
// Classes == 0. The batch must come from a loader with LoaderOptions applied.
func (l *Layout) Assemble(b *shards.Batch, x, mask []float32) (labels []int32, err error) {
	n, D := b.Len(), l.Dim()
	if len(x) != n*D || len(mask) != n*D {
		return nil, fmt.Errorf("mmdata: assemble %d samples of dim %d into %d values and a mask of %d", n, D, len(x), len(mask))
	}
	clear(x)
	clear(mask)
	if l.Classes > 0 {
		ids, ok := b.Ints[colLabelID]
		if !ok || len(ids) != n {
			return nil, fmt.Errorf("mmdata: batch has no label_id column (use Layout.LoaderOptions)")
		}
		labels = make([]int32, n)
		for i, id := range ids {
			switch {
			case id == -1:
				labels[i] = int32(l.Classes)
			case id < 0 || int(id) >= l.Classes:
				return nil, fmt.Errorf("mmdata: sample %q has label_id %d outside the %d labels", b.Keys[i], id, l.Classes)
			default:
				labels[i] = id
			}
		}
	}
	if s := l.Image; s != nil && s.vq != nil {
		off, _ := l.Offset(Image)
		tok, ok := b.Tokens[colImageTokens]
		if !ok {
			return nil, fmt.Errorf("mmdata: batch has no image_tokens column (use Layout.LoaderOptions)")
		}
		T, F := s.Tokens(), s.Features()
		for i := range n {
			if l.nulls[colImageTokens][b.Keys[i]] {
				continue
			}
			if int(tok.Lengths[i]) != T || tok.SeqLen < T {
				return nil, fmt.Errorf("mmdata: sample %q has %d image tokens, want %d", b.Keys[i], tok.Lengths[i], T)
			}
			if err := s.codeVectors(x[i*D+off:i*D+off+T*F], tok.IDs[i*tok.SeqLen:i*tok.SeqLen+T], l.Opts.SigmaD); err != nil {
				return nil, fmt.Errorf("mmdata: sample %q: %w", b.Keys[i], err)
			}
			fill(mask[i*D+off:i*D+off+T*F], 1)
		}
	} else if s != nil {
		off, _ := l.Offset(Image)
		lat, ok := b.Latents[colImageLatent]
		if !ok {
			return nil, fmt.Errorf("mmdata: batch has no image_latent column (use Layout.LoaderOptions)")
		}
		if !slices.Equal(lat.Shape, []int{s.C, s.H, s.W}) || len(lat.Data) != n*lat.Size {
			return nil, fmt.Errorf("mmdata: batch image_latent has shape %v (%d values), the layout %dx%dx%d", lat.Shape, len(lat.Data), s.C, s.H, s.W)
		}
		seg := s.C * s.H * s.W
		for i := range n {
			if l.nulls[colImageLatent][b.Keys[i]] {
				continue
			}
			p := x[i*D+off : i*D+off+seg]
			s.patch(p, lat.Data[i*seg:(i+1)*seg], l.Opts.SigmaD)
			fill(mask[i*D+off:i*D+off+seg], 1)
		}
	}
	if s := l.Audio; s != nil {
		off, _ := l.Offset(Audio)
		mels, ok := b.Floats[colAudioMel]
		if !ok || mels.Len != s.melLoadLen() {
			return nil, fmt.Errorf("mmdata: batch has no audio_mel column of %d values per sample (use Layout.LoaderOptions)", s.melLoadLen())
		}
		size := s.Frames * s.NMels
		for i := range n {
			if l.nulls[colAudioMel][b.Keys[i]] {
				continue
			}
			if k := int(mels.Lengths[i]); k != size {
				more := ""
				if k > size {
					more = " or more"
				}
				return nil, fmt.Errorf("mmdata: audio_mel of %q has %d values%s, want frames x n_mels = %d", b.Keys[i], k, more, size)
			}
			s.group(x[i*D+off:], mels.Data[i*mels.Len:i*mels.Len+size], l.Opts.SigmaD)
			fill(mask[i*D+off:i*D+off+size], 1) // frames past the clip stay 0
		}
	}
	if s := l.Text; s != nil {
		off, _ := l.Offset(Text)
		tok, ok := b.Tokens[colTextTokens]
		if !ok {
			return nil, fmt.Errorf("mmdata: batch has no text_tokens column (use Layout.LoaderOptions)")
		}
		lens := b.Ints[colTextLen]
		for i := range n {
			if l.nulls[colTextTokens][b.Keys[i]] {
				continue
			}
			k := int(tok.Lengths[i])
			if lens != nil {
				k = min(k, int(lens[i]))
			}
			k = max(min(k, s.Len), 0)
			ids := tok.IDs[i*tok.SeqLen : i*tok.SeqLen+k]
			if err := s.embed(x[i*D+off:i*D+off+s.Len*s.Dim], mask[i*D+off:i*D+off+s.Len*s.Dim], ids, l.Opts.TextPad); err != nil {
				return nil, fmt.Errorf("mmdata: sample %q: %w", b.Keys[i], err)
			}
		}
	}
	return labels, nil
}

func fill(v []float32, c float32) {
	for i := range v {
		v[i] = c
	}
}

// patch writes the normalised latent lat (C x H x W) as (H/P)*(W/P) tokens of C*P*P
// features into dst: token gy*(W/P)+gx, feature c*P*P + py*P + px is
// sigma*(lat[c, gy*P+py, gx*P+px] - Mean[c])/Std[c] (nn.Patchify's order). Runs of P
// pixels of a latent row are contiguous in a token.
func (s *ImageSegment) patch(dst, lat []float32, sigma float64) {
	C, H, W, P := s.C, s.H, s.W, s.P
	gw, F := W/P, C*P*P
	for c := range C {
		a := float32(sigma / s.Std[c])
		m := float32(s.Mean[c])
		for y := range H {
			gy, py := y/P, y%P
			row := lat[(c*H+y)*W : (c*H+y+1)*W]
			for gx := range gw {
				out := dst[(gy*gw+gx)*F+c*P*P+py*P:][:P]
				for px, v := range row[gx*P : gx*P+P] {
					out[px] = (v - m) * a
				}
			}
		}
	}
}

// unpatch inverts patch: tokens back to a denormalised C x H x W latent.
func (s *ImageSegment) unpatch(lat, src []float32, sigma float64) {
	C, H, W, P := s.C, s.H, s.W, s.P
	gw, F := W/P, C*P*P
	for c := range C {
		a := float32(s.Std[c] / sigma)
		m := float32(s.Mean[c])
		for y := range H {
			gy, py := y/P, y%P
			row := lat[(c*H+y)*W : (c*H+y+1)*W]
			for gx := range gw {
				in := src[(gy*gw+gx)*F+c*P*P+py*P:][:P]
				for px, v := range in {
					row[gx*P+px] = v*a + m
				}
			}
		}
	}
}

// codeVectors writes the normalised code vectors of vq ids into dst (len(ids) tokens of
// 3*P*P features): feature j of token t is sigma*(code[ids[t]][j] - Mean[j%3])/Std[j%3].
func (s *ImageSegment) codeVectors(dst []float32, ids []int32, sigma float64) error {
	F := s.Features()
	for t, id := range ids {
		if id < 0 || int(id) >= s.vq.K {
			return fmt.Errorf("image token %d at position %d outside the codebook of %d", id, t, s.vq.K)
		}
		for j, v := range s.vq.Codebook[int(id)*F : (int(id)+1)*F] {
			c := j % 3
			dst[t*F+j] = float32(sigma / s.Std[c] * (float64(v) - s.Mean[c]))
		}
	}
	return nil
}

// Codes returns the vq code of every token of an image segment: the codebook entry
// nearest (L2, smallest id on ties) to the denormalised token.
func (s *ImageSegment) Codes(seg []float32, sigma float64) []int32 {
	F, K := s.Features(), s.vq.K
	ids := make([]int32, s.Tokens())
	v := make([]float64, F)
	for t := range ids {
		for j := range v {
			c := j % 3
			v[j] = s.Std[c]/sigma*float64(seg[t*F+j]) + s.Mean[c]
		}
		best := math.Inf(1)
		for k := range K {
			var d2 float64
			for j, e := range s.vq.Codebook[k*F : (k+1)*F] {
				d := v[j] - float64(e)
				d2 += d * d
			}
			if d2 < best {
				best, ids[t] = d2, int32(k)
			}
		}
	}
	return ids
}

// group writes the normalised mel (Frames x NMels, frame-major) into dst, which holds
// ceil(Frames/Group) tokens of Group*NMels features: frame f is token f/Group, features
// (f%Group)*NMels .. +NMels, i.e. simply the frame-major values in order. The features of
// frames past the clip are left untouched (0).
func (s *AudioSegment) group(dst, mel []float32, sigma float64) {
	M := s.NMels
	a, m := s.scale(sigma)
	for f := range len(mel) / M {
		out, in := dst[f*M:(f+1)*M], mel[f*M:(f+1)*M]
		for j, v := range in {
			out[j] = (v - m[j]) * a[j]
		}
	}
}

// ungroup inverts group into mel (Frames x NMels, frame-major).
func (s *AudioSegment) ungroup(mel, src []float32, sigma float64) {
	M := s.NMels
	a, m := s.scale(sigma)
	for f := range len(mel) / M {
		out, in := mel[f*M:(f+1)*M], src[f*M:(f+1)*M]
		for j, v := range in {
			out[j] = v/a[j] + m[j]
		}
	}
}

// melLoadLen is the audio_mel length the loader pads to: one more value than a clip has,
// so that a longer list is seen as such instead of being cut to size.
func (s *AudioSegment) melLoadLen() int { return s.Frames*s.NMels + 1 }

// scale returns sigma/Std and Mean per mel bin as float32.
func (s *AudioSegment) scale(sigma float64) (a, m []float32) {
	a, m = make([]float32, s.NMels), make([]float32, s.NMels)
	for j := range a {
		a[j], m[j] = float32(sigma/s.Std[j]), float32(s.Mean[j])
	}
	return a, m
}

// embed writes the embeddings of ids, then the end token and the padding per mode, into
// x and mask (Len*Dim values each, zero on entry).
func (s *TextSegment) embed(x, mask []float32, ids []int32, mode string) error {
	d := s.Dim
	for j, id := range ids {
		if id < 0 || int(id) >= s.Vocab {
			return fmt.Errorf("token %d at position %d outside the tokenizer's %d ids", id, j, s.Vocab)
		}
	}
	if err := s.Table.Encode(x[:len(ids)*d], ids); err != nil {
		return err
	}
	fill(mask[:len(ids)*d], 1)
	end := s.Table.Vec[int(s.End)*d : (int(s.End)+1)*d]
	for j := len(ids); j < s.Len; j++ {
		copy(x[j*d:(j+1)*d], end)
		fill(mask[j*d:(j+1)*d], 1)
		if mode == TextPadEnd {
			break
		}
	}
	return nil
}
