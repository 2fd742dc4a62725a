//go:build goexperiment.simd && amd64

package cpu

import (
	"simd/archsimd"

	"github.com/gomlx/gomlx/backends"
)

// binKernel32 returns the 8-lane float32 segment kernel of a binary arithmetic op (the contract
// of floatBinKernel: an operand flagged scalar is a 1-element slice broadcast over out), or nil
// when the op has none or the CPU lacks AVX2/FMA. Results are bit for bit those of the scalar
// loops: each lane does the same single IEEE operation, and Max/Min follow Go's max/min (NaN
// wins, +0 above -0).
func binKernel32(op backends.OpType) func(out, a []float32, aS bool, b []float32, bS bool) {
	if !vec8() {
		return nil
	}
	switch op {
	case backends.OpTypeAdd:
		return add32v
	case backends.OpTypeSub:
		return sub32v
	case backends.OpTypeMul:
		return mul32v
	case backends.OpTypeDiv:
		return div32v
	case backends.OpTypeMax:
		return max32v
	case backends.OpTypeMin:
		return min32v
	}
	return nil
}

// add32v writes a + b (8 lanes at a time; the layouts of binKernel32).
func add32v(out, a []float32, aS bool, b []float32, bS bool) {
	n := len(out)
	i := 0
	switch {
	case !aS && !bS:
		a, b = a[:n], b[:n]
		for ; i+16 <= n; i += 16 {
			x0, y0 := archsimd.LoadFloat32x8Slice(a[i:]), archsimd.LoadFloat32x8Slice(b[i:])
			x1, y1 := archsimd.LoadFloat32x8Slice(a[i+8:]), archsimd.LoadFloat32x8Slice(b[i+8:])
			x0.Add(y0).StoreSlice(out[i:])
			x1.Add(y1).StoreSlice(out[i+8:])
		}
		for ; i+8 <= n; i += 8 {
			x0, y0 := archsimd.LoadFloat32x8Slice(a[i:]), archsimd.LoadFloat32x8Slice(b[i:])
			x0.Add(y0).StoreSlice(out[i:])
		}
	case !aS:
		a = a[:n]
		y0 := archsimd.BroadcastFloat32x8(b[0])
		for ; i+16 <= n; i += 16 {
			x0, x1 := archsimd.LoadFloat32x8Slice(a[i:]), archsimd.LoadFloat32x8Slice(a[i+8:])
			x0.Add(y0).StoreSlice(out[i:])
			x1.Add(y0).StoreSlice(out[i+8:])
		}
		for ; i+8 <= n; i += 8 {
			x0 := archsimd.LoadFloat32x8Slice(a[i:])
			x0.Add(y0).StoreSlice(out[i:])
		}
	case !bS:
		b = b[:n]
		x0 := archsimd.BroadcastFloat32x8(a[0])
		for ; i+16 <= n; i += 16 {
			y0, y1 := archsimd.LoadFloat32x8Slice(b[i:]), archsimd.LoadFloat32x8Slice(b[i+8:])
			x0.Add(y0).StoreSlice(out[i:])
			x0.Add(y1).StoreSlice(out[i+8:])
		}
		for ; i+8 <= n; i += 8 {
			y0 := archsimd.LoadFloat32x8Slice(b[i:])
			x0.Add(y0).StoreSlice(out[i:])
		}
	}
	for ; i < n; i++ {
		x, y := at(a, aS, i), at(b, bS, i)
		out[i] = x + y
	}
}

// sub32v writes a - b (8 lanes at a time; the layouts of binKernel32).
func sub32v(out, a []float32, aS bool, b []float32, bS bool) {
	n := len(out)
	i := 0
	switch {
	case !aS && !bS:
		a, b = a[:n], b[:n]
		for ; i+16 <= n; i += 16 {
			x0, y0 := archsimd.LoadFloat32x8Slice(a[i:]), archsimd.LoadFloat32x8Slice(b[i:])
			x1, y1 := archsimd.LoadFloat32x8Slice(a[i+8:]), archsimd.LoadFloat32x8Slice(b[i+8:])
			x0.Sub(y0).StoreSlice(out[i:])
			x1.Sub(y1).StoreSlice(out[i+8:])
		}
		for ; i+8 <= n; i += 8 {
			x0, y0 := archsimd.LoadFloat32x8Slice(a[i:]), archsimd.LoadFloat32x8Slice(b[i:])
			x0.Sub(y0).StoreSlice(out[i:])
		}
	case !aS:
		a = a[:n]
		y0 := archsimd.BroadcastFloat32x8(b[0])
		for ; i+16 <= n; i += 16 {
			x0, x1 := archsimd.LoadFloat32x8Slice(a[i:]), archsimd.LoadFloat32x8Slice(a[i+8:])
			x0.Sub(y0).StoreSlice(out[i:])
			x1.Sub(y0).StoreSlice(out[i+8:])
		}
		for ; i+8 <= n; i += 8 {
			x0 := archsimd.LoadFloat32x8Slice(a[i:])
			x0.Sub(y0).StoreSlice(out[i:])
		}
	case !bS:
		b = b[:n]
		x0 := archsimd.BroadcastFloat32x8(a[0])
		for ; i+16 <= n; i += 16 {
			y0, y1 := archsimd.LoadFloat32x8Slice(b[i:]), archsimd.LoadFloat32x8Slice(b[i+8:])
			x0.Sub(y0).StoreSlice(out[i:])
			x0.Sub(y1).StoreSlice(out[i+8:])
		}
		for ; i+8 <= n; i += 8 {
			y0 := archsimd.LoadFloat32x8Slice(b[i:])
			x0.Sub(y0).StoreSlice(out[i:])
		}
	}
	for ; i < n; i++ {
		x, y := at(a, aS, i), at(b, bS, i)
		out[i] = x - y
	}
}

// mul32v writes a * b (8 lanes at a time; the layouts of binKernel32).
func mul32v(out, a []float32, aS bool, b []float32, bS bool) {
	n := len(out)
	i := 0
	switch {
	case !aS && !bS:
		a, b = a[:n], b[:n]
		for ; i+16 <= n; i += 16 {
			x0, y0 := archsimd.LoadFloat32x8Slice(a[i:]), archsimd.LoadFloat32x8Slice(b[i:])
			x1, y1 := archsimd.LoadFloat32x8Slice(a[i+8:]), archsimd.LoadFloat32x8Slice(b[i+8:])
			x0.Mul(y0).StoreSlice(out[i:])
			x1.Mul(y1).StoreSlice(out[i+8:])
		}
		for ; i+8 <= n; i += 8 {
			x0, y0 := archsimd.LoadFloat32x8Slice(a[i:]), archsimd.LoadFloat32x8Slice(b[i:])
			x0.Mul(y0).StoreSlice(out[i:])
		}
	case !aS:
		a = a[:n]
		y0 := archsimd.BroadcastFloat32x8(b[0])
		for ; i+16 <= n; i += 16 {
			x0, x1 := archsimd.LoadFloat32x8Slice(a[i:]), archsimd.LoadFloat32x8Slice(a[i+8:])
			x0.Mul(y0).StoreSlice(out[i:])
			x1.Mul(y0).StoreSlice(out[i+8:])
		}
		for ; i+8 <= n; i += 8 {
			x0 := archsimd.LoadFloat32x8Slice(a[i:])
			x0.Mul(y0).StoreSlice(out[i:])
		}
	case !bS:
		b = b[:n]
		x0 := archsimd.BroadcastFloat32x8(a[0])
		for ; i+16 <= n; i += 16 {
			y0, y1 := archsimd.LoadFloat32x8Slice(b[i:]), archsimd.LoadFloat32x8Slice(b[i+8:])
			x0.Mul(y0).StoreSlice(out[i:])
			x0.Mul(y1).StoreSlice(out[i+8:])
		}
		for ; i+8 <= n; i += 8 {
			y0 := archsimd.LoadFloat32x8Slice(b[i:])
			x0.Mul(y0).StoreSlice(out[i:])
		}
	}
	for ; i < n; i++ {
		x, y := at(a, aS, i), at(b, bS, i)
		out[i] = x * y
	}
}

// div32v writes a / b (8 lanes at a time; the layouts of binKernel32).
func div32v(out, a []float32, aS bool, b []float32, bS bool) {
	n := len(out)
	i := 0
	switch {
	case !aS && !bS:
		a, b = a[:n], b[:n]
		for ; i+16 <= n; i += 16 {
			x0, y0 := archsimd.LoadFloat32x8Slice(a[i:]), archsimd.LoadFloat32x8Slice(b[i:])
			x1, y1 := archsimd.LoadFloat32x8Slice(a[i+8:]), archsimd.LoadFloat32x8Slice(b[i+8:])
			x0.Div(y0).StoreSlice(out[i:])
			x1.Div(y1).StoreSlice(out[i+8:])
		}
		for ; i+8 <= n; i += 8 {
			x0, y0 := archsimd.LoadFloat32x8Slice(a[i:]), archsimd.LoadFloat32x8Slice(b[i:])
			x0.Div(y0).StoreSlice(out[i:])
		}
	case !aS:
		a = a[:n]
		y0 := archsimd.BroadcastFloat32x8(b[0])
		for ; i+16 <= n; i += 16 {
			x0, x1 := archsimd.LoadFloat32x8Slice(a[i:]), archsimd.LoadFloat32x8Slice(a[i+8:])
			x0.Div(y0).StoreSlice(out[i:])
			x1.Div(y0).StoreSlice(out[i+8:])
		}
		for ; i+8 <= n; i += 8 {
			x0 := archsimd.LoadFloat32x8Slice(a[i:])
			x0.Div(y0).StoreSlice(out[i:])
		}
	case !bS:
		b = b[:n]
		x0 := archsimd.BroadcastFloat32x8(a[0])
		for ; i+16 <= n; i += 16 {
			y0, y1 := archsimd.LoadFloat32x8Slice(b[i:]), archsimd.LoadFloat32x8Slice(b[i+8:])
			x0.Div(y0).StoreSlice(out[i:])
			x0.Div(y1).StoreSlice(out[i+8:])
		}
		for ; i+8 <= n; i += 8 {
			y0 := archsimd.LoadFloat32x8Slice(b[i:])
			x0.Div(y0).StoreSlice(out[i:])
		}
	}
	for ; i < n; i++ {
		x, y := at(a, aS, i), at(b, bS, i)
		out[i] = x / y
	}
}

// max32v writes max(a, b) (8 lanes at a time; the layouts of binKernel32).
func max32v(out, a []float32, aS bool, b []float32, bS bool) {
	n := len(out)
	i := 0
	switch {
	case !aS && !bS:
		a, b = a[:n], b[:n]
		for ; i+16 <= n; i += 16 {
			x0, y0 := archsimd.LoadFloat32x8Slice(a[i:]), archsimd.LoadFloat32x8Slice(b[i:])
			x1, y1 := archsimd.LoadFloat32x8Slice(a[i+8:]), archsimd.LoadFloat32x8Slice(b[i+8:])
			maxLanes(x0, y0).StoreSlice(out[i:])
			maxLanes(x1, y1).StoreSlice(out[i+8:])
		}
		for ; i+8 <= n; i += 8 {
			x0, y0 := archsimd.LoadFloat32x8Slice(a[i:]), archsimd.LoadFloat32x8Slice(b[i:])
			maxLanes(x0, y0).StoreSlice(out[i:])
		}
	case !aS:
		a = a[:n]
		y0 := archsimd.BroadcastFloat32x8(b[0])
		for ; i+16 <= n; i += 16 {
			x0, x1 := archsimd.LoadFloat32x8Slice(a[i:]), archsimd.LoadFloat32x8Slice(a[i+8:])
			maxLanes(x0, y0).StoreSlice(out[i:])
			maxLanes(x1, y0).StoreSlice(out[i+8:])
		}
		for ; i+8 <= n; i += 8 {
			x0 := archsimd.LoadFloat32x8Slice(a[i:])
			maxLanes(x0, y0).StoreSlice(out[i:])
		}
	case !bS:
		b = b[:n]
		x0 := archsimd.BroadcastFloat32x8(a[0])
		for ; i+16 <= n; i += 16 {
			y0, y1 := archsimd.LoadFloat32x8Slice(b[i:]), archsimd.LoadFloat32x8Slice(b[i+8:])
			maxLanes(x0, y0).StoreSlice(out[i:])
			maxLanes(x0, y1).StoreSlice(out[i+8:])
		}
		for ; i+8 <= n; i += 8 {
			y0 := archsimd.LoadFloat32x8Slice(b[i:])
			maxLanes(x0, y0).StoreSlice(out[i:])
		}
	}
	for ; i < n; i++ {
		x, y := at(a, aS, i), at(b, bS, i)
		out[i] = max(x, y)
	}
}

// min32v writes min(a, b) (8 lanes at a time; the layouts of binKernel32).
func min32v(out, a []float32, aS bool, b []float32, bS bool) {
	n := len(out)
	i := 0
	switch {
	case !aS && !bS:
		a, b = a[:n], b[:n]
		for ; i+16 <= n; i += 16 {
			x0, y0 := archsimd.LoadFloat32x8Slice(a[i:]), archsimd.LoadFloat32x8Slice(b[i:])
			x1, y1 := archsimd.LoadFloat32x8Slice(a[i+8:]), archsimd.LoadFloat32x8Slice(b[i+8:])
			minLanes(x0, y0).StoreSlice(out[i:])
			minLanes(x1, y1).StoreSlice(out[i+8:])
		}
		for ; i+8 <= n; i += 8 {
			x0, y0 := archsimd.LoadFloat32x8Slice(a[i:]), archsimd.LoadFloat32x8Slice(b[i:])
			minLanes(x0, y0).StoreSlice(out[i:])
		}
	case !aS:
		a = a[:n]
		y0 := archsimd.BroadcastFloat32x8(b[0])
		for ; i+16 <= n; i += 16 {
			x0, x1 := archsimd.LoadFloat32x8Slice(a[i:]), archsimd.LoadFloat32x8Slice(a[i+8:])
			minLanes(x0, y0).StoreSlice(out[i:])
			minLanes(x1, y0).StoreSlice(out[i+8:])
		}
		for ; i+8 <= n; i += 8 {
			x0 := archsimd.LoadFloat32x8Slice(a[i:])
			minLanes(x0, y0).StoreSlice(out[i:])
		}
	case !bS:
		b = b[:n]
		x0 := archsimd.BroadcastFloat32x8(a[0])
		for ; i+16 <= n; i += 16 {
			y0, y1 := archsimd.LoadFloat32x8Slice(b[i:]), archsimd.LoadFloat32x8Slice(b[i+8:])
			minLanes(x0, y0).StoreSlice(out[i:])
			minLanes(x0, y1).StoreSlice(out[i+8:])
		}
		for ; i+8 <= n; i += 8 {
			y0 := archsimd.LoadFloat32x8Slice(b[i:])
			minLanes(x0, y0).StoreSlice(out[i:])
		}
	}
	for ; i < n; i++ {
		x, y := at(a, aS, i), at(b, bS, i)
		out[i] = min(x, y)
	}
}

// maxLanes is Go's max on each lane: NaN if either is NaN, +0 for max(-0, +0).
func maxLanes(x, y archsimd.Float32x8) archsimd.Float32x8 {
	m := x.Max(y)
	// Equal lanes (including ±0) take the AND of the bits: +0 wins over -0.
	m = x.AsUint32x8().And(y.AsUint32x8()).AsFloat32x8().Merge(m, x.Equal(y))
	// Unordered lanes: x+y is a NaN.
	return m.Merge(x.Add(y), x.Equal(x).And(y.Equal(y)))
}

// minLanes is Go's min on each lane: NaN if either is NaN, -0 for min(-0, +0).
func minLanes(x, y archsimd.Float32x8) archsimd.Float32x8 {
	m := x.Min(y)
	m = x.AsUint32x8().Or(y.AsUint32x8()).AsFloat32x8().Merge(m, x.Equal(y))
	return m.Merge(x.Add(y), x.Equal(x).And(y.Equal(y)))
}
