//go:build !amd64 || purego

package kernels

// wino4GradOutputVec has no vector form in this build: it does nothing and returns 0.
func wino4GradOutputVec(m []float32, xs, parts, ps int, dw []float32, ks, n int, scratch *[winoMaxXi * 16]float32) int {
	return 0
}
