//go:build unix

// Package cputime measures this process's CPU time, so benchmarks can report
// cpu-ns/op: on a shared machine other processes disturb it far less than
// wall-clock ns/op (it includes GC and background goroutines).
package cputime

import (
	"syscall"
	"testing"
	"time"
)

// Process is this process's user+system CPU time so far.
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Report adds cpu-ns/op, the CPU time since start divided by b.N.
func Report(b *testing.B, start time.Duration) {
	b.Helper()
	if b.N > 0 {
		b.ReportMetric(float64(Process()-start)/float64(b.N), "cpu-ns/op")
	}
}
