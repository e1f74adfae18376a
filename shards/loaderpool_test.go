package shards

import (
	"bytes"
	"testing"
)

// TestBufferPool checks that recycled buffers come back zeroed, that Reallocate keeps the
// contents and zeroes the growth, and that a freed buffer is reused.
func TestBufferPool(t *testing.T) {
	var p bufferPool
	a := p.Allocate(1000)
	if len(a) != 1000 || cap(a) != 1024 {
		t.Fatalf("Allocate(1000): len %d cap %d", len(a), cap(a))
	}
	for i := range a {
		a[i] = 0xFF
	}
	p.Free(a)
	b := p.Allocate(700)
	if &b[:1][0] != &a[:1][0] {
		t.Fatal("a freed buffer of the same capacity was not reused")
	}
	if !bytes.Equal(b, make([]byte, 700)) {
		t.Fatal("a reused buffer is not zeroed")
	}
	for i := range b {
		b[i] = byte(i)
	}
	c := p.Reallocate(900, b) // within capacity
	d := p.Reallocate(5000, c)
	if len(d) != 5000 {
		t.Fatalf("Reallocate(5000): len %d", len(d))
	}
	for i := range d {
		want := byte(0)
		if i < 700 {
			want = byte(i)
		}
		if d[i] != want {
			t.Fatalf("after Reallocate, byte %d = %d, want %d", i, d[i], want)
		}
	}
	if len(p.Allocate(0)) != 0 {
		t.Fatal("Allocate(0) is not empty")
	}
	p.Free(make([]byte, 3, 3)) // not a pool capacity: dropped
	if e := p.Allocate(3); cap(e) != 4 {
		t.Fatalf("Allocate(3) has capacity %d", cap(e))
	}
}
