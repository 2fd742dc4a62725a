//go:build !amd64 || purego

package cpu

import "github.com/gomlx/gomlx/backends"

// binKernel32 returns nil: this build has no 8-lane kernels (floatBinKernel's loops are used).
func binKernel32(op backends.OpType) func(out, a []float32, aS bool, b []float32, bS bool) {
	return nil
}
