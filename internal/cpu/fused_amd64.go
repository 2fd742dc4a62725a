//go:build amd64 && !purego

package cpu

import "github.com/gomlx/gomlx/backends"

// compareVSBlocks writes the mask of fusedCompare for a ≥ t[0] (GreaterOrEqual) or a > t[0]
// (GreaterThan) on the first multiple of 8 elements of d with the 8-lane loops, and returns how
// many it did (0 for other ops or without AVX2).
func compareVSBlocks(op backends.OpType, d, a, t []float32) int {
	n8 := len(d) &^ 7
	if n8 == 0 || !vec8() {
		return 0
	}
	_, _ = a[n8-1], t[0]
	switch op {
	case backends.OpTypeGreaterOrEqual:
		cmpGEVSAVX2(&d[0], &a[0], &t[0], n8)
	case backends.OpTypeGreaterThan:
		cmpGTVSAVX2(&d[0], &a[0], &t[0], n8)
	default:
		return 0
	}
	return n8
}

// whereBlocks writes c ? t : f (f[0] when fS) of fusedWhere on the first multiple of 8 elements
// of d with the 8-lane loops, and returns how many it did (0 without AVX2).
func whereBlocks(d, c, t, f []float32, fS bool) int {
	n8 := len(d) &^ 7
	if n8 == 0 || !vec8() {
		return 0
	}
	_, _ = c[n8-1], t[n8-1]
	if fS {
		whereVSAVX2(&d[0], &c[0], &t[0], &f[0], n8)
	} else {
		_ = f[n8-1]
		whereVVAVX2(&d[0], &c[0], &t[0], &f[0], n8)
	}
	return n8
}
