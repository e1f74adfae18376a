package gen_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/immkit/immkit/testdata/gen"
)

func ExampleGenerate() {
	tmp, err := os.MkdirTemp("", "shapes")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(tmp)
	o := gen.Options{Seed: 1, Samples: 10, Bad: true}
	sum, err := gen.Generate(context.Background(), filepath.Join(tmp, "corpus"), o)
	fmt.Printf("%d samples, %d files, %d bad, err=%v\n", sum.Samples, sum.Files, sum.BadFiles, err)

	// Any sample's attributes and bytes can be recomputed without the files.
	spec := o.Spec(3)
	attrs, err := gen.ParseCaption(spec.Caption)
	fmt.Println(spec.Key, spec.Label, spec.Image == spec.Label+"/"+spec.Key+".jpg", attrs == spec.Attributes, err)
	// Output:
	// 10 samples, 40 files, 9 bad, err=<nil>
	// 000003 square true true <nil>
}
