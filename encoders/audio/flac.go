package audio

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/mewkiz/flac"
)

// skipID3v2 returns data after a leading ID3v2 tag, if any.
func skipID3v2(data []byte) []byte {
	if len(data) < 10 || string(data[0:3]) != "ID3" {
		return data
	}
	size := int(data[6]&0x7f)<<21 | int(data[7]&0x7f)<<14 | int(data[8]&0x7f)<<7 | int(data[9]&0x7f)
	end := 10 + size
	if data[5]&0x10 != 0 {
		end += 10
	}
	if end > len(data) {
		return data[len(data):]
	}
	return data[end:]
}

// flacConfig parses the STREAMINFO block by hand (it is the first metadata block).
func flacConfig(data []byte) (Config, error) {
	b := skipID3v2(data)
	if len(b) < 8+34 || string(b[0:4]) != "fLaC" {
		return Config{}, errors.New("audio: flac: truncated STREAMINFO")
	}
	if b[4]&0x7f != 0 {
		return Config{}, fmt.Errorf("audio: flac: first metadata block has type %d, want STREAMINFO (0)", b[4]&0x7f)
	}
	si := b[8:]
	rate := int(si[10])<<12 | int(si[11])<<4 | int(si[12])>>4
	channels := int(si[12]>>1&0x07) + 1
	bits := int(si[12]&1)<<4 | int(si[13])>>4 + 1
	total := int64(si[13]&0x0f)<<32 | int64(si[14])<<24 | int64(si[15])<<16 | int64(si[16])<<8 | int64(si[17])
	if rate == 0 {
		return Config{}, errors.New("audio: flac: sample rate 0")
	}
	if total == 0 {
		total = -1
	}
	return Config{Format: FormatFLAC, Rate: rate, Channels: channels, BitsPerSample: bits, Frames: total}, nil
}

// maxFLACExpansion bounds the decoded samples (all channels) per byte of FLAC input. Real
// audio decodes to about one sample per byte; digital silence coded as constant subframes
// reaches about 7700, so only files that are (nearly) all digital silence exceed it.
const maxFLACExpansion = 4096

func tooExpanded(n int64, size int) error {
	return fmt.Errorf("%w: flac: %d samples from %d bytes, more than %d per byte (a decompression bomb or digital silence)", ErrTooLarge, n, size, maxFLACExpansion)
}

// decodeFLAC decodes with github.com/mewkiz/flac, scaling each sample by 1/2^(bits-1).
// A panic inside the decoder is returned as an error.
func decodeFLAC(data []byte, maxSamples int) (a *Audio, err error) {
	defer func() {
		if r := recover(); r != nil {
			a, err = nil, fmt.Errorf("audio: flac: decoder panic: %v", r)
		}
	}()
	cfg, err := flacConfig(data)
	if err != nil {
		return nil, err
	}
	if cfg.Frames > 0 && cfg.Frames*int64(cfg.Channels) > int64(maxSamples) {
		return nil, tooLarge("flac", cfg.Frames*int64(cfg.Channels), maxSamples)
	}
	// The expansion guard: a constant subframe of a few bytes decodes to 65535 samples per
	// channel, so a FLAC file of a few kilobytes can decode to gigabytes (within the
	// sample limit). Refuse more than maxFLACExpansion samples per byte of input.
	if e := maxFLACExpansion * int64(len(data)); e < int64(maxSamples) {
		maxSamples = int(e)
		if cfg.Frames > 0 && cfg.Frames*int64(cfg.Channels) > e {
			return nil, tooExpanded(cfg.Frames*int64(cfg.Channels), len(data))
		}
	}
	stream, err := flac.New(bytes.NewReader(skipID3v2(data)))
	if err != nil {
		return nil, fmt.Errorf("audio: flac: %w", err)
	}
	ch := int(stream.Info.NChannels)
	var out []float32
	if cfg.Frames > 0 {
		out = make([]float32, 0, cfg.Frames*int64(ch))
	}
	for {
		f, err := stream.ParseNext()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("audio: flac: frame at sample %d: %w", len(out)/ch, err)
		}
		if len(f.Subframes) != ch {
			return nil, fmt.Errorf("audio: flac: frame has %d channels, stream %d", len(f.Subframes), ch)
		}
		n := len(f.Subframes[0].Samples)
		for _, s := range f.Subframes[1:] {
			if len(s.Samples) != n {
				return nil, errors.New("audio: flac: subframes of unequal length")
			}
		}
		if len(out)+n*ch > maxSamples {
			if int64(maxSamples) == maxFLACExpansion*int64(len(data)) {
				return nil, tooExpanded(int64(len(out)+n*ch), len(data))
			}
			return nil, tooLarge("flac", int64(len(out)+n*ch), maxSamples)
		}
		bps := int(f.BitsPerSample)
		if bps < 1 || bps > 32 {
			return nil, fmt.Errorf("audio: flac: %d bits per sample", bps)
		}
		scale := 1 / float64(int64(1)<<(bps-1))
		base := len(out)
		out = append(out, make([]float32, n*ch)...)
		dst := out[base:]
		for c, s := range f.Subframes {
			for i, v := range s.Samples {
				dst[i*ch+c] = float32(float64(v) * scale)
			}
		}
	}
	return &Audio{Samples: out, Rate: int(stream.Info.SampleRate), Channels: ch}, nil
}
