package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/ifa-toolkit/ifa/internal/cpu/kernels"
)

var (
	testCPU = sync.OnceValue(func() backends.Backend {
		b, err := New("")
		if err != nil {
			panic(err)
		}
		return b
	})
	testSimpleGo = sync.OnceValue(func() backends.Backend {
		RegisterGradients() // the comparisons differentiate with ifa's gradients on both backends
		b, err := simplego.New("")
		if err != nil {
			panic(err)
		}
		return b
	})
)

// testCPUs holds the backends of testCPUWith, by config.
var testCPUs sync.Map

// testCPUWith returns a cpu backend made with New(config), one per config for the whole test run.
func testCPUWith(config string) backends.Backend {
	if b, ok := testCPUs.Load(config); ok {
		return b.(backends.Backend)
	}
	b, err := New(config)
	if err != nil {
		panic(err)
	}
	got, _ := testCPUs.LoadOrStore(config, b)
	return got.(backends.Backend)
}

// onOff returns the backend config that turns the switch key on or off.
func onOff(key string, on bool) string {
	if on {
		return key + "=on"
	}
	return key + "=off"
}

// graphFn is a test computation over a list of inputs.
type graphFn func(xs []*graph.Node) []*graph.Node

// runGraph executes fn on backend b and returns the outputs as float64 slices with their shapes.
func runGraph(t *testing.T, b backends.Backend, fn graphFn, inputs ...*tensors.Tensor) ([][]float64, []shapes.Shape) {
	t.Helper()
	exec, err := graph.NewExec(b, (func([]*graph.Node) []*graph.Node)(fn))
	if err != nil {
		t.Fatalf("NewExec: %v", err)
	}
	defer exec.Finalize()
	args := make([]any, len(inputs))
	for i, in := range inputs {
		c, err := in.LocalClone()
		if err != nil {
			t.Fatalf("cloning input #%d: %v", i, err)
		}
		args[i] = c
	}
	outs, err := exec.Exec(args...)
	if err != nil {
		t.Fatalf("Exec on %s: %v", b.Name(), err)
	}
	vals := make([][]float64, len(outs))
	ss := make([]shapes.Shape, len(outs))
	for i, o := range outs {
		vals[i] = tensorFloats(t, o)
		ss[i] = o.Shape()
	}
	return vals, ss
}

func tensorFloats(t *testing.T, x *tensors.Tensor) []float64 {
	t.Helper()
	var out []float64
	err := x.ConstFlatData(func(flat any) {
		n := flatLen(flat)
		out = make([]float64, n)
		for i := range out {
			out[i] = elemAsFloat64(flat, i)
		}
	})
	if err != nil {
		t.Fatalf("reading tensor: %v", err)
	}
	return out
}

// compareBackends runs fn on the cpu backend and on simplego and checks the outputs agree.
func compareBackends(t *testing.T, tol float64, fn graphFn, inputs ...*tensors.Tensor) [][]float64 {
	t.Helper()
	got, gotShapes := runGraph(t, testCPU(), fn, inputs...)
	want, wantShapes := runGraph(t, testSimpleGo(), fn, inputs...)
	for i := range want {
		if !gotShapes[i].Equal(wantShapes[i]) {
			t.Fatalf("output #%d: shape %s, simplego gives %s", i, gotShapes[i], wantShapes[i])
		}
		assertClose(t, got[i], want[i], tol, "output #%d vs simplego", i)
	}
	return got
}

// assertClose checks |got-want| <= tol·(1+|want|) elementwise (NaNs must match).
func assertClose(t *testing.T, got, want []float64, tol float64, msg string, args ...any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", sprintf(msg, args...), len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if math.IsNaN(w) || math.IsNaN(g) {
			if math.IsNaN(w) != math.IsNaN(g) {
				t.Fatalf("%s: element %d: got %v, want %v", sprintf(msg, args...), i, g, w)
			}
			continue
		}
		if math.IsInf(w, 0) && g == w {
			continue
		}
		if math.Abs(g-w) > tol*(1+math.Abs(w)) {
			t.Fatalf("%s: element %d: got %v, want %v (tol %g)", sprintf(msg, args...), i, g, w, tol)
		}
	}
}

// randTensor returns a tensor of the given dtype and dims with values uniform in [-1, 1) (integers
// in [-5, 5], unsigned in [0, 10]).
func randTensor(rng *rand.Rand, dtype dtypes.DType, dims ...int) *tensors.Tensor {
	shape := shapes.Make(dtype, dims...)
	flat := makeFlat(dtype, shape.Size())
	for i := 0; i < shape.Size(); i++ {
		u := rng.Float64()*2 - 1
		switch f := flat.(type) {
		case []float32:
			f[i] = float32(u)
		case []float64:
			f[i] = u
		case []int32:
			f[i] = int32(rng.IntN(11) - 5)
		case []int64:
			f[i] = int64(rng.IntN(11) - 5)
		case []uint8:
			f[i] = uint8(rng.IntN(11))
		case []bool:
			f[i] = rng.IntN(2) == 1
		}
	}
	t := tensors.FromShape(shape)
	t.MutableFlatData(func(dst any) { _, _ = copyFlat(dst, flat) })
	return t
}

func newRng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 42)) }

func sprintf(f string, a ...any) string { return fmt.Sprintf(f, a...) }

func sqrtF(x float64) float64 { return math.Sqrt(x) }

// forEachISA runs f as a subtest on every kernel path this processor supports (kernels.SetISA),
// restoring the path in use afterwards.
func forEachISA(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, isa := range kernels.SupportedISAs() {
		t.Run(isa.String(), func(t *testing.T) {
			prev, err := kernels.SetISA(isa)
			if err != nil {
				t.Fatal(err)
			}
			defer kernels.SetISA(prev)
			f(t)
		})
	}
}
