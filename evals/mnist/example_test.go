package mnist_test

import (
	"bytes"
	"fmt"

	"github.com/immkit/immkit/evals/mnist"
)

// ExampleReadSet decodes a set of two 2x3 images and their labels from idx bytes, as
// Load does for the MNIST files.
func ExampleReadSet() {
	images := []byte{0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, // ubyte, rank 3: 2 x 2 x 3
		0, 255, 0, 0, 255, 0, // a vertical bar
		255, 255, 255, 0, 0, 0} // a horizontal bar
	labels := []byte{0, 0, 0x08, 1, 0, 0, 0, 2, 1, 7}
	s, err := mnist.ReadSet(bytes.NewReader(images), bytes.NewReader(labels))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Len(), "images of", s.Cols, "x", s.Rows, "labels", s.Labels)
	fmt.Println("image 1, pixel (2, 0):", s.Image(1).GrayAt(2, 0).Y)

	_, err = mnist.ReadSet(bytes.NewReader(images[:20]), bytes.NewReader(labels))
	fmt.Println(err)
	// Output:
	// 2 images of 3 x 2 labels [1 7]
	// image 1, pixel (2, 0): 255
	// mnist: malformed idx file: truncated data: sizes [2 2 3] need 12 bytes, file has 4 (images file)
}
