package cpu

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

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
		fused, _ = runGraph(t, testCPUWith("fusion=on"), fusedChains, x, y, v, w)
		plain, _ = runGraph(t, testCPUWith("fusion=off"), fusedChains, x, y, v, w)
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

// transcendentalChains builds float32 chains with every fusable unary op (x, y: [..., C];
// v, w: [C]): GELU 0.5·x·(1+erf(x/√2)) and its gradient, a softmax over the last axis (a
// per-row operand) and its gradient, and a chain mixing the unary ops with scalars, per-channel
// vectors and per-row values.
func transcendentalChains(xs []*graph.Node) []*graph.Node {
	x, y, v, w := xs[0], xs[1], xs[2], xs[3]
	g, dt := x.Graph(), x.DType()
	rank := x.Rank()
	c := x.Shape().Dimensions[rank-1]
	bcast := make([]int, rank)
	for i := range bcast {
		bcast[i] = 1
	}
	bcast[rank-1] = c
	vb, wb := graph.Reshape(v, bcast...), graph.Reshape(w, bcast...)
	half, one := graph.Scalar(g, dt, 0.5), graph.ScalarOne(g, dt)
	x3 := graph.MulScalar(x, 3)
	gelu := func(z *graph.Node) *graph.Node {
		return graph.Mul(graph.MulScalar(z, 0.5), graph.OnePlus(graph.Erf(graph.MulScalar(z, 1/math.Sqrt2))))
	}
	geluOut := gelu(x3)
	geluGrad := graph.Gradient(graph.ReduceAllSum(graph.Mul(gelu(x3), y)), x3)[0]
	soft := graph.Softmax(x3, -1)
	softGrad := graph.Gradient(graph.ReduceAllSum(graph.Mul(graph.Softmax(x3, -1), y)), x3)[0]
	rowMax := graph.ReduceAndKeep(x, graph.ReduceMax, -1)
	absY := graph.Add(graph.Abs(y), half)
	mixed := graph.Add(graph.Mul(graph.Exp(graph.Sub(x3, rowMax)), graph.Log(absY)),
		graph.Sub(graph.Tanh(graph.Mul(x3, vb)), graph.Div(graph.Logistic(graph.MulScalar(y, 4)), graph.Sqrt(graph.Add(graph.Abs(x), one)))))
	mixed = graph.Add(mixed, graph.Mul(graph.Rsqrt(graph.Add(absY, graph.Abs(wb))), graph.Erf(graph.Mul(x3, wb))))
	mixed = graph.Add(mixed, graph.Mul(graph.Expm1(y), graph.Mul(graph.Log1p(graph.Abs(x)), graph.Sign(y))))
	mixed = graph.Where(graph.GreaterThan(x, rowMax), mixed, graph.Neg(graph.Exp(graph.Sub(rowMax, x))))
	return []*graph.Node{geluOut, geluGrad, soft, softGrad, mixed}
}

// TestFusedTranscendental checks chains with unary ops fused and op by op (the same float32
// kernels: bit for bit) and against the float64 evaluation of the same graph, on odd shapes above
// and below the fusion threshold; and that fusion absorbs GELU's Erf and its gradient's Exp.
func TestFusedTranscendental(t *testing.T) {
	rng := newRng(73)
	for _, dims := range [][]int{{3, 7, 53}, {2, 5, 129}, {1031}, {2, 3, 5}, {4, 17, 17}} {
		c := dims[len(dims)-1]
		x := randTensor(rng, dtypes.Float32, dims...)
		y := randTensor(rng, dtypes.Float32, dims...)
		v := randTensor(rng, dtypes.Float32, c)
		w := randTensor(rng, dtypes.Float32, c)
		var fused, plain [][]float64
		stats := testCPUWith("fusion=on,opstats=on").(*Backend)
		stats.EnableOpStats(true) // clears earlier runs
		fused, _ = runGraph(t, stats, transcendentalChains, x, y, v, w)
		report := stats.OpStatsReport(0)
		plain, _ = runGraph(t, testCPUWith("fusion=off"), transcendentalChains, x, y, v, w)
		want, _ := runGraph(t, testCPU(), transcendentalChains, toF64Tensor(t, x), toF64Tensor(t, y), toF64Tensor(t, v), toF64Tensor(t, w))
		for i := range fused {
			tol := 0.0
			if i == 3 {
				tol = 1e-6 // the softmax gradient has a reduction, whose order may differ
			}
			assertClose(t, fused[i], plain[i], tol, "dims %v output %d: fused vs op by op", dims, i)
			assertClose(t, fused[i], want[i], 2e-5, "dims %v output %d: fused vs float64", dims, i)
		}
		size := 1
		for _, d := range dims {
			size *= d
		}
		if size < fuseMinSize {
			continue
		}
		for _, line := range strings.Split(report, "\n") {
			if f := strings.Fields(line); len(f) > 0 && (f[0] == "Erf" || f[0] == "Expm1" || f[0] == "Log1p") {
				t.Errorf("dims %v: %s runs unfused:\n%s", dims, f[0], report)
			}
		}
	}
}

// BenchmarkFusedGELU times GELU and its gradient on a ViT MLP activation ([512·17, 128], as in
// vit:nano at batch 512), fused and op by op; cpu-ms/op is the process CPU time per run.
func BenchmarkFusedGELU(b *testing.B) {
	rng := newRng(5)
	x := randTensor(rng, dtypes.Float32, 512*17, 128)
	y := randTensor(rng, dtypes.Float32, 512*17, 128)
	fn := func(xs []*graph.Node) []*graph.Node {
		x, y := graph.MulScalar(xs[0], 2), xs[1]
		gelu := graph.Mul(graph.MulScalar(x, 0.5), graph.OnePlus(graph.Erf(graph.MulScalar(x, 1/math.Sqrt2))))
		return []*graph.Node{gelu, graph.Gradient(graph.ReduceAllSum(graph.Mul(gelu, y)), x)[0]}
	}
	for _, on := range []bool{true, false} {
		name := "fused"
		if !on {
			name = "op-by-op"
		}
		b.Run(name, func(b *testing.B) {
			benchExec(b, testCPUWith(onOff("fusion", on)), float64(x.Shape().Size())*4*3, "GB", fn, x, y)
		})
	}
}

// TestFusedCompareWhereVectorLoops: the comparison masks (a ≥ t, a > t against a scalar) and the
// selections (c ? t : f with f a scalar or a vector) give, on every kernel path and for lengths
// around the 8-lane blocks, the bits of the definition, with NaN, ±0 and ±Inf operands.
func TestFusedCompareWhereVectorLoops(t *testing.T) {
	forEachISA(t, func(t *testing.T) {
		rng := newRng(95)
		special := []float32{float32(math.NaN()), 0, float32(math.Copysign(0, -1)), float32(math.Inf(1)),
			float32(math.Inf(-1)), 1e-40, -1e-40}
		for _, n := range []int{1, 7, 8, 9, 16, 31, 1024, 1029} {
			a, g, f := make([]float32, n), make([]float32, n), make([]float32, n)
			for i := range a {
				a[i] = float32(rng.NormFloat64())
				if rng.IntN(4) == 0 {
					a[i] = special[rng.IntN(len(special))]
				}
				g[i], f[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
			}
			for _, th := range []float32{0, float32(math.Copysign(0, -1)), 0.5, float32(math.NaN())} {
				for _, op := range []backends.OpType{backends.OpTypeGreaterOrEqual, backends.OpTypeGreaterThan} {
					mask := make([]float32, n)
					fusedCompare(op, mask, a, false, []float32{th}, true)
					for i, v := range a {
						want := v >= th
						if op == backends.OpTypeGreaterThan {
							want = v > th
						}
						if got := math.Float32bits(mask[i]); got != maskOf(want) {
							t.Fatalf("n %d, %s(%v, %v): mask %#x, want %#x", n, op, v, th, got, maskOf(want))
						}
					}
					for _, fS := range []bool{true, false} {
						out := make([]float32, n)
						fv := f
						if fS {
							fv = []float32{float32(math.Copysign(0, -1))}
						}
						fusedWhere(out, mask, false, g, false, fv, fS)
						for i := range out {
							want := fv[0]
							if !fS {
								want = fv[i]
							}
							if bitsOf(mask[i : i+1])[0] != 0 {
								want = g[i]
							}
							if math.Float32bits(out[i]) != math.Float32bits(want) {
								t.Fatalf("n %d, Where element %d (f scalar %v): %v, want %v", n, i, fS, out[i], want)
							}
						}
					}
				}
			}
		}
	})
}

// affineReLUChains builds the inference batch norm + ReLU programs of a frozen teacher (the
// affineReLU forms, operands in various orders) on x, s, x2 [B, H, W, C] and a, b, a2, b2 [C].
func affineReLUChains(xs []*graph.Node) []*graph.Node {
	x, s, x2 := xs[0], xs[1], xs[2]
	g, dt := x.Graph(), x.DType()
	dims := x.Shape().Dimensions
	c := dims[len(dims)-1]
	per := func(v *graph.Node) *graph.Node { return graph.Reshape(v, 1, 1, 1, c) }
	a, b, a2, b2 := per(xs[3]), per(xs[4]), per(xs[5]), per(xs[6])
	zero := graph.ScalarZero(g, dt)
	return []*graph.Node{
		graph.Max(graph.Add(graph.Mul(x, a), b), zero),
		graph.Max(graph.Scalar(g, dt, 0.25), graph.Add(b, graph.Mul(a, x))),
		graph.Max(graph.Add(s, graph.Add(graph.Mul(x, a), b)), zero),
		graph.Max(graph.Add(graph.Add(graph.Mul(x, a), b), graph.Add(b2, graph.Mul(a2, x2))), zero),
	}
}

// TestFusedAffineReLU checks the affineReLU programs (a single loop over the rows where the
// kernel path has one) bit for bit against op-by-op execution, on every kernel path, and against a
// float64 reference from the formula, on odd feature counts with NaN, infinities and signed zeros
// among the operands; and that the compiler finds the four programs.
func TestFusedAffineReLU(t *testing.T) {
	rng := newRng(72)
	forEachISA(t, func(t *testing.T) {
		for _, dims := range [][]int{{2, 5, 7, 13}, {3, 4, 4, 64}, {1, 3, 5, 91}, {2, 9, 3, 37}, {1, 1, 1, fuseMinSize}} {
			c := dims[3]
			in := make([]*tensors.Tensor, 7)
			for i := range in {
				d := dims
				if i >= 3 {
					d = []int{c}
				}
				in[i] = randTensor(rng, dtypes.Float32, d...)
			}
			// Zeros of either sign, with a products and sums that are exactly ±0, and non-finite values.
			in[0].MutableFlatData(func(flat any) {
				f := flat.([]float32)
				f[0], f[1], f[2], f[len(f)-1] = float32(math.Copysign(0, -1)), 0, float32(math.NaN()), float32(math.Inf(1))
				if len(f) > c+1 {
					f[c], f[c+1] = float32(math.Inf(-1)), 1
				}
			})
			in[4].MutableFlatData(func(flat any) {
				f := flat.([]float32)
				f[0] = float32(math.Copysign(0, -1))
				if c > 1 {
					f[1] = -in[3].Value().([]float32)[1]
				}
			})
			fused, _ := runGraph(t, testCPUWith("fusion=on"), affineReLUChains, in...)
			plain, _ := runGraph(t, testCPUWith("fusion=off"), affineReLUChains, in...)
			f64 := make([]*tensors.Tensor, len(in))
			for i := range in {
				f64[i] = toF64Tensor(t, in[i])
			}
			want, _ := runGraph(t, testCPU(), affineReLUChains, f64...)
			for i := range fused {
				for j := range fused[i] {
					if math.Float64bits(fused[i][j]) != math.Float64bits(plain[i][j]) &&
						!(math.IsNaN(fused[i][j]) && math.IsNaN(plain[i][j])) {
						t.Fatalf("dims %v output %d element %d: fused %v, op by op %v", dims, i, j, fused[i][j], plain[i][j])
					}
				}
				assertClose(t, fused[i], want[i], 1e-5, "dims %v output %d: fused vs float64", dims, i)
			}
		}
	})
	b := testCPU().Builder("affine").(*Builder)
	dims := []int{2, 4, 8, 32}
	var params []backends.Op
	for i := 0; i < 7; i++ {
		d := dims
		if i >= 3 {
			d = []int{1, 1, 1, dims[3]}
		}
		p, err := b.Parameter(fmt.Sprintf("p%d", i), shapes.Make(dtypes.Float32, d...), nil)
		if err != nil {
			t.Fatal(err)
		}
		params = append(params, p)
	}
	must := func(op backends.Op, err error) backends.Op {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	x, s, x2, a, bb, a2, b2 := params[0], params[1], params[2], params[3], params[4], params[5], params[6]
	zero := must(b.Constant([]float32{0}))
	affine := func(x, a, o backends.Op) backends.Op { return must(b.Add(must(b.Mul(x, a)), o)) }
	outs := []backends.Op{
		must(b.Max(affine(x, a, bb), zero)),
		must(b.Max(zero, must(b.Add(s, affine(x, a, bb))))),
		must(b.Max(must(b.Add(affine(x, a, bb), affine(x2, a2, b2))), zero)),
		must(b.Max(must(b.Sub(affine(x, a, bb), s)), zero)), // not of the form
	}
	exe, err := b.Compile(outs, nil)
	if err != nil {
		t.Fatal(err)
	}
	var matched, programs int
	for _, st := range exe.(*Executable).steps {
		if st.fused != nil {
			programs++
			if st.fused.affine != nil {
				matched++
			}
		}
	}
	if programs != 4 || matched != 3 {
		t.Errorf("%d fused programs, %d of the affineReLU form; want 4 and 3", programs, matched)
	}
}

// reluGradChains builds the ReLU gradient programs of a training step (the reluGrad forms) on y, g,
// g2 [B, H, W, C], and one that is not of the form.
func reluGradChains(xs []*graph.Node) []*graph.Node {
	y, g, g2 := xs[0], xs[1], xs[2]
	gr, dt := y.Graph(), y.DType()
	zero := graph.ScalarZero(gr, dt)
	half := graph.Scalar(gr, dt, 0.5)
	return []*graph.Node{
		graph.Where(graph.GreaterOrEqual(y, zero), g, zero),
		graph.Where(graph.GreaterOrEqual(y, zero), graph.Add(g, g2), zero),
		graph.Where(graph.GreaterOrEqual(y, half), g2, graph.Scalar(gr, dt, -1.5)),
		graph.Where(graph.GreaterThan(y, zero), g, zero),
	}
}

// TestFusedReLUGrad checks the reluGrad programs (one loop where the kernel path has one) bit for
// bit against op-by-op execution on every kernel path, and against float64, on odd sizes with NaN,
// infinities, signed zeros and values equal to the threshold; and that the compiler finds them.
func TestFusedReLUGrad(t *testing.T) {
	rng := newRng(73)
	forEachISA(t, func(t *testing.T) {
		for _, dims := range [][]int{{3, 4, 4, 64}, {1, 3, 5, 91}, {2, 9, 3, 37}, {1, 1, 1, fuseMinSize}, {1, 1, 1, fuseMinSize + 17}} {
			in := make([]*tensors.Tensor, 3)
			for i := range in {
				in[i] = randTensor(rng, dtypes.Float32, dims...)
			}
			in[0].MutableFlatData(func(flat any) {
				f := flat.([]float32)
				copy(f, []float32{float32(math.Copysign(0, -1)), 0, float32(math.NaN()), float32(math.Inf(1)),
					float32(math.Inf(-1)), 0.5, -1e-30})
				f[len(f)-1] = 0
			})
			in[1].MutableFlatData(func(flat any) {
				f := flat.([]float32)
				f[1], f[3], f[len(f)-1] = float32(math.Copysign(0, -1)), float32(math.NaN()), float32(math.Inf(-1))
			})
			fused, _ := runGraph(t, testCPUWith("fusion=on"), reluGradChains, in...)
			plain, _ := runGraph(t, testCPUWith("fusion=off"), reluGradChains, in...)
			want, _ := runGraph(t, testCPU(), reluGradChains, toF64Tensor(t, in[0]), toF64Tensor(t, in[1]), toF64Tensor(t, in[2]))
			for i := range fused {
				for j := range fused[i] {
					if math.Float64bits(fused[i][j]) != math.Float64bits(plain[i][j]) &&
						!(math.IsNaN(fused[i][j]) && math.IsNaN(plain[i][j])) {
						t.Fatalf("dims %v output %d element %d: fused %v, op by op %v", dims, i, j, fused[i][j], plain[i][j])
					}
				}
				assertClose(t, fused[i], want[i], 1e-6, "dims %v output %d: fused vs float64", dims, i)
			}
		}
	})
	b := testCPU().Builder("relugrad").(*Builder)
	must := func(op backends.Op, err error) backends.Op {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	sh := shapes.Make(dtypes.Float32, 2, 4, 8, 32)
	y := must(b.Parameter("y", sh, nil))
	g := must(b.Parameter("g", sh, nil))
	g2 := must(b.Parameter("g2", sh, nil))
	zero := must(b.Constant([]float32{0}))
	outs := []backends.Op{
		must(b.Where(must(b.GreaterOrEqual(y, zero)), g, zero)),
		must(b.Where(must(b.GreaterOrEqual(y, zero)), must(b.Add(g, g2)), zero)),
		must(b.Where(must(b.GreaterOrEqual(y, zero)), must(b.Sub(g, g2)), zero)), // not of the form
		must(b.Where(must(b.LessThan(y, zero)), g, zero)),                        // not of the form
	}
	exe, err := b.Compile(outs, nil)
	if err != nil {
		t.Fatal(err)
	}
	var matched, programs int
	for _, st := range exe.(*Executable).steps {
		if st.fused != nil {
			programs++
			if st.fused.reluGrad != nil {
				matched++
			}
		}
	}
	if programs != 4 || matched != 2 {
		t.Errorf("%d fused programs, %d of the reluGrad form; want 4 and 2", programs, matched)
	}
}
