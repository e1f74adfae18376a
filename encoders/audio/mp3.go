package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/hajimehoshi/go-mp3"
)

// mp3Config opens the stream with go-mp3 (which scans frame headers for the length).
// go-mp3 always yields 16-bit stereo, mono sources duplicated, so Channels is 2.
func mp3Config(data []byte) (cfg Config, err error) {
	defer func() {
		if r := recover(); r != nil {
			cfg, err = Config{}, fmt.Errorf("audio: mp3: decoder panic: %v", r)
		}
	}()
	d, err := mp3.NewDecoder(bytes.NewReader(data))
	if err != nil {
		return Config{}, fmt.Errorf("audio: mp3: %w", err)
	}
	frames := d.Length()
	if frames >= 0 {
		frames /= 4
	}
	return Config{Format: FormatMP3, Rate: d.SampleRate(), Channels: 2, BitsPerSample: 16, Frames: frames}, nil
}

// decodeMP3 decodes with github.com/hajimehoshi/go-mp3 into interleaved stereo.
// A panic inside the decoder is returned as an error.
func decodeMP3(data []byte, maxSamples int) (a *Audio, err error) {
	defer func() {
		if r := recover(); r != nil {
			a, err = nil, fmt.Errorf("audio: mp3: decoder panic: %v", r)
		}
	}()
	d, err := mp3.NewDecoder(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("audio: mp3: %w", err)
	}
	if d.SampleRate() <= 0 {
		return nil, errors.New("audio: mp3: no sample rate")
	}
	n := d.Length() / 2 // int16 samples
	if n > int64(maxSamples) {
		return nil, tooLarge("mp3", n, maxSamples)
	}
	var pcm []byte
	if n > 0 {
		pcm = make([]byte, 0, 2*n)
	}
	buf := bytes.NewBuffer(pcm)
	if _, err := io.Copy(buf, io.LimitReader(d, 2*int64(maxSamples)+2)); err != nil {
		return nil, fmt.Errorf("audio: mp3: %w", err)
	}
	pcm = buf.Bytes()
	if len(pcm)/2 > maxSamples {
		return nil, tooLarge("mp3", int64(len(pcm)/2), maxSamples)
	}
	pcm = pcm[:len(pcm)-len(pcm)%4]
	out := make([]float32, len(pcm)/2)
	for i := range out {
		out[i] = float32(int16(binary.LittleEndian.Uint16(pcm[2*i:]))) * (1.0 / 32768)
	}
	return &Audio{Samples: out, Rate: d.SampleRate(), Channels: 2}, nil
}
