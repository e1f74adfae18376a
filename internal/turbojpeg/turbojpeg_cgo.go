//go:build cgo

package turbojpeg

/*
#cgo linux LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>

// Our own declarations of the TurboJPEG 2 API (libjpeg-turbo 2.x, Debian bookworm ships
// 2.1.5); no turbojpeg.h is needed to build.
typedef void *tjhandle;
typedef tjhandle (*tjInitDecompress_t)(void);
typedef int (*tjDecompressHeader3_t)(tjhandle, const unsigned char *, unsigned long, int *, int *, int *, int *);
typedef int (*tjDecompress2_t)(tjhandle, const unsigned char *, unsigned long, unsigned char *, int, int, int, int, int);
typedef int (*tjDestroy_t)(tjhandle);
typedef char *(*tjGetErrorStr2_t)(tjhandle);

static tjInitDecompress_t p_init;
static tjDecompressHeader3_t p_header;
static tjDecompress2_t p_decompress;
static tjDestroy_t p_destroy;
static tjGetErrorStr2_t p_errstr;

// imm_tj_load returns NULL on success or a static message naming what failed.
static const char *imm_tj_load(const char *name) {
	void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) return "dlopen failed";
	p_init = (tjInitDecompress_t)dlsym(h, "tjInitDecompress");
	p_header = (tjDecompressHeader3_t)dlsym(h, "tjDecompressHeader3");
	p_decompress = (tjDecompress2_t)dlsym(h, "tjDecompress2");
	p_destroy = (tjDestroy_t)dlsym(h, "tjDestroy");
	p_errstr = (tjGetErrorStr2_t)dlsym(h, "tjGetErrorStr2");
	if (!p_init || !p_header || !p_decompress || !p_destroy || !p_errstr) return "missing TurboJPEG 2 symbols";
	return NULL;
}

static const char *imm_tj_dlerror(void) { const char *e = dlerror(); return e ? e : ""; }
static tjhandle imm_tj_init(void) { return p_init(); }
static int imm_tj_destroy(tjhandle h) { return p_destroy(h); }
static const char *imm_tj_errstr(tjhandle h) { return p_errstr(h); }
static int imm_tj_header(tjhandle h, const unsigned char *buf, unsigned long n, int *w, int *hh, int *ss, int *cs) {
	return p_header(h, buf, n, w, hh, ss, cs);
}
static int imm_tj_decompress(tjhandle h, const unsigned char *buf, unsigned long n, unsigned char *dst,
		int w, int pitch, int hh, int pf, int flags) {
	return p_decompress(h, buf, n, dst, w, pitch, hh, pf, flags);
}
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

const (
	pixelFormatRGBA = 7 // TJPF_RGBA: R, G, B, A bytes; A is set to 0xFF
	poolSize        = 64
)

var (
	loadOnce sync.Once
	loadErr  error
	handles  = make(chan C.tjhandle, poolSize)
)

// Load opens libturbojpeg.so.0 once and reports whether it is usable; the error wraps
// ErrUnavailable with the reason (library not installed, symbols missing).
func Load() error {
	loadOnce.Do(func() {
		name := C.CString(Library)
		defer C.free(unsafe.Pointer(name))
		if msg := C.imm_tj_load(name); msg != nil {
			loadErr = fmt.Errorf("%w: %s: %s", ErrUnavailable, C.GoString(msg), C.GoString(C.imm_tj_dlerror()))
		}
	})
	return loadErr
}

// Available reports whether Load succeeded.
func Available() bool { return Load() == nil }

func getHandle() (C.tjhandle, error) {
	if err := Load(); err != nil {
		return nil, err
	}
	select {
	case h := <-handles:
		return h, nil
	default:
	}
	h := C.imm_tj_init()
	if h == nil {
		return nil, fmt.Errorf("turbojpeg: tjInitDecompress: %s", C.GoString(C.imm_tj_errstr(nil)))
	}
	return h, nil
}

func putHandle(h C.tjhandle) {
	select {
	case handles <- h:
	default:
		C.imm_tj_destroy(h)
	}
}

func bufPtr(b []byte) *C.uchar { return (*C.uchar)(unsafe.Pointer(unsafe.SliceData(b))) }

// DecodeHeader reads the size, subsampling and colour space of a JPEG.
func DecodeHeader(data []byte) (hdr Header, err error) {
	if len(data) == 0 {
		return Header{}, fmt.Errorf("turbojpeg: empty input")
	}
	h, err := getHandle()
	if err != nil {
		return Header{}, err
	}
	defer func() {
		if err != nil {
			C.imm_tj_destroy(h)
			return
		}
		putHandle(h)
	}()
	var w, hh, ss, cs C.int
	if C.imm_tj_header(h, bufPtr(data), C.ulong(len(data)), &w, &hh, &ss, &cs) != 0 {
		return Header{}, fmt.Errorf("turbojpeg: read header: %s", C.GoString(C.imm_tj_errstr(h)))
	}
	return Header{Width: int(w), Height: int(hh), Subsamp: int(ss), Colorspace: int(cs)}, nil
}

// DecodeRGBA decodes a JPEG at 1/denom of its size (denom in 1, 2, 4, 8) into RGBA bytes:
// pix[(y*w + x)*4 + c], alpha 0xFF, w = ScaledSize(width, denom), h likewise.
// flags select libjpeg-turbo's faster, less exact algorithms; maxPixels bounds the decoded
// (scaled) size before any allocation, 0 means no bound.
func DecodeRGBA(data []byte, denom int, flags Flags, maxPixels int64) (pix []byte, w, h int, err error) {
	return Decode(data, flags, func(hdr Header) (int, error) {
		w, h := ScaledSize(hdr.Width, denom), ScaledSize(hdr.Height, denom)
		if maxPixels > 0 && int64(w)*int64(h) > maxPixels {
			return 0, fmt.Errorf("turbojpeg: decoded size %dx%d over %d pixels", w, h, maxPixels)
		}
		return denom, nil
	})
}

// Decode reads the header, lets choose check it and pick the reduction denom (1, 2, 4, 8),
// then decodes into RGBA bytes as DecodeRGBA does; the header is parsed once per call and
// nothing is allocated for pixels before choose accepts the size.
func Decode(data []byte, flags Flags, choose func(Header) (denom int, err error)) (pix []byte, w, h int, err error) {
	if len(data) == 0 {
		return nil, 0, 0, fmt.Errorf("turbojpeg: empty input")
	}
	th, err := getHandle()
	if err != nil {
		return nil, 0, 0, err
	}
	defer func() {
		if err != nil { // a handle that saw an error is not reused
			C.imm_tj_destroy(th)
			return
		}
		putHandle(th)
	}()
	var cw, ch, ss, cs C.int
	if C.imm_tj_header(th, bufPtr(data), C.ulong(len(data)), &cw, &ch, &ss, &cs) != 0 {
		return nil, 0, 0, fmt.Errorf("turbojpeg: read header: %s", C.GoString(C.imm_tj_errstr(th)))
	}
	hdr := Header{Width: int(cw), Height: int(ch), Subsamp: int(ss), Colorspace: int(cs)}
	if hdr.Width <= 0 || hdr.Height <= 0 {
		return nil, 0, 0, fmt.Errorf("turbojpeg: size %dx%d", hdr.Width, hdr.Height)
	}
	denom, err := choose(hdr)
	if err != nil {
		return nil, 0, 0, err
	}
	switch denom {
	case 1, 2, 4, 8:
	default:
		return nil, 0, 0, fmt.Errorf("turbojpeg: scale 1/%d not supported (want 1, 2, 4, 8)", denom)
	}
	w, h = ScaledSize(hdr.Width, denom), ScaledSize(hdr.Height, denom)
	pix = make([]byte, w*h*4)
	if C.imm_tj_decompress(th, bufPtr(data), C.ulong(len(data)), bufPtr(pix), C.int(w), C.int(w*4), C.int(h), pixelFormatRGBA, C.int(flags)) != 0 {
		return nil, 0, 0, fmt.Errorf("turbojpeg: decompress: %s", C.GoString(C.imm_tj_errstr(th)))
	}
	return pix, w, h, nil
}
