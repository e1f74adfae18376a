package mmdata_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/immkit/immkit/imm/mmdata"
	"github.com/immkit/immkit/imm/mmdata/mmdatatest"
	"github.com/immkit/immkit/shards"
)

// Example builds a small shapes shard set, assembles a batch into particles and decodes
// them back to pictures and captions.
func Example() {
	dir, err := os.MkdirTemp("", "mmdata-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	f, err := mmdatatest.BuildShapes(context.Background(), dir, mmdatatest.Options{Samples: 10, Seed: 1})
	if err != nil {
		panic(err)
	}
	l, err := mmdata.NewLayout(f.Shards, mmdata.Options{ArtefactsDir: f.Encoded})
	if err != nil {
		panic(err)
	}
	for k, s := range l.Segments {
		off, _ := l.Offset(s.Name)
		fmt.Printf("segment %d: %s, %d tokens x %d features at %d\n", k, s.Name, s.Tokens, s.Features, off)
	}
	fmt.Println("dim", l.Dim())

	ld, err := shards.NewLoader(f.Shards, l.LoaderOptions(shards.LoaderOptions{GlobalBatch: 2, Epochs: 1}))
	if err != nil {
		panic(err)
	}
	defer ld.Close()
	b, err := ld.Next()
	if err != nil {
		panic(err)
	}
	x, mask := make([]float32, b.Len()*l.Dim()), make([]float32, b.Len()*l.Dim())
	labels, err := l.Assemble(b, x, mask)
	if err != nil {
		panic(err)
	}
	md, err := l.DecodeModalities(x, b.Len(), []string{mmdata.Image, mmdata.Text})
	if err != nil {
		panic(err)
	}
	caption, err := os.ReadFile(filepath.Join(f.Corpus, b.Keys[0]+".txt"))
	if err != nil {
		panic(err)
	}
	fmt.Println("label is the directory:", filepath.Dir(b.Keys[0]) == l.Labels[labels[0]])
	fmt.Println("picture:", md.Images[0].Rect.Dx(), "x", md.Images[0].Rect.Dy())
	fmt.Println("caption round trip:", md.Captions[0] == string(caption))
	// Output:
	// segment 0: image, 64 tokens x 48 features at 0
	// segment 1: audio, 10 tokens x 800 features at 3072
	// segment 2: text, 16 tokens x 16 features at 11072
	// dim 11328
	// label is the directory: true
	// picture: 32 x 32
	// caption round trip: true
}
