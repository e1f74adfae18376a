package gen

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
)

// Audio envelope: linear attack and release, in seconds.
const (
	attackSeconds  = 0.005
	releaseSeconds = 0.010
	noiseAmplitude = 0.004 // uniform background noise, relative to full scale
)

// renderAudio synthesises the sample's clip as 16-bit mono PCM: a sine at the colour's
// pitch for each note of the shape's rhythm, peak amplitude from the size, linear 5 ms attack
// and 10 ms release, over faint uniform noise.
func renderAudio(s *Spec, seconds float64, rate int, r *rand.Rand) []int16 {
	n := int(math.Round(seconds * float64(rate)))
	out := make([]int16, n)
	shape, _ := ShapeByName(s.Shape)
	size, _ := SizeByName(s.Size)
	notes := shape.Rhythm(seconds)
	w := 2 * math.Pi * s.PitchHz / float64(rate)
	for i := range out {
		t := float64(i) / float64(rate)
		x := (r.Float64()*2 - 1) * noiseAmplitude
		for _, nt := range notes {
			if t < nt.Start || t >= nt.End {
				continue
			}
			env := min(1, (t-nt.Start)/attackSeconds, (nt.End-t)/releaseSeconds)
			x += float64(size.Amplitude * env * math.Sin(float64(w*float64(i))))
		}
		out[i] = int16(math.Round(min(max(x, -1), 1) * 32767))
	}
	return out
}

// encodeWAV writes a canonical 44-byte-header RIFF/WAVE file of 16-bit mono PCM.
func encodeWAV(pcm []int16, rate int) []byte {
	data := 2 * len(pcm)
	b := make([]byte, 44+data)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+data))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(2*rate)) // byte rate
	binary.LittleEndian.PutUint16(b[32:], 2)              // block align
	binary.LittleEndian.PutUint16(b[34:], 16)             // bits per sample
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(data))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(v))
	}
	return b
}
