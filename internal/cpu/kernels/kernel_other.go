//go:build !amd64 || purego

package kernels

// bestKernels returns the portable Go micro-kernels (no assembly kernel for this build).
func bestKernels() (*kernel[float32], *kernel[float64]) {
	return genericKernelF32(), genericKernelF64()
}
