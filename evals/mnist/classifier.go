package mnist

import (
	"errors"
	"fmt"
	"image"
	"image/draw"
	"math"
	"strconv"
	"strings"

	"github.com/immkit/immkit/internal/safetensors"
	xdraw "golang.org/x/image/draw"
)

// Size is the side of the classifier's input images, that of MNIST.
const Size = 28

// Classes is the number of digits.
const Classes = 10

// FormatName is the __metadata__ "format" value of a saved Classifier.
const FormatName = "immkit-mnist-mlp-v1"

// ErrClassifier is wrapped by errors about a malformed classifier file.
var ErrClassifier = errors.New("mnist: malformed classifier")

// Classifier is a multilayer perceptron over 28x28 grey images: the input is the image's
// pixels row-major, each divided by 255 (0 background, 1 full ink); hidden layers are
// affine maps followed by ReLU; the last layer gives 10 logits, one per digit.
type Classifier struct {
	// Sizes are the layer widths: Size*Size inputs, the hidden widths, Classes logits.
	Sizes []int
	// Weights[l] is layer l's Sizes[l+1] x Sizes[l] matrix, row-major as PyTorch's
	// nn.Linear stores it: Weights[l][o*Sizes[l]+i] weighs input i of output o.
	Weights [][]float32
	// Biases[l] holds the Sizes[l+1] biases of layer l.
	Biases [][]float32
	// TestAccuracy is the accuracy measured on the MNIST test set after training, 0 when
	// unknown; it is saved in the file's metadata.
	TestAccuracy float64
}

func (c *Classifier) net() *mlp[float32] {
	return &mlp[float32]{sizes: c.Sizes, w: c.Weights, b: c.Biases}
}

// ToInput converts any image to the classifier's input: a 28x28 grey image like MNIST's.
// Colour is converted to luma (color.GrayModel; transparent areas count as black), the
// picture is padded with black to a square around its centre, then resized to 28x28 with
// a Catmull-Rom filter (whose support widens when shrinking, so large images are averaged,
// not aliased). A 28x28 grey image is returned unchanged in value. MNIST draws light digits
// on a dark background; images are not inverted.
func ToInput(img image.Image) *image.Gray {
	out := image.NewGray(image.Rect(0, 0, Size, Size))
	b := img.Bounds()
	if b.Empty() {
		return out
	}
	w, h := b.Dx(), b.Dy()
	s := max(w, h)
	sq := image.NewGray(image.Rect(0, 0, s, s))
	off := image.Pt((s-w)/2, (s-h)/2)
	draw.Draw(sq, image.Rectangle{Min: off, Max: off.Add(b.Size())}, img, b.Min, draw.Src)
	if s == Size {
		return sq
	}
	xdraw.CatmullRom.Scale(out, out.Bounds(), sq, sq.Bounds(), xdraw.Src, nil)
	return out
}

// input writes the classifier input of a 28x28 grey image into x (Size*Size values).
func input(g *image.Gray, x []float32) {
	for y := range Size {
		row := g.Pix[(y-g.Rect.Min.Y)*g.Stride:]
		for xx := range Size {
			x[y*Size+xx] = float32(row[xx]) / 255
		}
	}
}

// Logits returns the 10 logits for img (converted with ToInput).
func (c *Classifier) Logits(img image.Image) []float32 {
	n := c.net()
	ac := n.newActs(1)
	input(ToInput(img), ac.a[0])
	n.forward(ac)
	return ac.a[len(ac.a)-1]
}

// Probabilities returns the softmax of Logits.
func (c *Classifier) Probabilities(img image.Image) []float64 {
	z := c.Logits(img)
	p := make([]float64, len(z))
	mx := math.Inf(-1)
	for _, v := range z {
		mx = math.Max(mx, float64(v))
	}
	var sum float64
	for i, v := range z {
		p[i] = math.Exp(float64(v) - mx)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// Predict returns the digit the classifier sees in img, of any size and colour model
// (converted with ToInput).
func (c *Classifier) Predict(img image.Image) int { return argmax(c.Logits(img)) }

func argmax(z []float32) int {
	best := 0
	for i, v := range z {
		if v > z[best] {
			best = i
		}
	}
	return best
}

// PredictSet returns the predicted digit of every image of s (which must be 28x28).
func (c *Classifier) PredictSet(s *Set) ([]int, error) {
	if s.Rows != Size || s.Cols != Size {
		return nil, fmt.Errorf("mnist: classifier needs %dx%d images, set has %dx%d", Size, Size, s.Cols, s.Rows)
	}
	n := c.net()
	out := make([]int, 0, s.Len())
	const batch = 1000
	for lo := 0; lo < s.Len(); lo += batch {
		hi := min(lo+batch, s.Len())
		ac := n.newActs(hi - lo)
		for i := lo; i < hi; i++ {
			input(s.Image(i), ac.a[0][(i-lo)*Size*Size:])
		}
		n.forward(ac)
		logits := ac.a[len(ac.a)-1]
		for r := range hi - lo {
			out = append(out, argmax(logits[r*Classes:(r+1)*Classes]))
		}
	}
	return out, nil
}

// Accuracy is the fraction of s that the classifier labels correctly.
func (c *Classifier) Accuracy(s *Set) (float64, error) {
	pred, err := c.PredictSet(s)
	if err != nil {
		return 0, err
	}
	if len(pred) == 0 {
		return 0, errors.New("mnist: accuracy of an empty set")
	}
	ok := 0
	for i, p := range pred {
		if p == int(s.Labels[i]) {
			ok++
		}
	}
	return float64(ok) / float64(len(pred)), nil
}

// Save writes the classifier as safetensors: tensors fc<l>.weight (F32, [out, in]) and
// fc<l>.bias (F32, [out]) for each layer l, loadable into a PyTorch stack of nn.Linear
// layers with ReLU between them; __metadata__ holds format (FormatName), sizes
// ("784,512,10"), input (how images become inputs) and test_accuracy.
func (c *Classifier) Save(path string) error {
	if err := c.check(); err != nil {
		return err
	}
	t := map[string]safetensors.Tensor{}
	for l := range c.Weights {
		t[fmt.Sprintf("fc%d.weight", l)] = safetensors.FromFloat32(c.Weights[l], c.Sizes[l+1], c.Sizes[l])
		t[fmt.Sprintf("fc%d.bias", l)] = safetensors.FromFloat32(c.Biases[l], c.Sizes[l+1])
	}
	sizes := make([]string, len(c.Sizes))
	for i, s := range c.Sizes {
		sizes[i] = strconv.Itoa(s)
	}
	meta := map[string]string{
		"format":        FormatName,
		"sizes":         strings.Join(sizes, ","),
		"input":         "28x28 grey, row-major, pixel/255 (white digit on black); ReLU between layers; logits for digits 0..9",
		"test_accuracy": strconv.FormatFloat(c.TestAccuracy, 'f', 6, 64),
	}
	if _, err := safetensors.WriteFile(path, t, meta); err != nil {
		return fmt.Errorf("mnist: save classifier: %w", err)
	}
	return nil
}

// check validates the shapes of c.
func (c *Classifier) check() error {
	if len(c.Sizes) < 2 || c.Sizes[0] != Size*Size || c.Sizes[len(c.Sizes)-1] != Classes {
		return fmt.Errorf("%w: layer sizes %v, want %d, hidden widths..., %d", ErrClassifier, c.Sizes, Size*Size, Classes)
	}
	if len(c.Weights) != len(c.Sizes)-1 || len(c.Biases) != len(c.Sizes)-1 {
		return fmt.Errorf("%w: %d weights and %d biases for %d layers", ErrClassifier, len(c.Weights), len(c.Biases), len(c.Sizes)-1)
	}
	for l := range c.Weights {
		if c.Sizes[l+1] <= 0 {
			return fmt.Errorf("%w: layer %d has width %d", ErrClassifier, l, c.Sizes[l+1])
		}
		if len(c.Weights[l]) != c.Sizes[l+1]*c.Sizes[l] || len(c.Biases[l]) != c.Sizes[l+1] {
			return fmt.Errorf("%w: layer %d has %d weights and %d biases for %d x %d", ErrClassifier, l, len(c.Weights[l]), len(c.Biases[l]), c.Sizes[l+1], c.Sizes[l])
		}
	}
	return nil
}

// LoadClassifier reads a classifier written by Save, checking its format and shapes.
func LoadClassifier(path string) (*Classifier, error) {
	f, _, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mnist: load classifier: %w", err)
	}
	if got := f.Metadata["format"]; got != FormatName {
		return nil, fmt.Errorf("%w: %s has format %q, want %q", ErrClassifier, path, got, FormatName)
	}
	c := &Classifier{}
	if s := f.Metadata["test_accuracy"]; s != "" {
		if c.TestAccuracy, err = strconv.ParseFloat(s, 64); err != nil {
			return nil, fmt.Errorf("%w: %s: test_accuracy %q", ErrClassifier, path, s)
		}
	}
	for l := 0; ; l++ {
		w, okw := f.Tensors[fmt.Sprintf("fc%d.weight", l)]
		b, okb := f.Tensors[fmt.Sprintf("fc%d.bias", l)]
		if !okw && !okb {
			break
		}
		if !okw || !okb || len(w.Shape) != 2 || len(b.Shape) != 1 || b.Shape[0] != w.Shape[0] {
			return nil, fmt.Errorf("%w: %s: layer %d needs fc%d.weight [out, in] and fc%d.bias [out]", ErrClassifier, path, l, l, l)
		}
		if l == 0 {
			c.Sizes = append(c.Sizes, w.Shape[1])
		} else if w.Shape[1] != c.Sizes[l] {
			return nil, fmt.Errorf("%w: %s: fc%d.weight has %d inputs, previous layer %d outputs", ErrClassifier, path, l, w.Shape[1], c.Sizes[l])
		}
		c.Sizes = append(c.Sizes, w.Shape[0])
		wv, err := w.Float32s()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: fc%d.weight: %v", ErrClassifier, path, l, err)
		}
		bv, err := b.Float32s()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: fc%d.bias: %v", ErrClassifier, path, l, err)
		}
		c.Weights = append(c.Weights, wv)
		c.Biases = append(c.Biases, bv)
	}
	if 2*len(c.Weights) != len(f.Tensors) {
		return nil, fmt.Errorf("%w: %s holds %d tensors besides fc0..fc%d", ErrClassifier, path, len(f.Tensors)-2*len(c.Weights), len(c.Weights)-1)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return c, nil
}
