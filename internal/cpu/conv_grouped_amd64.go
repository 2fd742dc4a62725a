//go:build amd64 && !purego

package cpu

// mulAddBlocks adds a ⊙ b to dst on the first multiple of 8 elements with the 8-lane loop (the
// same rounded multiply and add per element as mulAddRow's loop) and returns how many it did (0
// without AVX2).
func mulAddBlocks(dst, a, b []float32) int {
	n8 := len(dst) &^ 7
	if n8 == 0 || !vec8() {
		return 0
	}
	_, _ = a[n8-1], b[n8-1]
	mulAddVVAVX2(&dst[0], &a[0], &b[0], n8)
	return n8
}
