//go:build !unix

package kernels

import "math"

// processCPUSeconds is not measured on this system.
func processCPUSeconds() float64 { return math.NaN() }
