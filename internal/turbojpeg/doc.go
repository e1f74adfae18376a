// Package turbojpeg decodes JPEG through libjpeg-turbo's TurboJPEG API, loaded at run time
// with dlopen("libturbojpeg.so.0") (Debian package libturbojpeg0), so that building needs
// neither the library nor its headers and a binary runs unchanged where it is absent.
//
// The one feature used beyond speed is DCT-domain scaling: a JPEG can be decoded directly at
// 1/2, 1/4 or 1/8 of its size (each side ceil(side/n)), which costs a fraction of a full
// decode. Load reports whether the library is usable; every other function returns ErrUnavailable
// when it is not. This is the only package that imports "C" for libturbojpeg; the file
// turbojpeg_nocgo.go defines the same identifiers for builds without cgo.
package turbojpeg

import "errors"

// ErrUnavailable is returned (wrapped with the reason) when libturbojpeg cannot be used.
var ErrUnavailable = errors.New("turbojpeg: libturbojpeg.so.0 unavailable")

// Library is the shared object name that Load opens.
const Library = "libturbojpeg.so.0"

// Header is what the JPEG header says about an image.
type Header struct {
	Width, Height int
	Subsamp       int // TJSAMP_*: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0, 3 = gray, 4 = 4:4:0, 5 = 4:1:1
	Colorspace    int // TJCS_*: 0 = RGB, 1 = YCbCr, 2 = gray, 3 = CMYK, 4 = YCCK
}

// ScaledSize is the size of a side decoded at 1/denom: ceil(side/denom), as TJSCALED computes it.
func ScaledSize(side, denom int) int { return (side + denom - 1) / denom }

// Flags are TurboJPEG decompression flags.
type Flags int

const (
	// FastUpsample replicates chroma samples instead of libjpeg's "fancy" triangle filter
	// (TJFLAG_FASTUPSAMPLE); Pillow's draft mode does the same.
	FastUpsample Flags = 256
	// FastDCT uses the fastest inverse DCT (TJFLAG_FASTDCT); Pillow's draft mode does the same.
	FastDCT Flags = 2048
)
