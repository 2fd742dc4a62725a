//go:build !amd64 || purego

package cpu

// exp32v writes e^x of every src element to dst (exp32s: this build has no 8-lane kernels).
func exp32v(dst, src []float32) { exp32s(dst, src) }

// erf32v writes erf x of every src element to dst (erf32s: this build has no 8-lane kernels).
func erf32v(dst, src []float32) { erf32s(dst, src) }
