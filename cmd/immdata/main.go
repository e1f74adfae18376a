// Command immdata ingests raw image, audio and text corpora into deduplicated Parquet,
// tokenises and encodes them, and writes verifiable training shards.
package main

import (
	"os"

	"github.com/immkit/immkit/internal/cli"
)

func main() { os.Exit(cli.Execute(newRootCmd(&cli.Global{Stdout: os.Stdout, Stderr: os.Stderr}))) }
