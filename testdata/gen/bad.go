package gen

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// BadDir is the directory, relative to the output directory, that holds the malformed set.
const BadDir = "bad"

// Reject reasons ingest is expected to give for the files of the malformed set.
const (
	ReasonImageTruncated     = "image_truncated"
	ReasonPNGCRC             = "png_crc"
	ReasonEmptyFile          = "empty_file"
	ReasonImageTooLarge      = "image_too_large"
	ReasonTextNotUTF8        = "text_not_utf8"
	ReasonWAVTruncated       = "wav_truncated"
	ReasonUnsafePath         = "unsafe_path"
	ReasonSymlinkOutsideRoot = "symlink_outside_root"
	ReasonUnknownExtension   = "unknown_extension"
)

// BadFile is one entry of the malformed-input set written with [Options.Bad].
type BadFile struct {
	// Path is relative to the output directory, with slashes.
	Path string `json:"path"`
	// Member is the offending member's name when the bad item is inside an archive.
	Member string `json:"member,omitempty"`
	// Reason is the reject reason ingest is expected to record for this item.
	Reason string `json:"reason"`
	// What says how the item is malformed.
	What string `json:"what"`
}

// HugePNGSide is the width and height declared by the IHDR of bad/huge.png.
const HugePNGSide = 100000

// SymlinkTarget is where bad/outside.txt points: an absolute path outside any corpus root
// that exists on every Linux system, so an ingest that follows it would leak its contents.
const SymlinkTarget = "/etc/passwd"

// EscapeTarOK is the name of the well-formed member of bad/escape.tar. Ingest is expected
// to reject only the unsafe member and keep this one (a sample with key "ok" and a caption).
const EscapeTarOK = "ok.txt"

// BadFiles lists the malformed-input set, one entry per bad item, in the order written.
var BadFiles = []BadFile{
	{"bad/truncated.jpg", "", ReasonImageTruncated, "a valid JPEG cut after half its bytes (no EOI marker)"},
	{"bad/bad_crc.png", "", ReasonPNGCRC, "a valid PNG with the last byte of its IDAT chunk's CRC flipped; DecodeConfig succeeds, Decode fails with a checksum error"},
	{"bad/empty.jpg", "", ReasonEmptyFile, "zero bytes"},
	{"bad/huge.png", "", ReasonImageTooLarge, "a PNG whose IHDR (with a valid CRC) declares 100000x100000 RGB pixels, followed by a tiny IDAT and IEND"},
	{"bad/latin1.txt", "", ReasonTextNotUTF8, "ISO-8859-1 bytes (\"café crème brûlée\") that are not valid UTF-8"},
	{"bad/lying.wav", "", ReasonWAVTruncated, "a 16-bit PCM WAV whose data chunk declares ten times the bytes present (the RIFF size is truthful)"},
	{"bad/escape.tar", "../escape.txt", ReasonUnsafePath, "a tar holding a normal member ok.txt and a member named ../escape.txt"},
	{"bad/outside.txt", "", ReasonSymlinkOutsideRoot, "a symbolic link to /etc/passwd"},
	{"bad/notes.xyz", "", ReasonUnknownExtension, "a text file with an extension no ingest source handles"},
}

// badStream is the PCG stream of the malformed set, apart from every sample's (Seed, index).
const badStream = 1 << 63

// writeBad writes the malformed set into dir/bad and returns the number of files and bytes.
func writeBad(dir string, o Options) (files int, size int64, err error) {
	r := rand.New(rand.NewPCG(o.Seed, badStream))
	spec := o.drawSpec(0, r)
	img := renderImage(&spec, r)
	jpg, err := encodeImage(img, FormatJPEG, o.JPEGQuality)
	if err != nil {
		return 0, 0, err
	}
	pngb, err := encodeImage(img, FormatPNG, 0)
	if err != nil {
		return 0, 0, err
	}
	badCRC, err := flipIDATCRC(pngb)
	if err != nil {
		return 0, 0, err
	}
	wav := encodeWAV(renderAudio(&spec, 0.25, o.SampleRate, r), o.SampleRate)
	declared := 10 * (len(wav) - 44)
	binary.LittleEndian.PutUint32(wav[40:], uint32(declared))
	escape, err := tarBytes([]tarMember{
		{EscapeTarOK, []byte(spec.Caption)},
		{"../escape.txt", []byte("this member would be written outside the extraction root")},
	})
	if err != nil {
		return 0, 0, err
	}
	contents := map[string][]byte{
		"bad/truncated.jpg": jpg[:len(jpg)/2],
		"bad/bad_crc.png":   badCRC,
		"bad/empty.jpg":     {},
		"bad/huge.png":      hugePNG(),
		"bad/latin1.txt":    []byte("caf\xe9 cr\xe8me br\xfbl\xe9e \xab\xa0d\xe9j\xe0 vu\xa0\xbb"),
		"bad/lying.wav":     wav,
		"bad/escape.tar":    escape,
		"bad/notes.xyz":     []byte("this file has an extension that no ingest source handles\n"),
	}
	if err := os.MkdirAll(filepath.Join(dir, BadDir), 0o755); err != nil {
		return 0, 0, fmt.Errorf("gen: %w", err)
	}
	for _, bf := range BadFiles { // slice order, not map order
		p := filepath.Join(dir, filepath.FromSlash(bf.Path))
		if bf.Reason == ReasonSymlinkOutsideRoot {
			if err := os.Symlink(SymlinkTarget, p); err != nil {
				return files, size, fmt.Errorf("gen: bad set: %w", err)
			}
			files++
			continue
		}
		b, ok := contents[bf.Path]
		if !ok {
			return files, size, fmt.Errorf("gen: bad set: no content for %s", bf.Path)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return files, size, fmt.Errorf("gen: bad set: %w", err)
		}
		files++
		size += int64(len(b))
	}
	return files, size, nil
}

// flipIDATCRC returns a copy of a PNG file with the last CRC byte of its first IDAT chunk
// inverted.
func flipIDATCRC(p []byte) ([]byte, error) {
	out := bytes.Clone(p)
	for off := 8; off+12 <= len(out); {
		n := int(binary.BigEndian.Uint32(out[off:]))
		end := off + 12 + n
		if end > len(out) {
			break
		}
		if string(out[off+4:off+8]) == "IDAT" {
			out[end-1] ^= 0xff
			return out, nil
		}
		off = end
	}
	return nil, fmt.Errorf("gen: bad set: no IDAT chunk in encoded PNG")
}

// hugePNG builds a PNG whose IHDR declares HugePNGSide x HugePNGSide 8-bit RGB pixels. All
// chunk CRCs are valid, so only a size check rejects it before a decoder allocates ~30 GB.
func hugePNG() []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(len(data)))
		b.Write(hdr[:])
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		b.WriteString(typ)
		b.Write(data)
		binary.BigEndian.PutUint32(hdr[:], crc.Sum32())
		b.Write(hdr[:])
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], HugePNGSide)
	binary.BigEndian.PutUint32(ihdr[4:], HugePNGSide)
	ihdr[8] = 8 // bit depth
	ihdr[9] = 2 // colour type RGB; compression, filter, interlace 0
	chunk("IHDR", ihdr)
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(make([]byte, 64)) // bytes.Buffer never fails
	zw.Close()
	chunk("IDAT", z.Bytes())
	chunk("IEND", nil)
	return b.Bytes()
}
