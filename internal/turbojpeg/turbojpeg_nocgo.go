//go:build !cgo

package turbojpeg

import "fmt"

var errNoCgo = fmt.Errorf("%w: built without cgo", ErrUnavailable)

// Load reports that libturbojpeg cannot be used in a build without cgo.
func Load() error { return errNoCgo }

// Available reports false in a build without cgo.
func Available() bool { return false }

// DecodeHeader is unavailable in a build without cgo.
func DecodeHeader(data []byte) (Header, error) { return Header{}, errNoCgo }

// DecodeRGBA is unavailable in a build without cgo.
func DecodeRGBA(data []byte, denom int, flags Flags, maxPixels int64) (pix []byte, w, h int, err error) {
	return nil, 0, 0, errNoCgo
}

// Decode is unavailable in a build without cgo.
func Decode(data []byte, flags Flags, choose func(Header) (denom int, err error)) (pix []byte, w, h int, err error) {
	return nil, 0, 0, errNoCgo
}
