package nn

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

func linTestRand(rng *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	return x
}

func linTestValues(t *tensors.Tensor) []float64 {
	var out []float64
	t.MustConstFlatData(func(f any) {
		switch x := f.(type) {
		case []float64:
			out = append(out, x...)
		case []float32:
			for _, v := range x {
				out = append(out, float64(v))
			}
		}
	})
	return out
}

func TestLinearMatchesNaiveAndInit(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const b, s, in, out = 2, 3, 50, 40
	x := linTestRand(rng, b*s*in)
	ctx := context.New()
	y := linTestValues(context.MustExecOnce(testutil.Backend(), ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
		return Linear(ctx.In("fc"), x, out)
	}, tensors.FromFlatDataAndDimensions(x, b, s, in)))
	w := linTestValues(ctx.GetVariableByScopeAndName("/fc", "weights").MustValue())
	bias := linTestValues(ctx.GetVariableByScopeAndName("/fc", "biases").MustValue())
	if len(w) != in*out || len(bias) != out {
		t.Fatalf("weights %d, biases %d values", len(w), len(bias))
	}
	// PyTorch's default init: U(±1/√in) for both; the draws must fill most of the range.
	bound := 1 / math.Sqrt(in)
	maxAbs := 0.0
	for _, v := range append(slices.Clone(w), bias...) {
		if math.Abs(v) > bound {
			t.Fatalf("init value %g outside ±%g", v, bound)
		}
		maxAbs = math.Max(maxAbs, math.Abs(v))
	}
	if maxAbs < 0.9*bound {
		t.Fatalf("init values span only ±%g of ±%g", maxAbs, bound)
	}
	for r := 0; r < b*s; r++ {
		for o := 0; o < out; o++ {
			want := bias[o]
			for k := 0; k < in; k++ {
				want += x[r*in+k] * w[k*out+o]
			}
			if got := y[r*out+o]; math.Abs(got-want) > 1e-12 {
				t.Fatalf("y[%d,%d] = %g, want %g", r, o, got, want)
			}
		}
	}
	if LinearParams(in, out, true) != in*out+out || LinearParams(in, out, false) != in*out {
		t.Fatal("LinearParams")
	}

	ctx = context.New()
	context.MustExecOnce(testutil.Backend(), ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
		return Linear(ctx.In("fc"), x, 3, NoBias())
	}, tensors.FromFlatDataAndDimensions(x[:in], 1, in))
	if ctx.GetVariableByScopeAndName("/fc", "biases") != nil || ctx.GetVariableByScopeAndName("/fc", "weights") == nil {
		t.Fatal("LinearNoBias must create weights only")
	}
}

// naiveLayerNorm is PyTorch's LayerNorm over the last axis, in float64.
func linTestNaiveLN(x, gamma, beta []float64, c int, eps float64) []float64 {
	y := make([]float64, len(x))
	for r := 0; r < len(x)/c; r++ {
		row := x[r*c : (r+1)*c]
		var mean, v float64
		for _, e := range row {
			mean += e
		}
		mean /= float64(c)
		for _, e := range row {
			v += (e - mean) * (e - mean)
		}
		v /= float64(c)
		for j, e := range row {
			y[r*c+j] = (e-mean)/math.Sqrt(v+eps)*gamma[j] + beta[j]
		}
	}
	return y
}

func TestLayerNormMatchesNaiveAndGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const b, s, c = 2, 3, 5
	x := linTestRand(rng, b*s*c)
	for i := range x {
		x[i] = 3 + 2*x[i] // away from zero mean / unit variance
	}
	gamma, beta := linTestRand(rng, c), linTestRand(rng, c)
	for _, eps := range []float64{0, 1e-3} {
		ctx := context.New()
		ctx.In("ln").VariableWithValue("scale", gamma)
		ctx.In("ln").VariableWithValue("offset", beta)
		wt := linTestRand(rng, b*s*c)
		outs := context.MustExecOnceN(testutil.Backend(), ctx.Reuse(), func(ctx *context.Context, x, wt *graph.Node) (*graph.Node, *graph.Node) {
			y := LayerNorm(ctx.In("ln"), x, eps)
			return y, graph.Gradient(graph.ReduceAllSum(graph.Mul(y, wt)), x)[0]
		}, tensors.FromFlatDataAndDimensions(x, b, s, c), tensors.FromFlatDataAndDimensions(wt, b, s, c))
		e := eps
		if e == 0 {
			e = LayerNormEpsilon
		}
		want := linTestNaiveLN(x, gamma, beta, c, e)
		got := linTestValues(outs[0])
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-12 {
				t.Fatalf("eps=%g: y[%d] = %g, want %g", eps, i, got[i], want[i])
			}
		}
		grad := linTestValues(outs[1])
		obj := func(v []float64) float64 {
			y := linTestNaiveLN(v, gamma, beta, c, e)
			var sum float64
			for i := range y {
				sum += y[i] * wt[i]
			}
			return sum
		}
		const h = 1e-6
		for i := range x {
			up, down := slices.Clone(x), slices.Clone(x)
			up[i] += h
			down[i] -= h
			fd := (obj(up) - obj(down)) / (2 * h)
			if math.Abs(fd-grad[i]) > 1e-6*(1+math.Abs(fd)) {
				t.Fatalf("eps=%g: d/dx[%d] = %g, finite difference %g", eps, i, grad[i], fd)
			}
		}
	}
	if LayerNormParams(7) != 14 {
		t.Fatal("LayerNormParams")
	}
}
