package vit

import (
	"math"

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

// truncationDraws is the number of normal draws per value: the first and 8 redraws.
const truncationDraws = 9

// maxDrawWords bounds the random words TruncatedNormal draws in one generator call (8 MiB of
// uint32): a small weight's 9 draws come from one call, a large one's from several, so that the
// initialisation of a large model takes about the memory that one draw at a time took.
const maxDrawWords = 1 << 21

// TruncatedNormal returns an initializer drawing from N(0, std²) truncated to [-2·std, 2·std]:
// values outside are redrawn up to 8 times (the chance that one is still outside afterwards is
// 0.0455⁹ ≈ 1e-12) and finally clamped. It draws from ctx's random state, so the context's
// initial seed (initializers.ParamInitialSeed) makes it deterministic.
//
// The 9 draws of a weight of up to 116,508 values come from one call of the random generator
// (nn.NormalDraws), not 18: a graph with one generator and one Box–Muller transform per weight
// instead of nine compiles faster on XLA, which expands every generator call into its own rounds
// of integer arithmetic.
func TruncatedNormal(ctx *context.Context, std float64) initializers.VariableInitializer {
	return truncatedNormal(ctx, std, maxDrawWords)
}

// truncatedNormal is TruncatedNormal drawing at most maxWords random words per generator call
// (at least one draw per call).
func truncatedNormal(ctx *context.Context, std float64, maxWords int) initializers.VariableInitializer {
	return func(g *graph.Graph, shape shapes.Shape) *graph.Node {
		if !shape.DType.IsFloat() {
			return graph.Zeros(g, shape)
		}
		n := shape.Size()
		perCall := min(truncationDraws, max(1, maxWords/(2*nn.DrawWords(shape.DType, n))))
		limit := graph.Scalar(g, shape.DType, truncationSigmas)
		var x *graph.Node
		for drawn := 0; drawn < truncationDraws; drawn += perCall {
			k := min(perCall, truncationDraws-drawn)
			z := nn.NormalDraws(ctx, g, shape.DType, k, n)
			for i := range k {
				if zi := nn.SelectIndex(z, 0, i); x == nil {
					x = zi
				} else {
					x = graph.Where(graph.GreaterThan(graph.Abs(x), limit), zi, x)
				}
			}
		}
		x = graph.Clip(x, graph.Neg(limit), limit)
		return graph.Reshape(graph.MulScalar(x, std), shape.Dimensions...)
	}
}

// linearOptions is the ViT's initialisation of every nn.Linear: truncated normal weights (std
// InitStd), zero biases.
func linearOptions(ctx *context.Context) []nn.LinearOption {
	return []nn.LinearOption{nn.WeightInit(TruncatedNormal(ctx, InitStd)), nn.BiasInit(initializers.Zero)}
}

// linear is nn.Linear with the ViT's initialisation: "weights" [in, out], "biases" [out].
func linear(ctx *context.Context, x *graph.Node, out int) *graph.Node {
	return nn.Linear(ctx, x, out, linearOptions(ctx)...)
}

// layerNorm is nn.LayerNorm with the ViT's variable names: "gain" [D] (ones), "offset" [D] (zeros).
func layerNorm(ctx *context.Context, x *graph.Node, eps float64) *graph.Node {
	return nn.LayerNorm(ctx, x, eps, nn.ScaleName("gain"))
}

// LinearSplit is linear(ctx, x, parts·out) returned as parts outputs of width out each (output
// columns k·out … (k+1)·out−1 form part k), computed as parts products with slices of the weights
// rather than one product sliced afterwards: the slices' gradients then pad the small weight
// matrix, not the [..., parts·out] activations. Variables as nn.Linear's: "weights" [in, parts·out],
// "biases" [parts·out].
func LinearSplit(ctx *context.Context, x *graph.Node, out, parts int) []*graph.Node {
	w, b := nn.LinearVariables(ctx, x, parts*out, linearOptions(ctx)...)
	ys := make([]*graph.Node, parts)
	for k := range ys {
		wk := graph.Slice(w, graph.AxisRange(), graph.AxisRange(k*out, (k+1)*out))
		bk := graph.Slice(b, graph.AxisRange(k*out, (k+1)*out))
		y := graph.DotGeneral(x, []int{x.Rank() - 1}, nil, wk, []int{0}, nil)
		ys[k] = graph.Add(y, graph.ExpandLeftToRank(bk, y.Rank()))
	}
	return ys
}

// GELU is the exact Gaussian error linear unit, x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (PyTorch's
// F.gelu default, not the tanh approximation).
func GELU(x *graph.Node) *graph.Node {
	return graph.Mul(graph.MulScalar(x, 0.5), graph.OnePlus(graph.Erf(graph.MulScalar(x, 1/math.Sqrt2))))
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
