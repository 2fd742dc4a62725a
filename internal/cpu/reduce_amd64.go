//go:build amd64 && !purego

package cpu

// sumRow32 is Σ x in float64: on the avx512 path 32 elements at a time (four 8-lane float64
// accumulators), on the avx2 path 8 at a time (two 4-lane float64 accumulators).
func sumRow32(x []float32) float64 {
	if vec16() && len(x) >= 16 {
		return sumBlocksAVX512(&x[0], len(x), tailMask16(len(x), 8))
	}
	if !vec8() || len(x) < 8 {
		return sumRow32s(x)
	}
	n8 := len(x) &^ 7
	s := sumBlocksAVX2(&x[0], n8)
	for _, v := range x[n8:] {
		s += float64(v)
	}
	return s
}

// maxRow32 is the largest element of x (-Inf when empty; NaN when any is NaN), 8 at a time.
func maxRow32(x []float32) float32 {
	if vec16() && len(x) >= 16 {
		var t [16]float32
		maxBlocksAVX512(&x[0], len(x), &t[0], tailMask16(len(x), 16))
		return maxRow32s(t[:])
	}
	if !vec8() || len(x) < 8 {
		return maxRow32s(x)
	}
	n8 := len(x) &^ 7
	var t [8]float32
	maxBlocksAVX2(&x[0], n8, &t[0])
	return max(maxRow32s(t[:]), maxRow32s(x[n8:]))
}

// minRow32 is the smallest element of x (+Inf when empty; NaN when any is NaN), 8 at a time.
func minRow32(x []float32) float32 {
	if vec16() && len(x) >= 16 {
		var t [16]float32
		minBlocksAVX512(&x[0], len(x), &t[0], tailMask16(len(x), 16))
		return minRow32s(t[:])
	}
	if !vec8() || len(x) < 8 {
		return minRow32s(x)
	}
	n8 := len(x) &^ 7
	var t [8]float32
	minBlocksAVX2(&x[0], n8, &t[0])
	return min(minRow32s(t[:]), minRow32s(x[n8:]))
}

// addRows32 adds the rows of x [len(x)/cols, cols] to acc [cols] in float64: four rows per pass
// over the accumulator, four columns per step.
func addRows32(acc []float64, x []float32, cols int) {
	if vec16() && cols >= 8 {
		addRows32AVX512(acc, x, cols)
		return
	}
	if !vec8() || cols < 4 {
		addRows(acc, x, cols)
		return
	}
	acc = acc[:cols]
	rows := len(x) / cols
	c4 := cols &^ 3
	r := 0
	for ; r+4 <= rows; r += 4 {
		x0 := x[r*cols : (r+1)*cols]
		x1 := x[(r+1)*cols : (r+2)*cols]
		x2 := x[(r+2)*cols : (r+3)*cols]
		x3 := x[(r+3)*cols : (r+4)*cols]
		addRows4AVX2(&acc[0], &x0[0], cols, c4)
		for j := c4; j < cols; j++ {
			acc[j] += (float64(x0[j]) + float64(x1[j])) + (float64(x2[j]) + float64(x3[j]))
		}
	}
	for ; r < rows; r++ {
		xr := x[r*cols : (r+1)*cols]
		addRow1AVX2(&acc[0], &xr[0], c4)
		for j := c4; j < cols; j++ {
			acc[j] += float64(xr[j])
		}
	}
}

// addRows32AVX512 is addRows32 on the avx512 path: the same sums, 8 columns per step, the last
// partial step masked.
func addRows32AVX512(acc []float64, x []float32, cols int) {
	acc = acc[:cols]
	rows := len(x) / cols
	tail := tailMask16(cols, 8)
	r := 0
	for ; r+4 <= rows; r += 4 {
		x0 := x[r*cols : (r+4)*cols]
		addRows4AVX512(&acc[0], &x0[0], cols, tail)
	}
	for ; r < rows; r++ {
		xr := x[r*cols : (r+1)*cols]
		addRows1AVX512(&acc[0], &xr[0], cols, tail)
	}
}
