package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// bnState is the float64 copy of one BatchNorm's variables.
type bnState struct {
	scale, offset, mean, variance []float64
}

// naiveBatchNorm is PyTorch's BatchNorm over the last axis of x (flat, channels-last, c channels),
// written from the formula: y = (x − μ)/√(σ² + ε)·γ + β with, in training, μ and σ² the batch mean
// and biased variance, and running averages updated as r ← (1−m)·r + m·s (the variance with the
// unbiased estimate); in evaluation, μ and σ² are the running averages, left unchanged.
func naiveBatchNorm(x []float64, c int, s bnState, train bool) (y []float64, next bnState) {
	n := len(x) / c
	y = make([]float64, len(x))
	next = bnState{scale: s.scale, offset: s.offset,
		mean: append([]float64(nil), s.mean...), variance: append([]float64(nil), s.variance...)}
	for ch := range c {
		mu, v := s.mean[ch], s.variance[ch]
		if train {
			mu, v = 0, 0
			for i := ch; i < len(x); i += c {
				mu += x[i]
			}
			mu /= float64(n)
			for i := ch; i < len(x); i += c {
				v += (x[i] - mu) * (x[i] - mu)
			}
			v /= float64(n)
			next.mean[ch] = 0.9*s.mean[ch] + 0.1*mu
			next.variance[ch] = 0.9*s.variance[ch] + 0.1*v*float64(n)/float64(n-1)
		}
		for i := ch; i < len(x); i += c {
			y[i] = (x[i]-mu)/math.Sqrt(v+1e-5)*s.scale[ch] + s.offset[ch]
		}
	}
	return y, next
}

func randSlice(rng *rand.Rand, n int, lo, hi float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = lo + (hi-lo)*rng.Float64()
	}
	return out
}

func to32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func to64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// setup creates the BN variables of scope "bn" in a new context with the given state.
func setup(s bnState) *context.Context {
	ctx := context.New()
	bn := ctx.In("bn")
	c := len(s.scale)
	for name, v := range map[string][]float64{"scale": s.scale, "offset": s.offset, "running_mean": s.mean, "running_var": s.variance} {
		bn.VariableWithValue(name, tensors.FromFlatDataAndDimensions(to32(v), c))
	}
	return ctx
}

func readState(t *testing.T, ctx *context.Context) bnState {
	t.Helper()
	get := func(name string) []float64 {
		v := ctx.GetVariableByScopeAndName("/bn", name)
		if v == nil {
			t.Fatalf("variable /bn/%s missing", name)
		}
		return to64(tensors.MustCopyFlatData[float32](v.MustValue()))
	}
	return bnState{get("scale"), get("offset"), get("running_mean"), get("running_var")}
}

func assertClose(t *testing.T, what string, got, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(got[i] - want[i]); !(d <= tol*math.Max(1, math.Abs(want[i]))) {
			t.Fatalf("%s[%d] = %v, reference %v (|diff| %.3g)", what, i, got[i], want[i], d)
		}
	}
}

// TestBatchNormMatchesReference covers training and evaluation mode, frozen scopes, and ranks 2 and 4.
func TestBatchNormMatchesReference(t *testing.T) {
	cases := []struct {
		name          string
		dims          []int
		training      bool
		frozen        bool
		wantBatchStat bool
	}{
		{"train/rank4", []int{3, 4, 5, 6}, true, false, true},
		{"train/rank2", []int{7, 5}, true, false, true},
		{"eval/rank4", []int{3, 4, 5, 6}, false, false, false},
		{"eval/rank2", []int{7, 5}, false, false, false},
		{"frozen-in-training/rank4", []int{3, 4, 5, 6}, true, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			ch := c.dims[len(c.dims)-1]
			size := 1
			for _, d := range c.dims {
				size *= d
			}
			x := randSlice(rng, size, -2, 2)
			for i := range x { // a per-channel shift and scale, so the statistics matter
				x[i] = x[i]*float64(1+i%ch) + float64(i%ch) - 1.5
			}
			x = to64(to32(x))
			s := bnState{
				scale: to64(to32(randSlice(rng, ch, 0.5, 1.5))), offset: to64(to32(randSlice(rng, ch, -1, 1))),
				mean: to64(to32(randSlice(rng, ch, -1, 1))), variance: to64(to32(randSlice(rng, ch, 0.5, 3))),
			}
			ctx := setup(s)
			if c.frozen {
				ctx.In("bn").SetParam(FrozenParam, true)
			}
			out, err := context.ExecOnce(testutil.Backend(), ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
				ctx.SetTraining(x.Graph(), c.training)
				return BatchNorm(ctx.In("bn").Checked(false), x)
			}, tensors.FromFlatDataAndDimensions(to32(x), c.dims...))
			if err != nil {
				t.Fatal(err)
			}
			wantY, wantNext := naiveBatchNorm(x, ch, s, c.wantBatchStat)
			assertClose(t, "y", to64(tensors.MustCopyFlatData[float32](out)), wantY, 2e-5)
			got := readState(t, ctx)
			assertClose(t, "running_mean", got.mean, wantNext.mean, 2e-6)
			assertClose(t, "running_var", got.variance, wantNext.variance, 2e-6)
			assertClose(t, "scale", got.scale, s.scale, 0)
			assertClose(t, "offset", got.offset, s.offset, 0)
		})
	}
}

// TestBatchNormDefaults checks the variables a fresh BatchNorm creates and their trainability.
func TestBatchNormDefaults(t *testing.T) {
	ctx := context.New()
	_, err := context.ExecOnce(testutil.Backend(), ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
		return BatchNorm(ctx.In("bn"), x)
	}, tensors.FromFlatDataAndDimensions(make([]float32, 8), 2, 4))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		value     float64
		trainable bool
	}{"scale": {1, true}, "offset": {0, true}, "running_mean": {0, false}, "running_var": {1, false}}
	for name, w := range want {
		v := ctx.GetVariableByScopeAndName("/bn", name)
		if v == nil {
			t.Fatalf("variable %s missing", name)
		}
		if v.Trainable != w.trainable {
			t.Errorf("%s: trainable %v, want %v", name, v.Trainable, w.trainable)
		}
		for _, x := range tensors.MustCopyFlatData[float32](v.MustValue()) {
			if float64(x) != w.value {
				t.Fatalf("%s: initial value %v, want %v", name, x, w.value)
			}
		}
	}
}

// bnGradients returns the graph's gradients of L = Σ w ⊙ BN(x) with respect to x, γ and β in
// training mode.
func bnGradients(t *testing.T, x []float64, dims []int, s bnState, w []float64) (dx, dScale, dOffset []float64) {
	t.Helper()
	ctx := setup(s)
	outs, err := context.ExecOnceN(testutil.Backend(), ctx, func(ctx *context.Context, x, w *graph.Node) []*graph.Node {
		g := x.Graph()
		ctx.SetTraining(g, true)
		bn := ctx.In("bn").Checked(false)
		loss := graph.ReduceAllSum(graph.Mul(BatchNorm(bn, x), w))
		scale := bn.GetVariableByScopeAndName("/bn", "scale").ValueGraph(g)
		offset := bn.GetVariableByScopeAndName("/bn", "offset").ValueGraph(g)
		return graph.Gradient(loss, x, scale, offset)
	}, tensors.FromFlatDataAndDimensions(to32(x), dims...), tensors.FromFlatDataAndDimensions(to32(w), dims...))
	if err != nil {
		t.Fatal(err)
	}
	return to64(tensors.MustCopyFlatData[float32](outs[0])), to64(tensors.MustCopyFlatData[float32](outs[1])),
		to64(tensors.MustCopyFlatData[float32](outs[2]))
}

// TestBatchNormGradient checks the training-mode gradient — which flows through the batch mean and
// variance — against central finite differences of the float64 reference.
func TestBatchNormGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	dims := []int{2, 3, 2, 3}
	ch, size := 3, 36
	x := to64(to32(randSlice(rng, size, -2, 2)))
	w := to64(to32(randSlice(rng, size, -1, 1)))
	s := bnState{scale: to64(to32(randSlice(rng, ch, 0.5, 1.5))), offset: to64(to32(randSlice(rng, ch, -1, 1))),
		mean: make([]float64, ch), variance: []float64{1, 1, 1}}
	loss := func(x []float64, s bnState) float64 {
		y, _ := naiveBatchNorm(x, ch, s, true)
		l := 0.0
		for i := range y {
			l += y[i] * w[i]
		}
		return l
	}
	const h = 1e-6
	numeric := func(v []float64, f func() float64) []float64 {
		out := make([]float64, len(v))
		for i := range v {
			old := v[i]
			v[i] = old + h
			up := f()
			v[i] = old - h
			down := f()
			v[i] = old
			out[i] = (up - down) / (2 * h)
		}
		return out
	}
	wantDx := numeric(x, func() float64 { return loss(x, s) })
	wantScale := numeric(s.scale, func() float64 { return loss(x, s) })
	wantOffset := numeric(s.offset, func() float64 { return loss(x, s) })
	dx, dScale, dOffset := bnGradients(t, x, dims, s, w)
	assertClose(t, "dL/dx", dx, wantDx, 1e-3)
	assertClose(t, "dL/dγ", dScale, wantScale, 1e-3)
	assertClose(t, "dL/dβ", dOffset, wantOffset, 1e-3)
}

// TestBatchNormGradientOfSum is a closed-form case: Σ BN(x) over a channel is the constant N·β in
// training mode, so its gradient with respect to x is zero — it would be γ/σ if the batch statistics
// were treated as constants.
func TestBatchNormGradientOfSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	dims := []int{4, 2, 2, 2}
	x := to64(to32(randSlice(rng, 32, -3, 3)))
	ones := make([]float64, 32)
	for i := range ones {
		ones[i] = 1
	}
	s := bnState{scale: []float64{1.3, 0.7}, offset: []float64{0.2, -0.4}, mean: []float64{0, 0}, variance: []float64{1, 1}}
	dx, dScale, dOffset := bnGradients(t, x, dims, s, ones)
	for i, g := range dx {
		if math.Abs(g) > 1e-5 {
			t.Fatalf("dΣBN/dx[%d] = %v, want 0", i, g)
		}
	}
	assertClose(t, "dΣBN/dγ", dScale, []float64{0, 0}, 1e-5)
	assertClose(t, "dΣBN/dβ", dOffset, []float64{16, 16}, 1e-6)
}

// TestBatchNormBackendOpMatchesGraphOps checks that the training path on the backend's batch-norm
// ops (the cpu backend) and the graph-op path (simplego, which lacks those ops) agree on the output,
// the running averages and the gradients, with per-channel means far from zero.
func TestBatchNormBackendOpMatchesGraphOps(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	dims := []int{4, 3, 5, 6}
	const ch, size = 6, 360
	x := randSlice(rng, size, -1, 1)
	for i := range x {
		x[i] = x[i]*float64(1+i%ch) + 50*float64(i%ch)
	}
	x = to64(to32(x))
	w := to64(to32(randSlice(rng, size, -1, 1)))
	s := bnState{scale: to64(to32(randSlice(rng, ch, 0.5, 1.5))), offset: to64(to32(randSlice(rng, ch, -1, 1))),
		mean: to64(to32(randSlice(rng, ch, -1, 1))), variance: to64(to32(randSlice(rng, ch, 0.5, 3)))}
	goBackend, err := simplego.New("")
	if err != nil {
		t.Fatal(err)
	}
	if hasFusedBatchNorm(graph.NewGraph(goBackend, "probe")) {
		t.Fatal("simplego now has batch-norm ops: this test no longer covers the graph-op path")
	}
	if !hasFusedBatchNorm(graph.NewGraph(testutil.Backend(), "probe")) {
		t.Fatal("the test backend lacks the batch-norm ops: this test no longer covers them")
	}
	run := func(be backends.Backend) (outs [][]float64, next bnState) {
		ctx := setup(s)
		res, err := context.ExecOnceN(be, ctx, func(ctx *context.Context, x, w *graph.Node) []*graph.Node {
			g := x.Graph()
			ctx.SetTraining(g, true)
			bn := ctx.In("bn").Checked(false)
			y := BatchNorm(bn, x)
			loss := graph.ReduceAllSum(graph.Mul(y, w))
			scale := bn.GetVariableByScopeAndName("/bn", "scale").ValueGraph(g)
			offset := bn.GetVariableByScopeAndName("/bn", "offset").ValueGraph(g)
			return append([]*graph.Node{y}, graph.Gradient(loss, x, scale, offset)...)
		}, tensors.FromFlatDataAndDimensions(to32(x), dims...), tensors.FromFlatDataAndDimensions(to32(w), dims...))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			outs = append(outs, to64(tensors.MustCopyFlatData[float32](r)))
		}
		return outs, readState(t, ctx)
	}
	fused, fusedState := run(testutil.Backend())
	plain, plainState := run(goBackend)
	wantY, wantState := naiveBatchNorm(x, ch, s, true)
	assertClose(t, "y (backend op)", fused[0], wantY, 2e-5)
	for i, what := range []string{"y", "dL/dx", "dL/dγ", "dL/dβ"} {
		assertClose(t, what+": backend op vs graph ops", fused[i], plain[i], 1e-4)
	}
	assertClose(t, "running_mean", fusedState.mean, wantState.mean, 2e-6)
	assertClose(t, "running_var", fusedState.variance, wantState.variance, 2e-6)
	assertClose(t, "running_mean: backend op vs graph ops", fusedState.mean, plainState.mean, 2e-6)
	assertClose(t, "running_var: backend op vs graph ops", fusedState.variance, plainState.variance, 2e-6)
}
