package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gomlx/gomlx/backends"

	"github.com/ifa-toolkit/ifa/internal/cpu/kernels"
)

// detProcs are the GOMAXPROCS values every parallel reduction must give the same bits for.
var detProcs = []int{1, 2, 3, 5}

// acrossProcs runs fn under each of detProcs and reports, through t, the first value whose bits
// differ from the GOMAXPROCS 1 result.
func acrossProcs[T floatT](t *testing.T, label string, fn func() []T) {
	t.Helper()
	defer kernels.SetMaxThreads(kernels.SetMaxThreads(0))
	var want []T
	for _, procs := range detProcs {
		old := runtime.GOMAXPROCS(procs)
		got := fn()
		runtime.GOMAXPROCS(old)
		if want == nil {
			want = got
			continue
		}
		for i := range want {
			if math.Float64bits(float64(got[i])) != math.Float64bits(float64(want[i])) {
				t.Errorf("%s, GOMAXPROCS %d: element %d = %v, GOMAXPROCS 1 gives %v", label, procs, i, got[i], want[i])
				break
			}
		}
	}
}

func randFloats[T floatT](rng *rand.Rand, n int) []T {
	x := make([]T, n)
	for i := range x {
		x[i] = T(rng.NormFloat64()*3 + 1)
	}
	return x
}

// TestReductionsSameBitsAnyProcs: sums (float32 and float64), maxima and minima over every layout
// of kept and reduced axes, at sizes that take the parallel paths (disjoint outputs, private
// partial sums, leading-axis sums), give the same bits for GOMAXPROCS 1, 2, 3 and 5.
func TestReductionsSameBitsAnyProcs(t *testing.T) {
	forEachISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(81, 82))
		for _, tc := range []struct {
			dims    []int
			reduced []bool
		}{
			{[]int{3, 50000, 7}, []bool{false, true, false}}, // disjoint outputs over the first axis
			{[]int{50000, 7, 3}, []bool{true, false, true}},  // private partial sums
			{[]int{20000, 13, 5}, []bool{true, true, false}}, // leading-axis sums
			{[]int{4000, 300}, []bool{false, true}},          // row sums
			{[]int{300000}, []bool{true}},                    // everything
			{[]int{2, 70000, 3}, []bool{true, false, true}},  // partial sums, many outputs
			{[]int{9000, 3, 11}, []bool{false, false, true}}, // rows of 11
			{[]int{64, 8, 8, 96}, []bool{true, true, true, false}},
		} {
			n := 1
			for _, d := range tc.dims {
				n *= d
			}
			gs := reduceGroups(tc.dims, tc.reduced)
			outN := 1
			for _, g := range gs {
				if !g.reduced {
					outN *= g.size
				}
			}
			x32 := randFloats[float32](rng, n)
			x64 := randFloats[float64](rng, n)
			for _, op := range []backends.OpType{backends.OpTypeReduceSum, backends.OpTypeReduceMax, backends.OpTypeReduceMin} {
				label := fmt.Sprintf("%s %v over %v", op, tc.dims, tc.reduced)
				acrossProcs(t, label+" float32", func() []float32 {
					out := make([]float32, outN)
					if !reduceFast32(op, out, x32, gs) {
						if err := reduceFloat(op, out, x32, gs); err != nil {
							t.Fatal(err)
						}
					}
					return out
				})
				acrossProcs(t, label+" float64", func() []float64 {
					out := make([]float64, outN)
					if err := reduceFloat(op, out, x64, gs); err != nil {
						t.Fatal(err)
					}
					return out
				})
			}
		}
	})
}

// TestBatchNormSameBitsAnyProcs: the channels-last batch-norm forward (statistics and output) and
// gradient give the same bits for GOMAXPROCS 1, 2, 3 and 5.
func TestBatchNormSameBitsAnyProcs(t *testing.T) {
	forEachISA(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(83, 84))
		for _, shape := range []struct{ rows, c int }{{64 * 16 * 16, 16}, {5000, 3}, {777, 64}, {3001, 47}} {
			rows, c := shape.rows, shape.c
			x := randFloats[float32](rng, rows*c)
			g := randFloats[float32](rng, rows*c)
			scale := randFloats[float32](rng, c)
			offset := randFloats[float32](rng, c)
			label := fmt.Sprintf("[%d, %d]", rows, c)
			acrossProcs(t, label+" forward", func() []float32 {
				out := make([]float32, rows*c+2*c)
				bnTrainLastAxis(bnTrainOut{y: out[:rows*c]}, out[rows*c:rows*c+c], out[rows*c+c:], x, scale, offset, 1e-5, rows, c)
				return out
			})
			mean, variance := make([]float32, c), make([]float32, c)
			bnTrainLastAxis(bnTrainOut{y: make([]float32, rows*c)}, mean, variance, x, scale, offset, 1e-5, rows, c)
			acrossProcs(t, label+" gradient", func() []float32 {
				out := make([]float32, rows*c+2*c)
				bnGradLastAxis(out[:rows*c], out[rows*c:rows*c+c], out[rows*c+c:], x, scale, mean, variance, g, 1e-5, rows, c)
				return out
			})
		}
	})
}

// TestWorkersOptionCapsThreads: workers=N caps the goroutines of the kernels and of the backend's
// own loops (process-wide), and a cap above GOMAXPROCS changes nothing.
func TestWorkersOptionCapsThreads(t *testing.T) {
	defer kernels.SetMaxThreads(kernels.SetMaxThreads(0))
	old := runtime.GOMAXPROCS(3)
	defer runtime.GOMAXPROCS(old)
	for _, tc := range []struct {
		config string
		want   int
	}{{"workers=1", 1}, {"workers=2", 2}, {"workers=8", 3}} {
		b, err := New(tc.config)
		if err != nil {
			t.Fatal(err)
		}
		if got := kernels.Threads(); got != tc.want {
			t.Errorf("%s with GOMAXPROCS 3: kernels.Threads() = %d, want %d", tc.config, got, tc.want)
		}
		if d := b.Description(); !strings.Contains(d, fmt.Sprintf("(%d workers", tc.want)) {
			t.Errorf("%s: description %q", tc.config, d)
		}
		var calls atomic.Int32
		parallelFor(1<<20, 1, func(s, e int) { calls.Add(1) })
		if got := int(calls.Load()); got != tc.want {
			t.Errorf("%s with GOMAXPROCS 3: parallelFor ran %d chunks, want %d", tc.config, got, tc.want)
		}
	}
}
