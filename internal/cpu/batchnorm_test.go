package cpu

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/ifa-toolkit/ifa/internal/cpu/kernels"
)

// bnRef is batch norm over the last axis written from the formulas, in float64: x ([rows, c]) has
// per-feature mean μ and biased variance σ², y = (x−μ)/√(σ²+ε)·γ + β; for an upstream gradient g,
// ∂β = Σg, ∂γ = Σg·x̂, ∂x = γ/√(σ²+ε)·(g − ∂β/N − x̂·∂γ/N). gAbs is Σ|g·x̂| per feature (the scale of
// ∂γ's rounding error).
type bnRef struct {
	y, mean, variance, gx, gScale, gOffset, gAbs []float64
}

// When gradStats is given, it holds the mean and variance ([c] each) the gradient is taken at (the
// gradient op's own inputs) instead of the batch's.
func bnReference(x, scale, offset, g []float64, c int, eps float64, gradStats ...[]float64) bnRef {
	rows := len(x) / c
	n := float64(rows)
	r := bnRef{y: make([]float64, len(x)), gx: make([]float64, len(x)), mean: make([]float64, c),
		variance: make([]float64, c), gScale: make([]float64, c), gOffset: make([]float64, c), gAbs: make([]float64, c)}
	for j := range c {
		for i := j; i < len(x); i += c {
			r.mean[j] += x[i]
		}
		r.mean[j] /= n
		for i := j; i < len(x); i += c {
			r.variance[j] += (x[i] - r.mean[j]) * (x[i] - r.mean[j])
		}
		r.variance[j] /= n
		inv := 1 / math.Sqrt(r.variance[j]+eps)
		for i := j; i < len(x); i += c {
			r.y[i] = (x[i]-r.mean[j])*inv*scale[j] + offset[j]
		}
		mean := r.mean[j]
		if len(gradStats) == 2 {
			mean, inv = gradStats[0][j], 1/math.Sqrt(gradStats[1][j]+eps)
		}
		for i := j; i < len(x); i += c {
			xh := (x[i] - mean) * inv
			r.gOffset[j] += g[i]
			r.gScale[j] += g[i] * xh
			r.gAbs[j] += math.Abs(g[i] * xh)
		}
		for i := j; i < len(x); i += c {
			xh := (x[i] - mean) * inv
			r.gx[i] = scale[j] * inv * (g[i] - r.gOffset[j]/n - xh*r.gScale[j]/n)
		}
	}
	return r
}

// bnCase draws x ([rows, c], float32 values) with per-feature means around offset (±spread) and
// standard deviations in [0.5, 2], and γ, β, g.
func bnCase(rng *rand.Rand, rows, c int, offset float64) (x, scale, bias, g []float64) {
	x = make([]float64, rows*c)
	g = make([]float64, rows*c)
	mu := make([]float64, c)
	sd := make([]float64, c)
	for j := range c {
		mu[j] = offset * (1 + 0.5*rng.Float64())
		if rng.IntN(2) == 0 {
			mu[j] = -mu[j]
		}
		sd[j] = 0.5 + 1.5*rng.Float64()
	}
	for i := range x {
		x[i] = float64(float32(mu[i%c] + sd[i%c]*rng.NormFloat64()))
		g[i] = float64(float32(rng.NormFloat64()))
	}
	scale = make([]float64, c)
	bias = make([]float64, c)
	for j := range c {
		scale[j] = float64(float32(0.5 + rng.Float64()))
		bias[j] = float64(float32(rng.Float64()*2 - 1))
	}
	return x, scale, bias, g
}

func f32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// checkRel checks |got−want| ≤ tol·scale[i] elementwise.
func checkRel(t *testing.T, what string, got, want, scale []float64, tol float64) {
	t.Helper()
	for i := range want {
		if d := math.Abs(got[i] - want[i]); !(d <= tol*scale[i]) {
			t.Fatalf("%s[%d] = %.9g, reference %.9g (|diff| %.3g > %.3g)", what, i, got[i], want[i], d, tol*scale[i])
		}
	}
}

func onePlusAbs(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = 1 + math.Abs(x)
	}
	return out
}

// TestBatchNormLastAxisVsReference runs the float32 channels-last BatchNormForTraining and
// BatchNormGradient ops on the cpu backend, on odd feature counts, row counts that split unevenly
// over chunks and goroutines, ranks 2 and 4, and per-feature means up to 10⁴ standard deviations
// away from 0, against the float64 formulas.
func TestBatchNormLastAxisVsReference(t *testing.T) {
	forEachISA(t, func(t *testing.T) {
		cases := []struct {
			dims   []int
			offset float64
		}{
			{[]int{1, 5}, 0}, {[]int{7, 3}, 0.5}, {[]int{37, 13}, 2}, {[]int{3001, 64}, 1}, {[]int{1000, 9}, 1e3},
			{[]int{3, 5, 7, 11}, 1e4}, {[]int{2, 33, 17, 24}, 3}, {[]int{513, 130}, 1e3}, {[]int{64, 8}, 1e4}, {[]int{2000, 1}, 3}, {[]int{333, 47}, 1e2}, {[]int{65, 200}, 1},
		}
		rng := newRng(31)
		const eps = 1e-5
		for _, tc := range cases {
			c := tc.dims[len(tc.dims)-1]
			rows := 1
			for _, d := range tc.dims {
				rows *= d
			}
			rows /= c
			x, scale, bias, g := bnCase(rng, rows, c, tc.offset)
			ref := bnReference(x, scale, bias, g, c, eps)
			in := func(v []float64, dims ...int) *tensors.Tensor {
				return tensors.FromFlatDataAndDimensions(f32s(v), dims...)
			}
			got, _ := runGraph(t, testCPU(), func(xs []*graph.Node) []*graph.Node {
				y, m, v := graph.InternalBatchNormForTraining(xs[0], xs[1], xs[2], eps, -1)
				gx, gs, gb := graph.InternalBatchNormGradient(xs[0], xs[1], m, v, xs[3], eps, -1)
				inf := graph.InternalBatchNormForInference(xs[0], xs[1], xs[2], m, v, eps, -1)
				// The same ops on intermediate copies used for the last time, whose storage the outputs
				// may take over (in place).
				own := func(v *graph.Node) *graph.Node { return graph.Neg(graph.Neg(v)) }
				y2, _, _ := graph.InternalBatchNormForTraining(own(xs[0]), xs[1], xs[2], eps, -1)
				gx2, _, _ := graph.InternalBatchNormGradient(xs[0], xs[1], m, v, own(xs[3]), eps, -1)
				gx3, _, _ := graph.InternalBatchNormGradient(own(xs[0]), xs[1], m, v, xs[3], eps, -1)
				inf2 := graph.InternalBatchNormForInference(own(xs[0]), xs[1], xs[2], m, v, eps, -1)
				return []*graph.Node{y, m, v, gx, gs, gb, inf, y2, gx2, gx3, inf2}
			}, in(x, tc.dims...), in(scale, c), in(bias, c), in(g, tc.dims...))
			for i, want := range [][]float64{got[0], got[3], got[3], got[6]} {
				if !slices.Equal(got[7+i], want) {
					t.Fatalf("%v: in-place output %d differs", tc.dims, 7+i)
				}
			}
			name := sprintf("%v offset %g", tc.dims, tc.offset)
			absMean := make([]float64, c)
			for j := range c {
				absMean[j] = math.Max(1, math.Abs(ref.mean[j]))
			}
			checkRel(t, name+": mean", got[1], ref.mean, absMean, 2e-7)
			checkRel(t, name+": variance", got[2], ref.variance, ref.variance, 2e-5)
			checkRel(t, name+": y", got[0], ref.y, onePlusAbs(ref.y), 2e-5)
			// Inference reads μ rounded to float32, which moves y by up to |μ|·2⁻²⁴·γ/σ.
			infScale := make([]float64, len(x))
			for i := range x {
				j := i % c
				infScale[i] = 2e-5*(1+math.Abs(ref.y[i])) + 1.2e-7*math.Abs(ref.mean[j])*scale[j]/math.Sqrt(ref.variance[j]+eps)
			}
			checkRel(t, name+": inference y", got[6], ref.y, infScale, 1)
			// The gradient op is defined at the mean and variance it is given: the float32 ones.
			ref = bnReference(x, scale, bias, g, c, eps, got[1], got[2])
			checkRel(t, name+": ∂β", got[5], ref.gOffset, onePlusAbs(ref.gAbs), 1e-5)
			checkRel(t, name+": ∂γ", got[4], ref.gScale, onePlusAbs(ref.gAbs), 1e-5)
			// ∂x's terms are of the size of γ/σ·(|g| + mean|g| + |x̂|·mean|g·x̂|).
			gxScale := make([]float64, len(x))
			for i := range x {
				j := i % c
				inv := 1 / math.Sqrt(got[2][j]+eps)
				xh := math.Abs(x[i]-got[1][j]) * inv
				nr := float64(rows)
				gxScale[i] = scale[j] * inv * (math.Abs(g[i]) + math.Abs(ref.gOffset[j])/nr + xh*ref.gAbs[j]/nr)
			}
			checkRel(t, name+": ∂x", got[3], ref.gx, gxScale, 2e-5)
		}
	})
}

// TestBatchNormLastAxisNaiveVarianceFails makes sure the large-offset cases above are hard: the
// textbook E[x²] − E[x]² in float32 is far off for them.
func TestBatchNormLastAxisNaiveVarianceFails(t *testing.T) {
	x, _, _, _ := bnCase(newRng(3), 64, 8, 1e4)
	ref := bnReference(x, make([]float64, 8), make([]float64, 8), make([]float64, len(x)), 8, 0)
	worst := 0.0
	for j := range 8 {
		var s, s2 float32
		for i := j; i < len(x); i += 8 {
			s += float32(x[i])
			s2 += float32(x[i]) * float32(x[i])
		}
		m := s / 64
		v := float64(s2/64 - m*m)
		worst = math.Max(worst, math.Abs(v-ref.variance[j])/ref.variance[j])
	}
	if worst < 1e-2 {
		t.Fatalf("float32 E[x²]−E[x]² has relative error %.3g only: the offset test is too easy", worst)
	}
}

// TestBatchNormLastAxisDeterministic checks that the statistics and gradients are bit-identical
// whatever the number of goroutines.
func TestBatchNormLastAxisDeterministic(t *testing.T) {
	forEachISA(t, func(t *testing.T) {
		const rows, c = 4099, 24
		x64, scale64, bias64, g64 := bnCase(newRng(8), rows, c, 5)
		x, scale, bias, g := f32s(x64), f32s(scale64), f32s(bias64), f32s(g64)
		run := func(procs int) [][]float32 {
			old := runtime.GOMAXPROCS(procs)
			defer runtime.GOMAXPROCS(old)
			y, m, v := make([]float32, rows*c), make([]float32, c), make([]float32, c)
			bnTrainLastAxis(bnTrainOut{y: y}, m, v, x, scale, bias, 1e-5, rows, c)
			gx, gs, gb := make([]float32, rows*c), make([]float32, c), make([]float32, c)
			bnGradLastAxis(gx, gs, gb, x, scale, m, v, g, 1e-5, rows, c)
			return [][]float32{y, m, v, gx, gs, gb}
		}
		one := run(1)
		for _, procs := range []int{2, 3, 7} {
			for i, r := range run(procs) {
				if !slices.Equal(r, one[i]) {
					t.Fatalf("output %d differs between 1 and %d goroutines", i, procs)
				}
			}
		}
	})
}

// TestBatchNormRowKernels compares the row kernels in use (SIMD where built) with the portable
// ones, on feature counts around the vector width and odd and even row counts.
func TestBatchNormRowKernels(t *testing.T) {
	forEachISA(t, func(t *testing.T) {
		rng := newRng(12)
		rnd := func(n int, lo, hi float64) []float32 {
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(lo + (hi-lo)*rng.Float64())
			}
			return v
		}
		close32 := func(what string, got, want []float32, tol float64) {
			t.Helper()
			for i := range want {
				if d := math.Abs(float64(got[i] - want[i])); d > tol*(1+math.Abs(float64(want[i]))) {
					t.Fatalf("%s[%d] = %v, portable %v", what, i, got[i], want[i])
				}
			}
		}
		for _, c := range []int{1, 7, 8, 9, 15, 16, 17, 23, 31, 33, 64, 100} {
			for _, rows := range []int{1, 2, 5, 32, 1025} {
				x, g := rnd(rows*c, 2, 4), rnd(rows*c, -1, 1)
				k, lo, a, b, m := rnd(c, 2, 4), rnd(c, -1e-6, 1e-6), rnd(c, -2, 2), rnd(c, -1, 1), rnd(c, 2, 4)
				kb, kd := rnd(c, -1, 1), rnd(c, -1, 1)
				s1, s2, w1, w2 := make([]float32, c), make([]float32, c), make([]float32, c), make([]float32, c)
				name := sprintf("c=%d rows=%d", c, rows)
				bnMomentsBlock(s1, s2, x, k)
				bnMomentsBlockGo(w1, w2, x, k)
				close32(name+" moments Σ", s1, w1, 1e-5*float64(rows))
				close32(name+" moments Σ²", s2, w2, 1e-5*float64(rows))
				bnGradSumsBlock(s1, s2, g, x, m)
				bnGradSumsBlockGo(w1, w2, g, x, m)
				close32(name+" grad Σg", s1, w1, 1e-5*float64(rows))
				close32(name+" grad Σg(x-m)", s2, w2, 1e-5*float64(rows))
				y, w := make([]float32, rows*c), make([]float32, rows*c)
				bnNormalizeRows(y, x, k, lo, a, b)
				bnNormalizeRowsGo(w, x, k, lo, a, b)
				close32(name+" normalize", y, w, 1e-6)
				bnGradRows(y, g, x, m, a, kb, kd)
				bnGradRowsGo(w, g, x, m, a, kb, kd)
				close32(name+" ∂x", y, w, 1e-6)
			}
		}
	})
}

// BenchmarkBatchNormTrainStep times a training batch norm, forward and backward, on a resnet8x4
// stage-1 activation ([64, 32, 32, 64] float32): with the backend's ops, and written as graph ops
// (mean, centring, variance, normalisation, and their autodiff gradient). GB/s counts one read of x.
func BenchmarkBatchNormTrainStep(b *testing.B) {
	rng := newRng(46)
	x := randTensor(rng, dtypes.Float32, 64, 32, 32, 64)
	w := randTensor(rng, dtypes.Float32, 64, 32, 32, 64)
	scale := randTensor(rng, dtypes.Float32, 64)
	offset := randTensor(rng, dtypes.Float32, 64)
	const eps = 1e-5
	step := func(norm func(x, s, o *graph.Node) *graph.Node) func(xs []*graph.Node) []*graph.Node {
		return func(xs []*graph.Node) []*graph.Node {
			y := norm(xs[0], xs[2], xs[3])
			loss := graph.ReduceAllSum(graph.Mul(y, xs[1]))
			return append([]*graph.Node{y}, graph.Gradient(loss, xs[0], xs[2], xs[3])...)
		}
	}
	b.Run("backend-op", func(b *testing.B) {
		benchExec(b, testCPU(), 4*float64(x.Shape().Size()), "GB/s", step(func(x, s, o *graph.Node) *graph.Node {
			y, _, _ := graph.InternalBatchNormForTraining(x, s, o, eps, -1)
			return y
		}), x, w, scale, offset)
	})
	b.Run("graph-ops", func(b *testing.B) {
		benchExec(b, testCPU(), 4*float64(x.Shape().Size()), "GB/s", step(func(x, s, o *graph.Node) *graph.Node {
			mean := graph.ReduceAndKeep(x, graph.ReduceMean, 0, 1, 2)
			c := graph.Sub(x, mean)
			v := graph.ReduceAndKeep(graph.Square(c), graph.ReduceMean, 0, 1, 2)
			inv := graph.Inverse(graph.Sqrt(graph.AddScalar(v, eps)))
			return graph.Add(graph.Mul(c, graph.Mul(inv, graph.Reshape(s, 1, 1, 1, 64))), graph.Reshape(o, 1, 1, 1, 64))
		}), x, w, scale, offset)
	})
}

// TestOpStatsBatchNormShape: the op statistics list a batch norm under its operand's shape (its
// first output's), not under the tuple's missing one.
func TestOpStatsBatchNormShape(t *testing.T) {
	stats := testCPUWith("opstats=on").(*Backend)
	stats.EnableOpStats(true) // clears earlier runs
	x := randTensor(newRng(33), dtypes.Float32, 6, 5, 8)
	s := randTensor(newRng(34), dtypes.Float32, 8)
	runGraph(t, stats, func(xs []*graph.Node) []*graph.Node {
		y, _, _ := graph.InternalBatchNormForTraining(xs[0], xs[1], xs[1], 1e-5, -1)
		return []*graph.Node{y}
	}, x, s)
	report := stats.OpStatsReport(10)
	if !strings.Contains(report, "(Float32)[6 5 8]") || strings.Contains(report, "InvalidDType") {
		t.Errorf("batch norm not listed under [6 5 8]:\n%s", report)
	}
}

// bnReLUStep is a training batch norm over the last axis and its ReLU, with the gradient of a
// weighted sum of the ReLU's output: the ReLU is computed by the batch norm when fusion is on.
func bnReLUStep(xs []*graph.Node) []*graph.Node {
	x, w, scale, offset := xs[0], xs[1], xs[2], xs[3]
	y, mean, variance := graph.InternalBatchNormForTraining(x, scale, offset, 1e-5, -1)
	r := graph.Max(y, graph.ScalarZero(x.Graph(), x.DType()))
	loss := graph.ReduceAllSum(graph.Mul(r, w))
	return append([]*graph.Node{r, y, mean, variance}, graph.Gradient(loss, x, scale, offset)...)
}

// bnResidualReLUStep is a residual block's end, ReLU(batch norm of x + s), with the gradient of a
// weighted sum of its output: the batch norm computes the sum and the ReLU when fusion is on.
func bnResidualReLUStep(xs []*graph.Node) []*graph.Node {
	x, w, scale, offset, s := xs[0], xs[1], xs[2], xs[3], xs[4]
	y, mean, variance := graph.InternalBatchNormForTraining(x, scale, offset, 1e-5, -1)
	sum := graph.Add(y, s)
	r := graph.Max(sum, graph.ScalarZero(x.Graph(), x.DType()))
	loss := graph.ReduceAllSum(graph.Mul(r, w))
	return append([]*graph.Node{r, sum, mean, variance}, graph.Gradient(loss, x, scale, offset, s)...)
}

// TestBatchNormReLUFused checks a training batch norm that also writes its ReLU (fuseBatchNormReLU)
// bit for bit against op-by-op execution on every kernel path, and its ReLU against max(y, 0) of
// the float64 batch norm, on feature counts that are and are not multiples of 16, with a feature
// whose values are all equal (y = offset exactly, 0 or -0 there) and a NaN in another.
func TestBatchNormReLUFused(t *testing.T) {
	rng := newRng(47)
	forEachISA(t, func(t *testing.T) {
		for _, dims := range [][]int{{2, 3, 5, 16}, {4, 4, 4, 37}, {3, 5, 2, 64}, {64, 3}} {
			c := dims[len(dims)-1]
			x := randTensor(rng, dtypes.Float32, dims...)
			w := randTensor(rng, dtypes.Float32, dims...)
			scale := randTensor(rng, dtypes.Float32, c)
			offset := randTensor(rng, dtypes.Float32, c)
			x.MutableFlatData(func(flat any) {
				f := flat.([]float32)
				for i := 0; i < len(f); i += c {
					f[i] = 0.5 // feature 0 constant: y = offset
				}
				if c > 2 {
					f[len(f)-1] = float32(math.NaN())
				}
			})
			offset.MutableFlatData(func(flat any) { flat.([]float32)[0] = float32(math.Copysign(0, -1)) })
			res := randTensor(rng, dtypes.Float32, dims...)
			res.MutableFlatData(func(flat any) {
				f := flat.([]float32)
				f[0], f[c] = float32(math.Copysign(0, -1)), 0
			})
			for _, step := range []graphFn{bnReLUStep, bnResidualReLUStep} {
				fused, _ := runGraph(t, testCPUWith("fusion=on"), step, x, w, scale, offset, res)
				plain, _ := runGraph(t, testCPUWith("fusion=off"), step, x, w, scale, offset, res)
				for i := range fused {
					for j := range fused[i] {
						if math.Float64bits(fused[i][j]) != math.Float64bits(plain[i][j]) &&
							!(math.IsNaN(fused[i][j]) && math.IsNaN(plain[i][j])) {
							t.Fatalf("dims %v output %d element %d: fused %v, op by op %v", dims, i, j, fused[i][j], plain[i][j])
						}
					}
				}
				want, _ := runGraph(t, testCPU(), step, toF64Tensor(t, x), toF64Tensor(t, w), toF64Tensor(t, scale),
					toF64Tensor(t, offset), toF64Tensor(t, res))
				for j, v := range want[1] {
					if !math.IsNaN(v) {
						want[1][j] = max(v, 0)
					}
				}
				assertClose(t, fused[0], want[1], 1e-4, "dims %v: ReLU vs max(y (+ s), 0) in float64", dims)
			}
		}
	})
	// The compiled step: the ReLU takes the batch norm's output.
	b := testCPU().Builder("bnrelu").(*Builder)
	must := func(op backends.Op, err error) backends.Op {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	x := must(b.Parameter("x", shapes.Make(dtypes.Float32, 8, 4, 4, 16), nil))
	s := must(b.Parameter("s", shapes.Make(dtypes.Float32, 16), nil))
	y, _, _, err := b.BatchNormForTraining(x, s, s, 1e-5, 3)
	if err != nil {
		t.Fatal(err)
	}
	relu := must(b.Max(y, must(b.Constant([]float32{0}))))
	notRelu := must(b.Max(y, must(b.Constant([]float32{0.5}))))
	// A residual block's end: the sum and its ReLU come from the second batch norm.
	y2, _, _, err := b.BatchNormForTraining(x, s, s, 1e-5, 3)
	if err != nil {
		t.Fatal(err)
	}
	sum := must(b.Add(y2, x))
	relu2 := must(b.Max(sum, must(b.Constant([]float32{0}))))
	exe, err := b.Compile([]backends.Op{relu, notRelu, y, relu2, sum}, nil)
	if err != nil {
		t.Fatal(err)
	}
	taken, sums := 0, 0
	for _, st := range exe.(*Executable).steps {
		if st.reluOf != nil {
			taken++
		}
		if st.sumOf != nil {
			sums++
		}
	}
	if taken != 2 || sums != 1 {
		t.Errorf("%d ReLUs and %d sums taken from the batch norms, want 2 and 1", taken, sums)
	}
}

// bnReLUGradStep is a training batch norm and its ReLU r, with the gradient of a weighted sum of
// r reversed along the first axis (so that r's gradient arrives as one tensor, as from a
// convolution), without y among the outputs: with fusion on, the batch norm writes the mask of
// y ≥ 0 instead of y (see fuseReLUMask).
func bnReLUGradStep(xs []*graph.Node) []*graph.Node {
	x, w, scale, offset := xs[0], xs[1], xs[2], xs[3]
	y, _, _ := graph.InternalBatchNormForTraining(x, scale, offset, 1e-5, -1)
	r := graph.Max(y, graph.ScalarZero(x.Graph(), x.DType()))
	loss := graph.ReduceAllSum(graph.Mul(graph.Reverse(r, 0), w))
	return append([]*graph.Node{r}, graph.Gradient(loss, x, scale, offset)...)
}

// bnReLUTwoWayGradStep is bnReLUGradStep with the ReLU's output going two ways (reversed along
// the first and the last axis), so that its gradient is a sum of two.
func bnReLUTwoWayGradStep(xs []*graph.Node) []*graph.Node {
	x, w, scale, offset := xs[0], xs[1], xs[2], xs[3]
	y, _, _ := graph.InternalBatchNormForTraining(x, scale, offset, 1e-5, -1)
	r := graph.Max(y, graph.ScalarZero(x.Graph(), x.DType()))
	loss := graph.Add(graph.ReduceAllSum(graph.Mul(graph.Reverse(r, 0), w)),
		graph.ReduceAllSum(graph.Mul(graph.Reverse(r, x.Rank()-1), x)))
	return append([]*graph.Node{r}, graph.Gradient(loss, x, scale, offset)...)
}

// bnShortcutReLUGradStep is bnResidualReLUGradStep with the residual normalised by a batch norm of
// its own (a projection shortcut's), which, with fusion on, the first batch norm computes from
// that one's operand (see fuseShortcutNorm).
func bnShortcutReLUGradStep(xs []*graph.Node) []*graph.Node {
	x, w, scale, offset, s := xs[0], xs[1], xs[2], xs[3], xs[4]
	y, _, _ := graph.InternalBatchNormForTraining(x, scale, offset, 1e-5, -1)
	ys, _, _ := graph.InternalBatchNormForTraining(s, offset, scale, 1e-3, -1)
	r := graph.Max(graph.Add(y, ys), graph.ScalarZero(x.Graph(), x.DType()))
	last := x.Rank() - 1
	loss := graph.Add(graph.ReduceAllSum(graph.Mul(graph.Reverse(r, 0), w)),
		graph.ReduceAllSum(graph.Mul(graph.Reverse(r, last), s)))
	return append([]*graph.Node{r}, graph.Gradient(loss, x, scale, offset, s)...)
}

// bnResidualReLUGradStep is bnReLUGradStep after a residual sum, ReLU(y + s), whose output goes
// two ways (reversed along the first and the last axis), so that its gradient is a sum of two.
func bnResidualReLUGradStep(xs []*graph.Node) []*graph.Node {
	x, w, scale, offset, s := xs[0], xs[1], xs[2], xs[3], xs[4]
	y, _, _ := graph.InternalBatchNormForTraining(x, scale, offset, 1e-5, -1)
	r := graph.Max(graph.Add(y, s), graph.ScalarZero(x.Graph(), x.DType()))
	last := x.Rank() - 1
	loss := graph.Add(graph.ReduceAllSum(graph.Mul(graph.Reverse(r, 0), w)),
		graph.ReduceAllSum(graph.Mul(graph.Reverse(r, last), s)))
	return append([]*graph.Node{r}, graph.Gradient(loss, x, scale, offset, s)...)
}

// BenchmarkBatchNormReLUTrainStep times a training batch norm and its ReLU (plain, after a
// residual sum, and after a sum with a shortcut's batch norm), forward and backward, on a resnet8x4
// stage-1 activation ([64, 32, 32, 64] float32), as the fused program runs them. GB/s counts one
// read of x.
func BenchmarkBatchNormReLUTrainStep(b *testing.B) {
	rng := newRng(48)
	in := make([]*tensors.Tensor, 5)
	for i := range in {
		in[i] = randTensor(rng, dtypes.Float32, 64, 32, 32, 64)
	}
	in[2], in[3] = randTensor(rng, dtypes.Float32, 64), randTensor(rng, dtypes.Float32, 64)
	n := 4 * float64(in[0].Shape().Size())
	b.Run("plain", func(b *testing.B) { benchExec(b, testCPU(), n, "GB/s", bnReLUGradStep, in[:4]...) })
	b.Run("residual", func(b *testing.B) { benchExec(b, testCPU(), n, "GB/s", bnResidualReLUGradStep, in...) })
	b.Run("shortcut", func(b *testing.B) { benchExec(b, testCPU(), n, "GB/s", bnShortcutReLUGradStep, in...) })
}

// TestBatchNormReLUMaskFused checks the training steps whose batch norm writes the mask of y ≥ 0
// instead of y (fuseReLUMask), plain, going two ways and after a residual sum (also one normalised
// by a shortcut's batch norm, see fuseShortcutNorm), bit for bit against op-by-op
// execution on every kernel path and with 1 to 3 goroutines, on feature counts that are and are not
// multiples of 16 (and rows that do not fill a mask word), with y exactly ±0 on a feature, NaN
// and infinities; and that the compiler applies it only where y has no other use.
func TestBatchNormReLUMaskFused(t *testing.T) {
	defer kernels.SetMaxThreads(kernels.SetMaxThreads(0))
	defer func(old func(int) bool) { maskFusionPays = old }(maskFusionPays)
	maskFusionPays = func(int) bool { return true } // the fused programs on every path and feature count
	rng := newRng(49)
	forEachISA(t, func(t *testing.T) {
		for _, dims := range [][]int{{2, 8, 8, 16}, {4, 4, 4, 37}, {3, 5, 2, 64}, {1, 7, 7, 48}, {1100, 1}, {5, 3, 3, 25},
			{2, 1000, 37}} { // the last one split over the workers
			c := dims[len(dims)-1]
			in := make([]*tensors.Tensor, 5)
			for i := range in {
				in[i] = randTensor(rng, dtypes.Float32, dims...)
			}
			in[2], in[3] = randTensor(rng, dtypes.Float32, c), randTensor(rng, dtypes.Float32, c)
			in[0].MutableFlatData(func(flat any) {
				f := flat.([]float32)
				if c > 2 {
					for i := 0; i < len(f); i += c {
						f[i] = 0.5 // feature 0 constant: y = offset
					}
					f[len(f)-1] = float32(math.NaN())
				}
			})
			in[3].MutableFlatData(func(flat any) { flat.([]float32)[0] = float32(math.Copysign(0, -1)) })
			in[1].MutableFlatData(func(flat any) {
				f := flat.([]float32)
				f[1], f[2], f[len(f)-2] = float32(math.Inf(1)), float32(math.NaN()), float32(math.Copysign(0, -1))
			})
			in[4].MutableFlatData(func(flat any) {
				f := flat.([]float32)
				f[0], f[len(f)/2] = float32(math.Copysign(0, -1)), float32(math.Inf(-1))
			})
			for si, step := range []graphFn{bnReLUGradStep, bnResidualReLUGradStep, bnReLUTwoWayGradStep,
				bnShortcutReLUGradStep} {
				ins := in[:4+si%2]
				plain, _ := runGraph(t, testCPUWith("fusion=off"), step, ins...)
				for _, procs := range []int{1, 2, 3} {
					old := runtime.GOMAXPROCS(procs)
					fused, _ := runGraph(t, testCPUWith("fusion=on"), step, ins...)
					runtime.GOMAXPROCS(old)
					for i := range fused {
						for j := range fused[i] {
							if math.Float64bits(fused[i][j]) != math.Float64bits(plain[i][j]) &&
								!(math.IsNaN(fused[i][j]) && math.IsNaN(plain[i][j])) {
								t.Fatalf("GOMAXPROCS %d, dims %v, step %d, output %d element %d: fused %v, op by op %v", procs, dims, si,
									i, j, fused[i][j], plain[i][j])
							}
						}
					}
				}
			}
		}
	})
	// The compiled steps: the mask replaces y only where y has no other use.
	must := func(op backends.Op, err error) backends.Op {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	sh := shapes.Make(dtypes.Float32, 8, 4, 4, 16)
	for _, tc := range []struct {
		name     string
		residual bool
		other    func(b *Builder, y, g, zero backends.Op) []backends.Op // further outputs reading y
		want     bool
	}{
		{"plain", false, nil, true},
		{"residual", true, nil, true},
		{"y is an output", false, func(b *Builder, y, g, zero backends.Op) []backends.Op { return []backends.Op{y} }, false},
		{"another threshold", false, func(b *Builder, y, g, zero backends.Op) []backends.Op {
			half := must(b.Constant([]float32{0.5}))
			return []backends.Op{must(b.Where(must(b.GreaterOrEqual(y, half)), g, zero))}
		}, false},
		{"another use", true, func(b *Builder, y, g, zero backends.Op) []backends.Op {
			return []backends.Op{must(b.Mul(y, y))}
		}, false},
		{"shortcut", true, nil, true},
		{"shortcut is an output", true, nil, true},
		{"shortcut used twice", true, nil, true},
	} {
		b := testCPU().Builder("bnmask").(*Builder)
		x := must(b.Parameter("x", sh, nil))
		g := must(b.Parameter("g", sh, nil))
		s := must(b.Parameter("s", shapes.Make(dtypes.Float32, 16), nil))
		zero := must(b.Constant([]float32{0}))
		var ys backends.Op
		var err error
		if strings.HasPrefix(tc.name, "shortcut") { // the shortcut's batch norm first, as in a ResNet
			if ys, _, _, err = b.BatchNormForTraining(g, s, s, 1e-3, 3); err != nil {
				t.Fatal(err)
			}
		}
		y, _, _, err := b.BatchNormForTraining(x, s, s, 1e-5, 3)
		if err != nil {
			t.Fatal(err)
		}
		if ys != nil {
			y = must(b.Add(y, ys))
		} else if tc.residual {
			y = must(b.Add(y, g))
		}
		outs := []backends.Op{must(b.Max(y, zero)), must(b.Where(must(b.GreaterOrEqual(y, zero)), g, zero))}
		if tc.other != nil {
			outs = append(outs, tc.other(b, y, g, zero)...)
		}
		switch tc.name {
		case "shortcut is an output":
			outs = append(outs, ys)
		case "shortcut used twice":
			outs = append(outs, must(b.Mul(ys, x)))
		}
		exe, err := b.Compile(outs, nil)
		if err != nil {
			t.Fatal(err)
		}
		var bnMask, progMask, coefs, resNorm bool
		for _, st := range exe.(*Executable).steps {
			if p, ok := st.n.params.(batchNormParams); ok && st.n.op == backends.OpTypeBatchNormForTraining {
				bnMask = bnMask || p.mask
				coefs, resNorm = coefs || p.coefs, resNorm || p.resNorm
			}
			if st.fused != nil && st.fused.reluGrad != nil {
				progMask = progMask || st.fused.reluGrad.mask
			}
		}
		if bnMask != tc.want || progMask != tc.want {
			t.Errorf("%s: batch norm writes the mask %v, ReLU gradient reads it %v; want %v", tc.name, bnMask, progMask,
				tc.want)
		}
		if want := tc.name == "shortcut"; coefs != want || resNorm != want {
			t.Errorf("%s: shortcut writes its coefficients %v, residual normalised in the sum %v; want %v", tc.name,
				coefs, resNorm, want)
		}
	}
}

// TestBatchNormReLUMaskRows checks the normalisation loops that write the ReLU and the mask of
// v ≥ 0 against bnNormalizeRows on the same kernel path (bit for bit) and the float64 formula, and
// the ReLU-gradient loops that read the mask against a plain selection, on every kernel path.
func TestBatchNormReLUMaskRows(t *testing.T) {
	forEachISA(t, func(t *testing.T) {
		rng := newRng(50)
		rnd := func(n int, lo, hi float64) []float32 {
			v := make([]float32, n)
			for i := range v {
				v[i] = float32(lo + (hi-lo)*rng.Float64())
			}
			return v
		}
		for _, c := range []int{1, 7, 16, 17, 32, 48, 100} {
			for _, rows := range []int{1, 2, 5, 33} {
				n := rows * c
				x, s := rnd(n, -2, 2), rnd(n, -1, 1)
				hi, lo, a, b := rnd(c, -0.5, 0.5), rnd(c, -1e-6, 1e-6), rnd(c, -2, 2), rnd(c, -1, 1)
				x[0], lo[0], b[0] = hi[0], 0, float32(math.Copysign(0, -1)) // v = ±0
				x[n-1] = float32(math.NaN())
				if n > 2 {
					x[1] = float32(math.Inf(-1))
				}
				for _, res := range [][]float32{nil, s} {
					name := sprintf("c=%d rows=%d residual=%v", c, rows, res != nil)
					mask := make([]uint32, (n+31)/32+1)
					for i := range mask {
						mask[i] = 0xdeadbeef
					}
					relu := make([]float32, n)
					bnNormalizeReLUMaskRows(mask, relu, x, res, hi, lo, a, b)
					v := make([]float32, n)
					bnNormalizeRows(v, x, hi, lo, a, b)
					if res != nil {
						addRowsTo(v, res, n)
					}
					for i := range n {
						j := i % c
						want := ((float64(x[i])-float64(hi[j]))-float64(lo[j]))*float64(a[j]) + float64(b[j])
						if res != nil {
							want += float64(res[i])
						}
						bit := mask[i/32]>>(i%32)&1 == 1
						if math.Float32bits(relu[i]) != math.Float32bits(max(v[i], 0)) || bit != (v[i] >= 0) {
							t.Fatalf("%s [%d]: relu %v mask %v, want %v and %v (v = %v)", name, i, relu[i], bit,
								max(v[i], 0), v[i] >= 0, v[i])
						}
						if !math.IsNaN(want) && math.Abs(float64(v[i])-want) > 1e-5*(1+math.Abs(want)) {
							t.Fatalf("%s [%d]: v %v, float64 %v", name, i, v[i], want)
						}
					}
					if mask[len(mask)-1] != 0xdeadbeef {
						t.Fatalf("%s: wrote past the mask", name)
					}
					// The gradient from the mask, then g + g2.
					g, g2, f := rnd(n, -1, 1), rnd(n, -1, 1), []float32{float32(math.Copysign(0, -1))}
					g[0] = float32(math.NaN())
					out := make([]float32, n+1)
					out[n] = 7
					for _, h := range [][]float32{nil, g2} {
						reluGradMaskElems(out[:n], mask, g, h, f)
						for i := range n {
							want := f[0]
							if v[i] >= 0 {
								want = g[i]
								if h != nil {
									want += h[i]
								}
							}
							if math.Float32bits(out[i]) != math.Float32bits(want) {
								t.Fatalf("%s gradient (g2 %v) [%d] = %v, want %v", name, h != nil, i, out[i], want)
							}
						}
						if out[n] != 7 {
							t.Fatalf("%s: gradient wrote past the output", name)
						}
					}
				}
			}
		}
	})
}

// TestReLUMaskFusionOnlyOnAVX512 checks that the mask fusion is applied where its 16-lane loops
// run (maskFusionPays): a batch norm + ReLU + ReLU-gradient step compiled on every path writes the
// mask exactly where the path is avx512 and the feature count a multiple of 16 (32, not 24).
func TestReLUMaskFusionOnlyOnAVX512(t *testing.T) {
	forEachISA(t, func(t *testing.T) {
		for _, c := range []int{32, 24} {
			testReLUMaskFusionApplied(t, c, kernels.ActiveISA() == kernels.ISAAVX512 && c%16 == 0)
		}
	})
}

// testReLUMaskFusionApplied compiles a batch norm + ReLU + ReLU-gradient step of c features and
// checks whether its batch norm writes the mask.
func testReLUMaskFusionApplied(t *testing.T, c int, want bool) {
	t.Helper()
	b := testCPU().Builder("bnmaskisa").(*Builder)
	sh := shapes.Make(dtypes.Float32, 8, 4, 4, c)
	x, err := b.Parameter("x", sh, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := b.Parameter("g", sh, nil)
	s, _ := b.Parameter("s", shapes.Make(dtypes.Float32, c), nil)
	zero, _ := b.Constant([]float32{0})
	y, _, _, err := b.BatchNormForTraining(x, s, s, 1e-5, 3)
	if err != nil {
		t.Fatal(err)
	}
	relu, _ := b.Max(y, zero)
	ge, _ := b.GreaterOrEqual(y, zero)
	grad, _ := b.Where(ge, g, zero)
	exe, err := b.Compile([]backends.Op{relu, grad}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mask bool
	for _, st := range exe.(*Executable).steps {
		if p, ok := st.n.params.(batchNormParams); ok && st.n.op == backends.OpTypeBatchNormForTraining {
			mask = mask || p.mask
		}
	}
	if mask != want {
		t.Errorf("%d features: batch norm writes the ReLU mask: %v, want %v", c, mask, want)
	}
}
