package pipeline

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/pflag"
)

// Partition says which share of the inputs this process handles when a job is split over
// NumWorkers processes (Kubernetes Indexed Job, Slurm job array, or by hand): the inputs
// whose path hashes to WorkerIndex. Every input is owned by exactly one worker, and the
// assignment depends only on the path string and NumWorkers.
type Partition struct {
	NumWorkers  int // total processes, >= 1
	WorkerIndex int // this process, 0 <= WorkerIndex < NumWorkers

	envErr error // a malformed environment default, reported by Validate
}

// Environment variables read by PartitionFromEnv, in order of precedence.
const (
	EnvK8sIndex   = "JOB_COMPLETION_INDEX"   // Kubernetes Indexed Job: this pod's index
	EnvK8sCount   = "JOB_COMPLETION_COUNT"   // optional; else pass --num-workers (= .spec.completions)
	EnvSlurmID    = "SLURM_ARRAY_TASK_ID"    // Slurm job array: this task's id
	EnvSlurmCount = "SLURM_ARRAY_TASK_COUNT" // number of tasks in the array
	EnvSlurmMin   = "SLURM_ARRAY_TASK_MIN"   // lowest id (index = (id - min) / step)
	EnvSlurmStep  = "SLURM_ARRAY_TASK_STEP"  // id step, default 1
)

// PartitionFromEnv returns the partition the environment describes, read with getenv
// (os.Getenv when nil):
//   - Kubernetes Indexed Job: WorkerIndex = $JOB_COMPLETION_INDEX, NumWorkers =
//     $JOB_COMPLETION_COUNT when set (Kubernetes does not set it; export it from the Job
//     spec or pass --num-workers);
//   - Slurm job array: WorkerIndex = ($SLURM_ARRAY_TASK_ID - $SLURM_ARRAY_TASK_MIN) /
//     $SLURM_ARRAY_TASK_STEP (min 0 and step 1 when unset), NumWorkers = $SLURM_ARRAY_TASK_COUNT;
//   - otherwise {NumWorkers: 1, WorkerIndex: 0}.
//
// The Kubernetes variables win when both are set. A malformed value is an error naming it.
// The result is not validated against itself: call Validate after flags are parsed.
func PartitionFromEnv(getenv func(string) string) (Partition, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	part := Partition{NumWorkers: 1}
	num := func(name string, def int) (int, error) {
		v := getenv(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return def, fmt.Errorf("pipeline: environment %s=%q: not an integer", name, v)
		}
		return n, nil
	}
	var err error
	switch {
	case getenv(EnvK8sIndex) != "":
		if part.WorkerIndex, err = num(EnvK8sIndex, 0); err != nil {
			return part, err
		}
		if part.NumWorkers, err = num(EnvK8sCount, 1); err != nil {
			return part, err
		}
	case getenv(EnvSlurmID) != "":
		id, err := num(EnvSlurmID, 0)
		if err != nil {
			return part, err
		}
		lo, err := num(EnvSlurmMin, 0)
		if err != nil {
			return part, err
		}
		step, err := num(EnvSlurmStep, 1)
		if err != nil {
			return part, err
		}
		if step < 1 {
			return part, fmt.Errorf("pipeline: environment %s=%d: must be >= 1", EnvSlurmStep, step)
		}
		if id < lo || (id-lo)%step != 0 {
			return part, fmt.Errorf("pipeline: environment %s=%d is not in the array %s=%d, step %d", EnvSlurmID, id, EnvSlurmMin, lo, step)
		}
		part.WorkerIndex = (id - lo) / step
		if part.NumWorkers, err = num(EnvSlurmCount, 1); err != nil {
			return part, err
		}
	}
	return part, nil
}

// AddFlags registers --num-workers and --worker-index on fs (a cobra command's Flags()),
// with defaults from PartitionFromEnv(os.Getenv). Call Validate after parsing.
func (p *Partition) AddFlags(fs *pflag.FlagSet) {
	def, err := PartitionFromEnv(nil)
	p.envErr = err
	fs.IntVar(&p.NumWorkers, "num-workers", def.NumWorkers,
		"split the inputs over this many processes by a stable hash of their path (default from $"+EnvK8sCount+" or $"+EnvSlurmCount+")")
	fs.IntVar(&p.WorkerIndex, "worker-index", def.WorkerIndex,
		"which of the --num-workers processes this is, from 0 (default from $"+EnvK8sIndex+" or $"+EnvSlurmID+")")
}

// ErrPartition is wrapped by every error of Partition.Validate.
var ErrPartition = errors.New("pipeline: bad partition")

// Validate checks 1 <= NumWorkers and 0 <= WorkerIndex < NumWorkers, and reports a
// malformed environment default seen by AddFlags. Commands turn its error into a usage
// error (cli.Usagef("%v", err)).
func (p Partition) Validate() error {
	if p.envErr != nil {
		return fmt.Errorf("%w: %w", ErrPartition, p.envErr)
	}
	if p.NumWorkers < 1 {
		return fmt.Errorf("%w: --num-workers must be >= 1, got %d", ErrPartition, p.NumWorkers)
	}
	if p.WorkerIndex < 0 || p.WorkerIndex >= p.NumWorkers {
		return fmt.Errorf("%w: --worker-index must be in [0, %d) for --num-workers %d, got %d (set --num-workers, or %s for a Kubernetes Indexed Job)",
			ErrPartition, p.NumWorkers, p.NumWorkers, p.WorkerIndex, EnvK8sCount)
	}
	return nil
}

// Owns reports whether this worker handles the input at path: Owner(path, NumWorkers) ==
// WorkerIndex. A Partition with NumWorkers <= 1 owns everything.
func (p Partition) Owns(path string) bool {
	if p.NumWorkers <= 1 {
		return true
	}
	return Owner(path, p.NumWorkers) == p.WorkerIndex
}

// Owner returns the worker in [0, n) that owns path: the 64-bit FNV-1a hash of the path's
// bytes, modulo n. This is a fixed function of the bytes of path and of n, the same on
// every platform, Go version and immkit version (tests pin it against hash/fnv); changing it
// is a breaking change to the scale-out contract. Pass the path as the inputs are named
// relative to their root, with forward slashes, so that every machine computes the same
// owner. n <= 1 gives 0.
func Owner(path string, n int) int {
	if n <= 1 {
		return 0
	}
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for i := 0; i < len(path); i++ {
		h ^= uint64(path[i])
		h *= prime64
	}
	return int(h % uint64(n))
}
