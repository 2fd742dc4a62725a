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

// affineReLURows writes out = max(t, z[0]) on rows of c = len(a) features, with t = x·a + b, then
// + s (when s is set) or + (x2·a2 + b2) (when x2 is set), with the 16-lane loops; it reports false,
// writing nothing, without AVX-512.
func affineReLURows(out, x, a, b, s, x2, a2, b2, z []float32) bool {
	c := len(a)
	if !vec16() || c == 0 {
		return false
	}
	rows := len(x) / c
	if rows == 0 {
		return true
	}
	n := rows * c
	_, _, _ = out[n-1], b[c-1], z[0]
	c16, tail := c&^15, tailMask16(c, 16)
	switch {
	case s != nil:
		_ = s[n-1]
		affineAddReLUAVX512(&out[0], &x[0], &a[0], &b[0], &s[0], &z[0], c, rows, c16, tail)
	case x2 != nil:
		_, _, _ = x2[n-1], a2[c-1], b2[c-1]
		affine2ReLUAVX512(&out[0], &x[0], &a[0], &b[0], &x2[0], &a2[0], &b2[0], &z[0], c, rows, c16, tail)
	default:
		affineReLUAVX512(&out[0], &x[0], &a[0], &b[0], &z[0], c, rows, c16, tail)
	}
	return true
}

// fusedLoopsAvailable reports whether affineReLURows and reluGradElems have loops on the active
// kernel path.
func fusedLoopsAvailable() bool { return vec16() }

// reluGradElems writes out = y ≥ z[0] ? t : f[0], with t = g, or g + g2 when g2 is set, with the
// 16-lane loops; it reports false, writing nothing, without AVX-512.
func reluGradElems(out, y, g, g2, z, f []float32) bool {
	if !vec16() {
		return false
	}
	n := len(out)
	if n == 0 {
		return true
	}
	_, _, _, _ = y[n-1], g[n-1], z[0], f[0]
	if g2 != nil {
		_ = g2[n-1]
		reluGradAddAVX512(&out[0], &y[0], &g[0], &g2[0], &z[0], &f[0], n, tailMask16(n, 16))
	} else {
		reluGradAVX512(&out[0], &y[0], &g[0], &z[0], &f[0], n, tailMask16(n, 16))
	}
	return true
}

// reluGradMaskElems writes out = bit i of mask ? t : f[0] (bit i mod 32 of mask[i/32]), with
// t = g, or g + g2 when g2 is set: with the 16-lane loops where the kernel path has them.
func reluGradMaskElems(out []float32, mask []uint32, g, g2, f []float32) {
	n := len(out)
	if !vec16() || n == 0 {
		reluGradMaskElemsGo(out, mask, g, g2, f)
		return
	}
	_, _, _ = mask[(n-1)/32], g[n-1], f[0]
	if g2 != nil {
		_ = g2[n-1]
		reluGradAddMaskAVX512(&out[0], &mask[0], &g[0], &g2[0], &f[0], n, tailMask16(n, 16))
		return
	}
	reluGradMaskAVX512(&out[0], &mask[0], &g[0], &f[0], n, tailMask16(n, 16))
}
