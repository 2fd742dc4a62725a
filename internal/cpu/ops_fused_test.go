package cpu

import (
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// withFusion runs fn with elementwise fusion turned on or off.
func withFusion(on bool, fn func()) {
	old := fuseElementwise
	fuseElementwise = on
	defer func() { fuseElementwise = old }()
	fn()
}

// fusedChains builds elementwise chains of the kinds a training step has (batch-norm
// normalisation with per-channel vectors, ReLU and its mask gradient, SGD momentum update,
// divisions, Neg, Min/Max, scalars, shared operands and intermediates also used elsewhere) on
// x, y [B, H, W, C] and v, w [C].
func fusedChains(xs []*graph.Node) []*graph.Node {
	x, y, v, w := xs[0], xs[1], xs[2], xs[3]
	g, dt := x.Graph(), x.DType()
	dims := x.Shape().Dimensions
	c := dims[len(dims)-1]
	vb := graph.Reshape(v, 1, 1, 1, c)
	wb := graph.Reshape(w, 1, 1, 1, c)
	half := graph.Scalar(g, dt, 0.5)
	zero := graph.ScalarZero(g, dt)
	// Batch norm: (x - mean)·invstd·gamma + beta, then ReLU.
	bn := graph.Add(graph.Mul(graph.Mul(graph.Sub(x, vb), graph.Abs(wb)), vb), wb)
	relu := graph.Max(bn, zero)
	// ReLU gradient: Where(x >= 0, y, 0) and Where(y < x, x, y/2).
	mask := graph.Where(graph.GreaterOrEqual(x, zero), y, zero)
	sel := graph.Where(graph.LessThan(y, x), x, graph.Mul(y, half))
	// Momentum update: x - 0.5·(0.9·y + grad), grad = y + 5e-4·x.
	upd := graph.Sub(x, graph.Mul(half, graph.Add(graph.Mul(graph.Scalar(g, dt, 0.9), y),
		graph.Add(y, graph.Mul(graph.Scalar(g, dt, 5e-4), x)))))
	// An intermediate with two consumers stays materialised.
	shared := graph.Mul(x, y)
	two := graph.Add(graph.Neg(shared), graph.Div(shared, graph.Add(graph.Abs(y), half)))
	mm := graph.Min(graph.Sub(x, y), graph.Max(graph.Neg(x), graph.ConvertDType(graph.GreaterThan(x, y), dt)))
	le := graph.Where(graph.LessOrEqual(half, y), graph.Neg(x), half)
	// A Where inside a chain whose condition has another use (it is not fused into the chain).
	cond := graph.LessThan(x, y)
	nested := graph.Add(graph.Where(cond, x, half), graph.Mul(x, y))
	return []*graph.Node{relu, mask, sel, upd, two, mm, le, nested, graph.ConvertDType(cond, dt),
		graph.ReduceAllSum(graph.Mul(relu, mask))}
}

// TestFusedChains checks fused execution against op-by-op execution (bit for bit: the same
// float32 operations) and against float64, on odd shapes above and at the fusion threshold.
func TestFusedChains(t *testing.T) {
	rng := newRng(71)
	for _, dims := range [][]int{{2, 5, 7, 13}, {3, 4, 4, 64}, {1, 1, 1, fuseMinSize}, {2, 9, 3, 37}} {
		c := dims[3]
		x := randTensor(rng, dtypes.Float32, dims...)
		y := randTensor(rng, dtypes.Float32, dims...)
		v := randTensor(rng, dtypes.Float32, c)
		w := randTensor(rng, dtypes.Float32, c)
		var fused, plain [][]float64
		withFusion(true, func() { fused, _ = runGraph(t, testCPU(), fusedChains, x, y, v, w) })
		withFusion(false, func() { plain, _ = runGraph(t, testCPU(), fusedChains, x, y, v, w) })
		want, _ := runGraph(t, testCPU(), fusedChains, toF64Tensor(t, x), toF64Tensor(t, y), toF64Tensor(t, v), toF64Tensor(t, w))
		for i := range fused {
			tol := 0.0
			if i == len(fused)-1 {
				tol = 1e-6 // the reduction's summation order may differ with the buffers' reuse
			}
			assertClose(t, fused[i], plain[i], tol, "dims %v output %d: fused vs op by op", dims, i)
			assertClose(t, fused[i], want[i], 1e-5, "dims %v output %d: fused vs float64", dims, i)
		}
	}
}

// TestFuseChainsPlan checks which nodes are fused, on a graph built on the backend directly:
// batch norm + ReLU (with per-channel vectors) and the ReLU mask gradient collapse into one step
// each, an intermediate that is also an output stays materialised, small outputs are not fused.
func TestFuseChainsPlan(t *testing.T) {
	plan := func(dims []int, exposeIntermediate bool) (steps, fusedSteps, fusedOps int) {
		t.Helper()
		b := testCPU().Builder("plan").(*Builder)
		must := func(op backends.Op, err error) backends.Op {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			return op
		}
		c := dims[len(dims)-1]
		x := must(b.Parameter("x", shapes.Make(dtypes.Float32, dims...), nil))
		y := must(b.Parameter("y", shapes.Make(dtypes.Float32, dims...), nil))
		v := must(b.Parameter("v", shapes.Make(dtypes.Float32, c), nil))
		vb := must(b.Reshape(v, 1, 1, 1, c))
		zero := must(b.Constant([]float32{0}))
		centred := must(b.Sub(x, vb))
		bn := must(b.Add(must(b.Mul(centred, vb)), vb))
		relu := must(b.Max(bn, zero))
		mask := must(b.Where(must(b.GreaterOrEqual(x, zero)), y, must(b.Mul(y, zero))))
		outs := []backends.Op{relu, mask}
		if exposeIntermediate {
			outs = append(outs, centred)
		}
		exe, err := b.Compile(outs, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range exe.(*Executable).steps {
			steps++
			if st.fused != nil {
				fusedSteps++
				fusedOps += len(st.fused.instrs)
			}
		}
		return
	}
	big := []int{2, 4, 8, 32}
	if steps, fs, ops := plan(big, false); fs != 2 || ops != 7 {
		t.Errorf("%v: %d steps, %d fused with %d ops; want 2 fused steps with 4 + 3 ops", big, steps, fs, ops)
	}
	if steps, fs, ops := plan(big, true); fs != 2 || ops != 6 {
		t.Errorf("%v with the centred values as output: %d steps, %d fused with %d ops; want 2 fused steps with 3 + 3 ops", big, steps, fs, ops)
	}
	if _, fs, _ := plan([]int{1, 2, 3, 5}, false); fs != 0 {
		t.Errorf("small shape: %d fused steps, want 0", fs)
	}
}
