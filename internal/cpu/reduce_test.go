package cpu

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"github.com/ifa-toolkit/ifa/internal/cpu/kernels"
)

// TestReduceFast32 checks the float32 row reductions (Sum, Max, Min over the last axis) and the
// leading-axis sums against naive float64 loops, on odd sizes around the 4- and 8-lane steps, with
// sizes that split over the cores, NaN and infinities in some rows, and signed zeros.
func TestReduceFast32(t *testing.T) {
	forEachISA(t, func(t *testing.T) {
		rng := newRng(91)
		negZero := float32(math.Copysign(0, -1))
		for _, rows := range []int{1, 3, 17, 4099} {
			for _, cols := range []int{1, 2, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 64, 100, 1000} {
				x := make([]float32, rows*cols)
				for i := range x {
					x[i] = float32(rng.NormFloat64())
				}
				special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), negZero}
				if rows > 2 {
					for k, v := range special { // row k+1 gets one special value at a random column
						x[(k%(rows-1)+1)*cols+rng.IntN(cols)] = v
					}
				}
				// Row reductions.
				for _, op := range []backends.OpType{backends.OpTypeReduceSum, backends.OpTypeReduceMax, backends.OpTypeReduceMin} {
					out := make([]float32, rows)
					if !reduceFast32(op, out, x, []reduceGroup{{rows, false}, {cols, true}}) {
						t.Fatalf("%s of rows not handled", op)
					}
					for r := 0; r < rows; r++ {
						row := x[r*cols : (r+1)*cols]
						var want float64
						switch op {
						case backends.OpTypeReduceSum:
							for _, v := range row {
								want += float64(v)
							}
						case backends.OpTypeReduceMax:
							want = math.Inf(-1)
							for _, v := range row {
								want = max(want, float64(v)) // NaN wins, as for the builtin
							}
						default:
							want = math.Inf(1)
							for _, v := range row {
								want = min(want, float64(v))
							}
						}
						got := float64(out[r])
						ok := got == want || (math.IsNaN(got) && math.IsNaN(want))
						if op == backends.OpTypeReduceSum && !ok {
							ok = math.Abs(got-want) <= 1e-6*math.Max(1, math.Abs(want))
						}
						if op != backends.OpTypeReduceSum && want == 0 && got == 0 && math.Signbit(got) != math.Signbit(want) {
							ok = false // max(-0, +0) is +0, min is -0
						}
						if !ok {
							t.Fatalf("%s rows=%d cols=%d row %d: got %g, want %g", op, rows, cols, r, got, want)
						}
					}
				}
				// Leading-axis sums (finite values only).
				for i, v := range x {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						x[i] = 1
					}
				}
				out := make([]float32, cols)
				if !reduceFast32(backends.OpTypeReduceSum, out, x, []reduceGroup{{rows, true}, {cols, false}}) {
					t.Fatal("leading sum not handled")
				}
				all := make([]float32, 1)
				reduceFast32(backends.OpTypeReduceSum, all, x, []reduceGroup{{rows * cols, true}})
				var total float64
				for j := 0; j < cols; j++ {
					var want float64
					for r := 0; r < rows; r++ {
						want += float64(x[r*cols+j])
					}
					total += want
					if math.Abs(float64(out[j])-want) > 1e-6*math.Max(1, math.Abs(want)) {
						t.Fatalf("leading sum rows=%d cols=%d column %d: got %g, want %g", rows, cols, j, out[j], want)
					}
				}
				if math.Abs(float64(all[0])-total) > 1e-6*math.Max(1, math.Abs(total)) {
					t.Fatalf("sum of all rows=%d cols=%d: got %g, want %g", rows, cols, all[0], total)
				}
			}
		}
		// Signed zeros alone: max is +0, min is -0, in either order.
		z := []float32{negZero, 0, negZero, negZero, 0, negZero, negZero, negZero, 0, negZero}
		for _, n := range []int{2, 9, 10} {
			mx, mn := make([]float32, 1), make([]float32, 1)
			reduceFast32(backends.OpTypeReduceMax, mx, z[:n], []reduceGroup{{1, false}, {n, true}})
			reduceFast32(backends.OpTypeReduceMin, mn, z[:n], []reduceGroup{{1, false}, {n, true}})
			if math.Signbit(float64(mx[0])) || !math.Signbit(float64(mn[0])) {
				t.Errorf("n=%d: max %g (sign %v), min %g (sign %v)", n, mx[0], math.Signbit(float64(mx[0])), mn[0], math.Signbit(float64(mn[0])))
			}
		}
	})
}

// TestSumMiddleRows32 checks the sums over the middle axis of [outer, rows, cols] (a global
// average pool's sum over channels-last pixels) against a float64 loop, and that the result is the
// same bits for 1, 2 and 3 goroutines.
func TestSumMiddleRows32(t *testing.T) {
	defer kernels.SetMaxThreads(kernels.SetMaxThreads(0))
	forEachISA(t, func(t *testing.T) {
		rng := newRng(17)
		for _, sz := range [][3]int{{1, 1, 1}, {2, 3, 7}, {3, 5, 9}, {64, 64, 256}, {5, 17, 33}, {7, 1, 100}} {
			outer, rows, cols := sz[0], sz[1], sz[2]
			x := make([]float32, outer*rows*cols)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * 10)
			}
			gs := reduceGroups([]int{outer, rows, cols}, []bool{false, true, false})
			if want := rows > 1 && outer > 1; want != (len(gs) == 3) {
				t.Fatalf("%v: groups %v", sz, gs)
			}
			var first []float32
			for _, threads := range []int{1, 2, 3} {
				kernels.SetMaxThreads(threads)
				got := make([]float32, outer*cols)
				if !reduceFast32(backends.OpTypeReduceSum, got, x, gs) {
					if len(gs) == 3 {
						t.Fatalf("%v: middle-axis sum not handled", sz)
					}
					if err := reduceFloat(backends.OpTypeReduceSum, got, x, gs); err != nil {
						t.Fatal(err)
					}
				}
				for b := 0; b < outer; b++ {
					for j := 0; j < cols; j++ {
						var want float64
						for r := 0; r < rows; r++ {
							want += float64(x[(b*rows+r)*cols+j])
						}
						if g := float64(got[b*cols+j]); math.Abs(g-want) > 1e-6*math.Max(1, math.Abs(want)) {
							t.Fatalf("%v threads %d: out[%d,%d] = %g, want %g", sz, threads, b, j, g, want)
						}
					}
				}
				if first == nil {
					first = got
				} else {
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(first[i]) {
							t.Fatalf("%v: %d goroutines give other bits than 1 at %d", sz, threads, i)
						}
					}
				}
			}
		}
	})
}
