//go:build !unix

// Package flock takes exclusive advisory locks on files, so that workers sharing an
// output directory serialise the steps that must run once.
package flock

// Lock is a no-op where flock is unavailable: workers sharing an output directory are then
// not serialised, and their callers say what that costs.
func Lock(string) (func(), error) { return func() {}, nil }
