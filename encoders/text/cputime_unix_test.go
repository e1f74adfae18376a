//go:build unix

package text

import "syscall"

// processCPU returns the user+system CPU nanoseconds used by this process so far.
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
