// Command immtrain trains few-step generative models with Inductive Moment Matching (IMM)
// on CPU or NVIDIA GPUs and writes samples as pictures, sounds and text.
package main

import (
	"os"

	"github.com/immkit/immkit/internal/cli"
)

func main() { os.Exit(cli.Execute(newRootCmd(&cli.Global{Stdout: os.Stdout, Stderr: os.Stderr}))) }
