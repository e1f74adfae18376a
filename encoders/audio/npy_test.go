package audio

import (
	"bytes"
	"path/filepath"
	"testing"
)

func TestNPYRoundTripNumpy(t *testing.T) {
	data := []float32{1, 2.5, -3, 4, 5, 6}
	var buf bytes.Buffer
	if err := WriteNPY(&buf, data, 2, 3); err != nil {
		t.Fatal(err)
	}
	got, shape, err := ReadNPY(buf.Bytes())
	if err != nil || len(shape) != 2 || shape[0] != 2 || shape[1] != 3 {
		t.Fatalf("shape %v err %v", shape, err)
	}
	for i := range data {
		if got[i] != data[i] {
			t.Errorf("value %d: %v", i, got[i])
		}
	}
	for n := 0; n < buf.Len(); n++ {
		if _, _, err := ReadNPY(buf.Bytes()[:n]); err == nil && n < buf.Len()-4 {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
	if err := WriteNPY(&buf, data, 4, 2); err == nil {
		t.Error("wrong shape accepted")
	}
	// numpy reads our file and writes a float64 one we read back.
	py := python(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "a.npy"), filepath.Join(dir, "b.npy")
	var b2 bytes.Buffer
	WriteNPY(&b2, data, 2, 3)
	writeBytes(t, in, b2.Bytes())
	run(t, py, "-c", "import numpy as np,sys; a=np.load(sys.argv[1]); assert a.dtype==np.float32 and a.shape==(2,3), a; np.save(sys.argv[2], np.ascontiguousarray(a.astype(np.float64).T*2))", in, out)
	v, shape, err := ReadNPY(readBytes(t, out))
	if err != nil || shape[0] != 3 || shape[1] != 2 {
		t.Fatalf("shape %v err %v", shape, err)
	}
	if v[0] != 2 || v[1] != 8 || v[2] != 5 {
		t.Errorf("numpy transposed x2: %v", v)
	}
}
