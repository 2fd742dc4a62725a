//go:build goexperiment.simd && amd64

package cpu

import "simd/archsimd"

// sumRow32 is Σ x in float64, 8 elements at a time (two 4-lane float64 accumulators).
func sumRow32(x []float32) float64 {
	if !vec8() || len(x) < 8 {
		return sumRow32s(x)
	}
	var a0, a1 archsimd.Float64x4
	j := 0
	for ; j+8 <= len(x); j += 8 {
		a0 = a0.Add(archsimd.LoadFloat32x4Slice(x[j:]).ConvertToFloat64())
		a1 = a1.Add(archsimd.LoadFloat32x4Slice(x[j+4:]).ConvertToFloat64())
	}
	var t [4]float64
	a0.Add(a1).Store(&t)
	s := (t[0] + t[1]) + (t[2] + t[3])
	for ; j < len(x); j++ {
		s += float64(x[j])
	}
	return s
}

// maxRow32 is the largest element of x (-Inf when empty; NaN when any is NaN), 8 at a time.
func maxRow32(x []float32) float32 {
	if !vec8() || len(x) < 8 {
		return maxRow32s(x)
	}
	m := archsimd.LoadFloat32x8Slice(x)
	j := 8
	for ; j+8 <= len(x); j += 8 {
		m = maxLanes(m, archsimd.LoadFloat32x8Slice(x[j:]))
	}
	var t [8]float32
	m.Store(&t)
	return max(maxRow32s(t[:]), maxRow32s(x[j:]))
}

// minRow32 is the smallest element of x (+Inf when empty; NaN when any is NaN), 8 at a time.
func minRow32(x []float32) float32 {
	if !vec8() || len(x) < 8 {
		return minRow32s(x)
	}
	m := archsimd.LoadFloat32x8Slice(x)
	j := 8
	for ; j+8 <= len(x); j += 8 {
		m = minLanes(m, archsimd.LoadFloat32x8Slice(x[j:]))
	}
	var t [8]float32
	m.Store(&t)
	return min(minRow32s(t[:]), minRow32s(x[j:]))
}

// addRows32 adds the rows of x [len(x)/cols, cols] to acc [cols] in float64: four rows per pass
// over the accumulator, four columns per step.
func addRows32(acc []float64, x []float32, cols int) {
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
		for j := 0; j < c4; j += 4 {
			v0 := archsimd.LoadFloat32x4Slice(x0[j:]).ConvertToFloat64()
			v1 := archsimd.LoadFloat32x4Slice(x1[j:]).ConvertToFloat64()
			v2 := archsimd.LoadFloat32x4Slice(x2[j:]).ConvertToFloat64()
			v3 := archsimd.LoadFloat32x4Slice(x3[j:]).ConvertToFloat64()
			a := archsimd.LoadFloat64x4Slice(acc[j:])
			a.Add(v0.Add(v1).Add(v2.Add(v3))).StoreSlice(acc[j:])
		}
		for j := c4; j < cols; j++ {
			acc[j] += (float64(x0[j]) + float64(x1[j])) + (float64(x2[j]) + float64(x3[j]))
		}
	}
	for ; r < rows; r++ {
		xr := x[r*cols : (r+1)*cols]
		for j := 0; j < c4; j += 4 {
			a := archsimd.LoadFloat64x4Slice(acc[j:])
			a.Add(archsimd.LoadFloat32x4Slice(xr[j:]).ConvertToFloat64()).StoreSlice(acc[j:])
		}
		for j := c4; j < cols; j++ {
			acc[j] += float64(xr[j])
		}
	}
}
