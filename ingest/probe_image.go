package ingest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	_ "image/gif" // DecodeConfig for gif
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp" // DecodeConfig for bmp
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// ImageInfo is what probing an encoded image finds without decoding pixels.
type ImageInfo struct {
	Format        string // jpeg, png, gif, webp, bmp or tiff
	Width, Height int
}

// ImageLimits bound the images a probe accepts. Zero fields are no limit.
type ImageLimits struct {
	MaxPixels int64 // width*height above this is image_too_large
	MinSide   int   // min(width, height) below this is image_too_small
}

// sniffImage names the image format from its magic bytes, or "".
func sniffImage(b []byte) string {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return "jpeg"
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(b, []byte("GIF87a")) || bytes.HasPrefix(b, []byte("GIF89a")):
		return "gif"
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return "webp"
	case bytes.HasPrefix(b, []byte("BM")):
		return "bmp"
	case bytes.HasPrefix(b, []byte("II*\x00")) || bytes.HasPrefix(b, []byte("MM\x00*")):
		return "tiff"
	}
	return ""
}

// ProbeImage finds the format and size of an encoded image and checks its structure
// (JPEG segments up to EOI, PNG chunk CRCs up to IEND, GIF trailer, RIFF/BMP sizes) without
// allocating a pixel buffer. The size limits are checked as soon as the header is parsed.
func ProbeImage(b []byte, lim ImageLimits) (info ImageInfo, err error) {
	if len(b) == 0 {
		return info, perr(ReasonEmptyFile, "empty image file")
	}
	info.Format = sniffImage(b)
	check := func(w, h int) error {
		info.Width, info.Height = w, h
		if w <= 0 || h <= 0 {
			return perr(ReasonImageCorrupt, "%s header gives size %dx%d", info.Format, w, h)
		}
		if lim.MaxPixels > 0 && int64(w)*int64(h) > lim.MaxPixels {
			return perr(ReasonImageTooLarge, "%dx%d = %d pixels > --max-pixels %d", w, h, int64(w)*int64(h), lim.MaxPixels)
		}
		if lim.MinSide > 0 && min(w, h) < lim.MinSide {
			return perr(ReasonImageTooSmall, "%dx%d has a side < --min-side %d", w, h, lim.MinSide)
		}
		return nil
	}
	switch info.Format {
	case "jpeg":
		return info, probeJPEG(b, check)
	case "png":
		return info, probePNG(b, check)
	case "":
		return info, perr(ReasonImageUnknownFormat, "not a jpeg, png, gif, webp, bmp or tiff image (starts % x)", b[:min(len(b), 8)])
	}
	// gif, webp, bmp, tiff: the standard decoders' DecodeConfig reads only the header.
	if err := structureCheck(info.Format, b); err != nil {
		return info, err
	}
	cfg, err := decodeConfig(b)
	if err != nil {
		return info, err
	}
	return info, check(cfg.Width, cfg.Height)
}

func decodeConfig(b []byte) (cfg image.Config, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = perr(ReasonDecoderPanic, "image header decoder panicked: %v", r)
		}
	}()
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return cfg, perr(ReasonImageCorrupt, "%s header: %v", format, err)
	}
	return cfg, nil
}

// structureCheck finds truncation in gif, webp and bmp files from their own size fields.
func structureCheck(format string, b []byte) error {
	switch format {
	case "gif":
		if b[len(b)-1] != 0x3B {
			return perr(ReasonImageTruncated, "gif does not end with the trailer byte 0x3B")
		}
	case "webp":
		size := int64(binary.LittleEndian.Uint32(b[4:8])) + 8
		if size > int64(len(b)) {
			return perr(ReasonImageTruncated, "webp RIFF size %d > file size %d", size, len(b))
		}
	case "bmp":
		if len(b) < 34 {
			return perr(ReasonImageTruncated, "bmp header is %d bytes", len(b))
		}
		off := int64(binary.LittleEndian.Uint32(b[10:14]))
		if len(b) >= 54 && binary.LittleEndian.Uint32(b[30:34]) == 0 { // BI_RGB: rows are stored plainly
			w := int64(int32(binary.LittleEndian.Uint32(b[18:22])))
			h := int64(int32(binary.LittleEndian.Uint32(b[22:26])))
			bpp := int64(binary.LittleEndian.Uint16(b[28:30]))
			if h < 0 {
				h = -h
			}
			if w > 0 && w < 1<<20 && h < 1<<20 {
				need := off + (bpp*w+31)/32*4*h
				if need > int64(len(b)) {
					return perr(ReasonImageTruncated, "bmp pixel data needs %d bytes, file has %d", need, len(b))
				}
			}
		}
	}
	return nil
}

// probeJPEG walks the JPEG segments from SOI to EOI, taking the size from the first SOFn
// and skipping entropy-coded data (with its 0xFF00 stuffing and RST markers) by scanning
// for the next marker. A file that ends before EOI is truncated.
func probeJPEG(b []byte, check func(w, h int) error) error {
	i := 2
	sawSOF, sawSOS := false, false
	for {
		if i >= len(b) {
			return perr(ReasonImageTruncated, "jpeg ends at byte %d without an EOI marker", len(b))
		}
		if b[i] != 0xFF {
			return perr(ReasonImageCorrupt, "jpeg: expected a marker at byte %d, found 0x%02x", i, b[i])
		}
		for i < len(b) && b[i] == 0xFF {
			i++
		}
		if i >= len(b) {
			return perr(ReasonImageTruncated, "jpeg ends inside a marker")
		}
		m := b[i]
		i++
		switch {
		case m == 0xD9: // EOI
			if !sawSOF || !sawSOS {
				return perr(ReasonImageCorrupt, "jpeg reaches EOI without a frame header and scan")
			}
			return nil
		case m == 0x01 || (m >= 0xD0 && m <= 0xD7): // TEM, RSTn: no length
			continue
		case m == 0x00 || m == 0xD8:
			return perr(ReasonImageCorrupt, "jpeg: unexpected marker 0xFF%02X at byte %d", m, i-1)
		}
		if i+2 > len(b) {
			return perr(ReasonImageTruncated, "jpeg ends inside the length of segment 0xFF%02X", m)
		}
		n := int(b[i])<<8 | int(b[i+1])
		if n < 2 {
			return perr(ReasonImageCorrupt, "jpeg segment 0xFF%02X has length %d", m, n)
		}
		if i+n > len(b) {
			return perr(ReasonImageTruncated, "jpeg segment 0xFF%02X needs %d bytes, %d left", m, n, len(b)-i)
		}
		seg := b[i+2 : i+n]
		if m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC && !sawSOF {
			if len(seg) < 6 {
				return perr(ReasonImageCorrupt, "jpeg frame header is %d bytes", len(seg))
			}
			sawSOF = true
			h := int(seg[1])<<8 | int(seg[2])
			w := int(seg[3])<<8 | int(seg[4])
			if err := check(w, h); err != nil {
				return err
			}
		}
		i += n
		if m != 0xDA { // SOS: entropy-coded data follows
			continue
		}
		if !sawSOF {
			return perr(ReasonImageCorrupt, "jpeg scan before the frame header")
		}
		sawSOS = true
		for {
			j := bytes.IndexByte(b[i:], 0xFF)
			if j < 0 {
				return perr(ReasonImageTruncated, "jpeg ends inside entropy-coded data (no EOI)")
			}
			i += j
			if i+1 >= len(b) {
				return perr(ReasonImageTruncated, "jpeg ends inside entropy-coded data (no EOI)")
			}
			nx := b[i+1]
			if nx == 0x00 || (nx >= 0xD0 && nx <= 0xD7) {
				i += 2
				continue
			}
			if nx == 0xFF { // fill byte before a marker
				i++
				continue
			}
			break // a marker at b[i]
		}
	}
}

// probePNG walks the chunks from IHDR to IEND verifying every CRC, without inflating IDAT.
func probePNG(b []byte, check func(w, h int) error) error {
	i := 8
	first, sawIDAT := true, false
	for {
		if i+8 > len(b) {
			return perr(ReasonImageTruncated, "png ends at byte %d before IEND", len(b))
		}
		n := int64(binary.BigEndian.Uint32(b[i : i+4]))
		typ := string(b[i+4 : i+8])
		if n > 1<<31-1 {
			return perr(ReasonImageCorrupt, "png chunk %q has length %d", typ, n)
		}
		end := int64(i) + 8 + n + 4
		if end > int64(len(b)) {
			return perr(ReasonImageTruncated, "png chunk %q at byte %d needs %d bytes, %d left", typ, i, 12+n, len(b)-i)
		}
		data := b[i+8 : i+8+int(n)]
		want := binary.BigEndian.Uint32(b[end-4 : end])
		if got := crc32.ChecksumIEEE(b[i+4 : i+8+int(n)]); got != want {
			return perr(ReasonPNGCRC, "png chunk %q at byte %d: crc %08x, stored %08x", typ, i, got, want)
		}
		if first {
			if typ != "IHDR" || n != 13 {
				return perr(ReasonImageCorrupt, "png starts with chunk %q (length %d), not IHDR", typ, n)
			}
			first = false
			w := binary.BigEndian.Uint32(data[0:4])
			h := binary.BigEndian.Uint32(data[4:8])
			if w > 1<<31-1 || h > 1<<31-1 {
				return perr(ReasonImageCorrupt, "png IHDR size %dx%d", w, h)
			}
			if err := check(int(w), int(h)); err != nil {
				return err
			}
		}
		switch typ {
		case "IDAT":
			sawIDAT = true
		case "IEND":
			if !sawIDAT {
				return perr(ReasonImageCorrupt, "png has no IDAT chunk")
			}
			return nil
		}
		i = int(end)
	}
}

// String formats the info for logs.
func (in ImageInfo) String() string { return fmt.Sprintf("%s %dx%d", in.Format, in.Width, in.Height) }
