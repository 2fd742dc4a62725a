package vit

import (
	"fmt"
	"math"
	"slices"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/gomlx/gomlx/pkg/ml/layers"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/nn"
)

// InitStd is the standard deviation of the truncated normal used for every linear weight, the
// CLS token and the position embeddings (as in timm's ViT; biases start at 0, LayerNorm gains at 1
// and offsets at 0).
const InitStd = 0.02

// truncationSigmas is where the initial normal is truncated: values beyond ±2σ are redrawn.
const truncationSigmas = 2.0

// TruncatedNormal returns an initializer drawing from N(0, std²) truncated to [-2·std, 2·std]:
// values outside are redrawn up to 8 times (the chance that one is still outside afterwards is
// 0.0455⁹ ≈ 1e-12) and finally clamped. It draws from ctx's random state, so the context's
// initial seed (initializers.ParamInitialSeed) makes it deterministic.
func TruncatedNormal(ctx *context.Context, std float64) initializers.VariableInitializer {
	return func(g *graph.Graph, shape shapes.Shape) *graph.Node {
		if !shape.DType.IsFloat() {
			return graph.Zeros(g, shape)
		}
		x := ctx.RandomNormal(g, shape)
		limit := graph.Scalar(g, shape.DType, truncationSigmas)
		for range 8 {
			redraw := ctx.RandomNormal(g, shape)
			x = graph.Where(graph.GreaterThan(graph.Abs(x), limit), redraw, x)
		}
		x = graph.Clip(x, graph.Neg(limit), limit)
		return graph.MulScalar(x, std)
	}
}

// Linear is a dense layer y = x·W + b over the last axis of x ([..., in] -> [..., out]) with
// variables "weights" [in, out] (truncated normal, std InitStd) and "biases" [out] (zeros) in ctx's
// current scope.
func Linear(ctx *context.Context, x *graph.Node, out int) *graph.Node {
	w, b := linearVars(ctx, x, out)
	y := graph.DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{0}, nil)
	return graph.Add(y, graph.ExpandLeftToRank(b, y.Rank()))
}

// linearVars returns the values in x's graph of Linear's variables for input x and out outputs:
// "weights" [in, out] (truncated normal, std InitStd) and "biases" [out] (zeros).
func linearVars(ctx *context.Context, x *graph.Node, out int) (w, b *graph.Node) {
	g := x.Graph()
	in := x.Shape().Dim(-1)
	dtype := x.DType()
	w = ctx.WithInitializer(TruncatedNormal(ctx, InitStd)).
		VariableWithShape("weights", shapes.Make(dtype, in, out)).ValueGraph(g)
	b = ctx.WithInitializer(initializers.Zero).
		VariableWithShape("biases", shapes.Make(dtype, out)).ValueGraph(g)
	return w, b
}

// LinearSplit is Linear(ctx, x, parts·out) returned as parts outputs of width out each (output
// columns k·out … (k+1)·out−1 form part k), computed as parts products with slices of the weights
// rather than one product sliced afterwards: the slices' gradients then pad the small weight
// matrix, not the [..., parts·out] activations. Variables as Linear's: "weights" [in, parts·out],
// "biases" [parts·out].
func LinearSplit(ctx *context.Context, x *graph.Node, out, parts int) []*graph.Node {
	w, b := linearVars(ctx, x, parts*out)
	ys := make([]*graph.Node, parts)
	for k := range ys {
		wk := graph.Slice(w, graph.AxisRange(), graph.AxisRange(k*out, (k+1)*out))
		bk := graph.Slice(b, graph.AxisRange(k*out, (k+1)*out))
		y := graph.DotGeneral(x, []int{x.Rank() - 1}, nil, wk, []int{0}, nil)
		ys[k] = graph.Add(y, graph.ExpandLeftToRank(bk, y.Rank()))
	}
	return ys
}

// LayerNorm normalises x over its last axis with PyTorch's nn.LayerNorm semantics:
// (x − mean) / sqrt(var + eps) · gain + offset, with the biased variance. Variables "gain" [D]
// (ones) and "offset" [D] (zeros) live in ctx's current scope. x: [..., D].
func LayerNorm(ctx *context.Context, x *graph.Node, eps float64) *graph.Node {
	g := x.Graph()
	d := x.Shape().Dim(-1)
	dtype := x.DType()
	gain := ctx.WithInitializer(initializers.One).VariableWithShape("gain", shapes.Make(dtype, d)).ValueGraph(g)
	offset := ctx.WithInitializer(initializers.Zero).VariableWithShape("offset", shapes.Make(dtype, d)).ValueGraph(g)
	return graph.Add(graph.Mul(Normalize(x, eps), graph.ExpandLeftToRank(gain, x.Rank())),
		graph.ExpandLeftToRank(offset, x.Rank()))
}

// Normalize is LayerNorm without the learned gain and offset: (x − mean) / sqrt(var + eps) over
// the last axis, biased variance. x: [..., D].
func Normalize(x *graph.Node, eps float64) *graph.Node {
	last := x.Rank() - 1
	mean := graph.ReduceAndKeep(x, graph.ReduceMean, last)
	centred := graph.Sub(x, mean)
	variance := graph.ReduceAndKeep(graph.Square(centred), graph.ReduceMean, last)
	// One reciprocal per row, then a multiply over [..., D] (Rsqrt has no gradient in GoMLX v0.26).
	return graph.Mul(centred, graph.Inverse(graph.Sqrt(graph.AddScalar(variance, eps))))
}

// GELU is the exact Gaussian error linear unit, x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (PyTorch's
// F.gelu default, not the tanh approximation).
func GELU(x *graph.Node) *graph.Node {
	return graph.Mul(graph.MulScalar(x, 0.5), graph.OnePlus(graph.Erf(graph.MulScalar(x, 1/math.Sqrt2))))
}

// Attention is multi-head scaled dot-product attention without masks or projections:
// q, k, v: [B, T, D] are split into heads of width d_h = D/heads, each head computes
// softmax(q_h·k_hᵀ / √d_h)·v_h over the key axis, and the heads are concatenated back to [B, T, D]
// (head h owns features h·d_h … (h+1)·d_h−1). Key and value may have a different token count than
// the query ([B, S, D]); the output has the query's.
func Attention(q, k, v *graph.Node, heads int) *graph.Node {
	if q.Rank() != 3 || k.Rank() != 3 || v.Rank() != 3 {
		panic(fmt.Errorf("vit: attention wants q, k, v of rank 3 [B, T, D], got %s, %s, %s", q.Shape(), k.Shape(), v.Shape()))
	}
	b, t, d := q.Shape().Dim(0), q.Shape().Dim(1), q.Shape().Dim(2)
	s := k.Shape().Dim(1)
	if heads < 1 || d%heads != 0 {
		panic(fmt.Errorf("vit: attention: width %d is not divisible into %d heads", d, heads))
	}
	if k.Shape().Dim(0) != b || v.Shape().Dim(0) != b || k.Shape().Dim(2) != d || v.Shape().Dim(2) != d || v.Shape().Dim(1) != s {
		panic(fmt.Errorf("vit: attention: q %s, k %s, v %s do not match", q.Shape(), k.Shape(), v.Shape()))
	}
	dh := d / heads
	split := func(x *graph.Node, n int) *graph.Node { // [B, n, D] -> [B, H, n, dh]
		return graph.TransposeAllAxes(graph.Reshape(x, b, n, heads, dh), 0, 2, 1, 3)
	}
	qh, kh, vh := split(q, t), split(k, s), split(v, s)
	// scores[b, h, i, j] = Σ_e q[b, h, i, e]·k[b, h, j, e] / √dh
	scores := graph.DotGeneral(qh, []int{3}, []int{0, 1}, kh, []int{3}, []int{0, 1})
	scores = graph.MulScalar(scores, 1/math.Sqrt(float64(dh)))
	probs := graph.Softmax(scores, -1)
	// out[b, h, i, e] = Σ_j probs[b, h, i, j]·v[b, h, j, e]
	out := graph.DotGeneral(probs, []int{3}, []int{0, 1}, vh, []int{2}, []int{0, 1})
	return graph.Reshape(graph.TransposeAllAxes(out, 0, 2, 1, 3), b, t, d)
}

// SelectIndex returns x[..., i, ...] along axis (that axis removed): a Slice and a Reshape.
func SelectIndex(x *graph.Node, axis, i int) *graph.Node {
	n := x.Shape().Dim(axis)
	if i < 0 || i >= n {
		panic(fmt.Errorf("vit: select index %d of axis %d with %d elements", i, axis, n))
	}
	specs := make([]graph.SliceAxisSpec, axis+1)
	for a := 0; a < axis; a++ {
		specs[a] = graph.AxisRange()
	}
	specs[axis] = graph.AxisElem(i)
	dims := slices.Delete(slices.Clone(x.Shape().Dimensions), axis, axis+1)
	return graph.Reshape(graph.Slice(x, specs...), dims...)
}

// dropout zeroes each element with probability rate (scaling the rest by 1/(1−rate)) while the
// graph trains and ctx's scope is not frozen; otherwise it returns x.
func dropout(ctx *context.Context, x *graph.Node, rate float64) *graph.Node {
	if rate <= 0 || !nn.IsTraining(ctx, x.Graph()) {
		return x
	}
	return layers.DropoutNormalize(ctx, x, graph.Scalar(x.Graph(), dtypes.Float32, rate), true)
}

// TokenGrid reshapes a token tap [B, T, D] to a channels-last grid [B, rows, cols, D]: it is
// backbone.TokenGrid (rows and cols from MixerConfig.Grid or Config.Grid).
func TokenGrid(tap *graph.Node, rows, cols int) *graph.Node {
	return backbone.TokenGrid(tap, rows, cols)
}
