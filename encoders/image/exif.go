package image

import (
	"encoding/binary"
	"image"

	"github.com/disintegration/imaging"
)

// Orientation returns the EXIF orientation (1..8) of an encoded image, or 1 when there is
// none or it cannot be read. It looks in a JPEG's APP1 "Exif" segments, a PNG's eXIf chunk,
// a WebP's EXIF chunk, and a TIFF's own IFD0. Malformed input is never an error here: a
// broken EXIF block means "no orientation".
func Orientation(data []byte) int {
	var tiff []byte
	switch {
	case len(data) > 3 && data[0] == 0xFF && data[1] == 0xD8:
		tiff = jpegEXIF(data)
	case len(data) > 8 && string(data[:8]) == "\x89PNG\r\n\x1a\n":
		tiff = pngEXIF(data)
	case len(data) > 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP":
		tiff = webpEXIF(data)
	case len(data) > 4 && (string(data[:4]) == "II*\x00" || string(data[:4]) == "MM\x00*"):
		tiff = data
	}
	if o := tiffOrientation(tiff); o >= 1 && o <= 8 {
		return o
	}
	return 1
}

// jpegEXIF returns the TIFF block of the first APP1 Exif segment before the scan data.
func jpegEXIF(b []byte) []byte {
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return nil
		}
		m := b[i+1]
		switch {
		case m == 0xFF: // fill byte
			i++
			continue
		case m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7):
			i += 2
			continue
		case m == 0xDA || m == 0xD9: // start of scan, end of image: no more metadata
			return nil
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return nil
		}
		seg := b[i+4 : i+2+n]
		if m == 0xE1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			return seg[6:]
		}
		i += 2 + n
	}
	return nil
}

func pngEXIF(b []byte) []byte {
	i := 8
	for i+12 <= len(b) {
		n := int(binary.BigEndian.Uint32(b[i:]))
		typ := string(b[i+4 : i+8])
		if n < 0 || n > len(b)-i-12 {
			return nil
		}
		if typ == "eXIf" {
			return b[i+8 : i+8+n]
		}
		if typ == "IDAT" || typ == "IEND" {
			return nil
		}
		i += 12 + n
	}
	return nil
}

func webpEXIF(b []byte) []byte {
	i := 12
	for i+8 <= len(b) {
		n := int(binary.LittleEndian.Uint32(b[i+4:]))
		if n < 0 || n > len(b)-i-8 {
			return nil
		}
		if string(b[i:i+4]) == "EXIF" {
			e := b[i+8 : i+8+n]
			if len(e) >= 6 && string(e[:6]) == "Exif\x00\x00" {
				e = e[6:]
			}
			return e
		}
		i += 8 + n + n&1
	}
	return nil
}

// tiffOrientation reads tag 0x0112 (SHORT) of IFD0 of a TIFF block, 0 when absent or malformed.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	if bo.Uint16(t[2:]) != 42 {
		return 0
	}
	off := int64(bo.Uint32(t[4:]))
	if off < 8 || off+2 > int64(len(t)) {
		return 0
	}
	n := int64(bo.Uint16(t[off:]))
	for k := int64(0); k < n; k++ {
		e := off + 2 + 12*k
		if e+12 > int64(len(t)) {
			return 0
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		typ, count := bo.Uint16(t[e+2:]), bo.Uint32(t[e+4:])
		if typ != 3 || count < 1 { // SHORT; the value sits in the first 2 bytes of the value field
			return 0
		}
		return int(bo.Uint16(t[e+8:]))
	}
	return 0
}

// Orient transforms an image stored with EXIF orientation o (1..8) so that it displays
// upright; other values return img unchanged.
//
//	1 none  2 mirror horizontal  3 rotate 180  4 mirror vertical
//	5 transpose  6 rotate 90 clockwise  7 transverse  8 rotate 90 counter-clockwise
func Orient(img *image.NRGBA, o int) *image.NRGBA {
	switch o {
	case 2:
		return imaging.FlipH(img)
	case 3:
		return imaging.Rotate180(img)
	case 4:
		return imaging.FlipV(img)
	case 5:
		return imaging.Transpose(img)
	case 6:
		return imaging.Rotate270(img) // imaging rotates counter-clockwise
	case 7:
		return imaging.Transverse(img)
	case 8:
		return imaging.Rotate90(img)
	}
	return img
}
