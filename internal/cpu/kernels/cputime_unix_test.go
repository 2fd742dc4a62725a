//go:build unix

package kernels

import (
	"math"
	"syscall"
)

// processCPUSeconds is the process's user+system CPU time so far (all threads).
func processCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
