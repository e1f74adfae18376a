// Package run holds what the immtrain commands share about a training run directory:
// the metrics log (metrics.jsonl, one Record per line) and its loss plot (loss.png),
// atomic small-file writes, the progress display (an mpb bar with loss and samples/s on a
// terminal, plain log lines otherwise), and the checkpoint directory
// (ckpt/step-NNNNNN.safetensors with their .sha256 files and a "latest" pointer) with
// the fallback to the newest good checkpoint on resume.
package run
