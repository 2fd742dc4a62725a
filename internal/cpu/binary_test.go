package cpu

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/backends"
)

// specialFloats32 are values whose arithmetic has edge cases: signed zeros, infinities, NaN,
// subnormals and the extremes.
var specialFloats32 = []float32{0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1)),
	float32(math.Inf(-1)), float32(math.NaN()), 1e-45, -1e-45, 1.17549435e-38, math.MaxFloat32,
	-math.MaxFloat32, 0.5, 3, -2.5}

// sameFloat32 reports whether x and y are the same value: equal bits, or both NaN.
func sameFloat32(x, y float32) bool {
	return math.Float32bits(x) == math.Float32bits(y) || (x != x && y != y)
}

// TestBinKernel32 checks the float32 binary kernels (8-lane where the build has them) against
// the scalar loops of floatBinKernel, value for value (bits, NaN as NaN), for every operand
// layout, lengths around the 8- and 16-lane steps, and special values in every lane position.
func TestBinKernel32(t *testing.T) {
	rng := newRng(90)
	ops := []backends.OpType{backends.OpTypeAdd, backends.OpTypeSub, backends.OpTypeMul, backends.OpTypeDiv,
		backends.OpTypeMax, backends.OpTypeMin}
	for _, op := range ops {
		got := float32BinKernel(op)
		want, err := floatBinKernel[float32](op)
		if err != nil || got == nil {
			t.Fatalf("%s: no kernel (%v)", op, err)
		}
		for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 1031} {
			a := make([]float32, n)
			b := make([]float32, n)
			for i := range a {
				a[i] = float32(rng.NormFloat64())
				b[i] = float32(rng.NormFloat64())
				if rng.IntN(3) == 0 {
					a[i] = specialFloats32[rng.IntN(len(specialFloats32))]
				}
				if rng.IntN(3) == 0 {
					b[i] = specialFloats32[rng.IntN(len(specialFloats32))]
				}
				if rng.IntN(8) == 0 {
					b[i] = a[i] // equal operands (Max/Min of equal values)
				}
			}
			for _, s := range specialFloats32 {
				sa, sb := []float32{s}, []float32{s}
				for _, lay := range []struct{ aS, bS bool }{{false, false}, {false, true}, {true, false}, {true, true}} {
					x, y := a, b
					if lay.aS {
						x = sa
					}
					if lay.bS {
						y = sb
					}
					o1 := make([]float32, n)
					o2 := make([]float32, n)
					got(o1, x, lay.aS, y, lay.bS)
					want(o2, x, lay.aS, y, lay.bS)
					for i := range o1 {
						if !sameFloat32(o1[i], o2[i]) {
							t.Fatalf("%s n=%d scalars %v/%v (%g): [%d] = %g (%#x), want %g (%#x); operands %g, %g", op, n,
								lay.aS, lay.bS, s, i, o1[i], math.Float32bits(o1[i]), o2[i], math.Float32bits(o2[i]),
								at(x, lay.aS, i), at(y, lay.bS, i))
						}
					}
				}
			}
		}
		// Signed zeros and NaNs in both orders.
		for _, x := range specialFloats32 {
			for _, y := range specialFloats32 {
				xs := []float32{x, x, x, x, x, x, x, x, x}
				ys := []float32{y, y, y, y, y, y, y, y, y}
				o1, o2 := make([]float32, 9), make([]float32, 9)
				got(o1, xs, false, ys, false)
				want(o2, xs, false, ys, false)
				for i := range o1 {
					if !sameFloat32(o1[i], o2[i]) {
						t.Fatalf("%s(%g, %g) lane %d = %g, want %g", op, x, y, i, o1[i], o2[i])
					}
				}
			}
		}
	}
}
