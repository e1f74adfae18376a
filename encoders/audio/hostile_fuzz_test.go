package audio

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/mewkiz/flac"
	"github.com/mewkiz/flac/frame"
	"github.com/mewkiz/flac/meta"
)

// flacBomb encodes frames blocks of 65535 samples of digital silence in two channels, each
// a constant subframe of a few bytes: about 6000 decoded samples per byte of file. With
// unknownTotal the STREAMINFO total-samples field is 0 ("unknown"), so the decoder learns
// the size only frame by frame.
func flacBomb(t *testing.T, frames int, unknownTotal bool) []byte {
	t.Helper()
	const block = 65535
	var buf bytes.Buffer
	info := &meta.StreamInfo{BlockSizeMin: block, BlockSizeMax: block, SampleRate: 48000, NChannels: 2, BitsPerSample: 16}
	enc, err := flac.NewEncoder(&buf, info)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]int32, block)
	for range frames {
		f := &frame.Frame{
			Header: frame.Header{HasFixedBlockSize: true, BlockSize: block, SampleRate: 48000, Channels: frame.ChannelsLR, BitsPerSample: 16},
			Subframes: []*frame.Subframe{
				{SubHeader: frame.SubHeader{Pred: frame.PredConstant}, Samples: zeros, NSamples: block},
				{SubHeader: frame.SubHeader{Pred: frame.PredConstant}, Samples: zeros, NSamples: block},
			},
		}
		if err := enc.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	// The encoder rewrites STREAMINFO only on an io.WriteSeeker: set the total here.
	b := buf.Bytes()
	si := b[8:] // after "fLaC" and the metadata block header
	total := uint64(frames * block)
	if unknownTotal {
		total = 0
	}
	si[13] = si[13]&0xF0 | byte(total>>32)&0x0F
	si[14], si[15], si[16], si[17] = byte(total>>24), byte(total>>16), byte(total>>8), byte(total)
	return b
}

// TestFLACBomb: a FLAC file of a few hundred bytes that decodes to millions of samples
// (digital silence in constant subframes) is refused by the expansion guard, whether
// STREAMINFO declares the total or not (before the guard it decoded: with the default
// limit of 2^29 samples a 70 KB file of this kind decodes to 2 GiB of float32); one
// silent block, below the guard, still decodes.
func TestFLACBomb(t *testing.T) {
	const frames = 20 // 2.6 million samples from about 400 bytes
	for _, unknown := range []bool{false, true} {
		b := flacBomb(t, frames, unknown)
		if ratio := float64(frames*65535*2) / float64(len(b)); ratio <= maxFLACExpansion {
			t.Fatalf("the bomb expands only %.0fx", ratio)
		}
		cfg, err := flacConfig(b)
		if err != nil || (cfg.Frames > 0) == unknown {
			t.Fatalf("bomb STREAMINFO: %+v, %v (unknown total %v)", cfg, err, unknown)
		}
		a, err := Decode(b)
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "per byte") {
			n := 0
			if a != nil {
				n = len(a.Samples)
			}
			t.Fatalf("unknown total %v: %d-byte file decoded to %d samples, err %v; want the expansion guard's ErrTooLarge", unknown, len(b), n, err)
		}
	}
	small := flacBomb(t, 1, false)
	if a, err := Decode(small); err != nil || len(a.Samples) != 65535*2 {
		t.Fatalf("one silent block (%d bytes): %v", len(small), err)
	}
}
