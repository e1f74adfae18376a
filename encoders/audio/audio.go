package audio

import (
	"errors"
	"fmt"
)

// Audio is decoded PCM audio.
type Audio struct {
	// Samples holds the samples interleaved by channel, as float32 nominally in [-1, 1]:
	// sample i of channel c is Samples[i*Channels+c]. len(Samples) = Frames()*Channels.
	Samples []float32
	// Rate is the sample rate in Hz.
	Rate int
	// Channels is the number of interleaved channels (>= 1).
	Channels int
}

// Frames returns the number of samples per channel.
func (a *Audio) Frames() int {
	if a.Channels <= 0 {
		return 0
	}
	return len(a.Samples) / a.Channels
}

// Seconds returns the duration.
func (a *Audio) Seconds() float64 {
	if a.Rate <= 0 {
		return 0
	}
	return float64(a.Frames()) / float64(a.Rate)
}

// Mono returns the channel average, one sample per frame. For mono audio it returns
// Samples itself (not a copy).
func (a *Audio) Mono() []float32 {
	if a.Channels <= 1 {
		return a.Samples
	}
	n := a.Frames()
	out := make([]float32, n)
	ch := a.Channels
	inv := 1 / float64(ch)
	if ch == 2 {
		for i := range out {
			out[i] = float32((float64(a.Samples[2*i]) + float64(a.Samples[2*i+1])) * 0.5)
		}
		return out
	}
	for i := range out {
		var s float64
		for _, v := range a.Samples[i*ch : i*ch+ch] {
			s += float64(v)
		}
		out[i] = float32(s * inv)
	}
	return out
}

// ErrFormat is returned (wrapped) when the input is not a recognised audio format.
var ErrFormat = errors.New("audio: unknown format")

// ErrTooLarge is returned (wrapped) when the declared size of the input exceeds the limit.
var ErrTooLarge = errors.New("audio: input too large")

// DefaultMaxSamples is the limit on decoded samples (all channels) used by Decode:
// 2^29 float32 samples (2 GiB), about 93 minutes of 48 kHz stereo.
const DefaultMaxSamples = 1 << 29

// Format names an encoded audio format.
type Format string

// The formats Decode reads.
const (
	FormatWAV  Format = "wav"
	FormatFLAC Format = "flac"
	FormatMP3  Format = "mp3"
)

// Config is what DecodeConfig learns from a header.
type Config struct {
	Format        Format
	Rate          int
	Channels      int
	BitsPerSample int   // 0 where the format has none (mp3)
	Frames        int64 // samples per channel; -1 when the header does not say
}

// Sniff identifies the format from the first bytes.
func Sniff(data []byte) (Format, error) {
	switch {
	case len(data) >= 12 && string(data[0:4]) == "RIFF" && string(data[8:12]) == "WAVE":
		return FormatWAV, nil
	case len(data) >= 4 && string(data[0:4]) == "fLaC":
		return FormatFLAC, nil
	case len(data) >= 3 && string(data[0:3]) == "ID3":
		// ID3v2 is used by mp3 and, rarely, flac: look behind the tag.
		if len(data) >= 10 {
			size := int(data[6]&0x7f)<<21 | int(data[7]&0x7f)<<14 | int(data[8]&0x7f)<<7 | int(data[9]&0x7f)
			end := 10 + size
			if data[5]&0x10 != 0 {
				end += 10
			}
			if end+4 <= len(data) && string(data[end:end+4]) == "fLaC" {
				return FormatFLAC, nil
			}
		}
		return FormatMP3, nil
	case len(data) >= 2 && data[0] == 0xff && data[1]&0xe0 == 0xe0 && data[1]&0x06 != 0:
		return FormatMP3, nil
	}
	return "", ErrFormat
}

// DecodeConfig reads only the header: format, rate, channels and (where known) length.
func DecodeConfig(data []byte) (Config, error) {
	f, err := Sniff(data)
	if err != nil {
		return Config{}, err
	}
	switch f {
	case FormatWAV:
		h, err := parseWAVHeader(data)
		if err != nil {
			return Config{}, err
		}
		return Config{Format: FormatWAV, Rate: h.rate, Channels: h.channels, BitsPerSample: h.bits, Frames: int64(h.frames())}, nil
	case FormatFLAC:
		return flacConfig(data)
	default:
		return mp3Config(data)
	}
}

// Decode decodes WAV, FLAC or MP3 bytes, rejecting input that declares more than
// DefaultMaxSamples samples.
func Decode(data []byte) (*Audio, error) { return DecodeLimit(data, DefaultMaxSamples) }

// DecodeLimit is Decode with a limit on the decoded samples (all channels together).
func DecodeLimit(data []byte, maxSamples int) (*Audio, error) {
	f, err := Sniff(data)
	if err != nil {
		return nil, err
	}
	switch f {
	case FormatWAV:
		return decodeWAV(data, maxSamples)
	case FormatFLAC:
		return decodeFLAC(data, maxSamples)
	default:
		return decodeMP3(data, maxSamples)
	}
}

func tooLarge(what string, n int64, max int) error {
	return fmt.Errorf("%w: %s declares %d samples, limit %d", ErrTooLarge, what, n, max)
}
