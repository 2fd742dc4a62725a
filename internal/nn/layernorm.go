package nn

import (
	"errors"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
)

// LayerNormEpsilon is PyTorch's nn.LayerNorm default epsilon.
const LayerNormEpsilon = 1e-5

// LayerNormOption changes LayerNorm's variable names.
type LayerNormOption func(*layerNormConfig)

type layerNormConfig struct{ scale, offset string }

// ScaleName names LayerNorm's scale variable γ (default "scale"; vit's checkpoints use "gain").
// Variable names are part of the checkpoint format.
func ScaleName(name string) LayerNormOption { return func(c *layerNormConfig) { c.scale = name } }

// LayerNorm normalises x over its last axis with PyTorch's nn.LayerNorm semantics (elementwise affine):
// y = (x − mean) / √(var + eps) · γ + β, where mean and the biased variance are taken over the last
// axis of each row. eps ≤ 0 means LayerNormEpsilon.
//
// x: [..., C]; returns the same shape. Variables, in ctx's current scope: "scale" (γ [C], init 1;
// ScaleName renames it) and "offset" (β [C], init 0), both trainable.
func LayerNorm(ctx *context.Context, x *graph.Node, eps float64, opts ...LayerNormOption) *graph.Node {
	if x.Rank() < 1 {
		panic(errors.New("nn.LayerNorm: input must have rank >= 1, got a scalar"))
	}
	c := layerNormConfig{scale: "scale", offset: "offset"}
	for _, o := range opts {
		o(&c)
	}
	g := x.Graph()
	d := x.Shape().Dim(-1)
	dtype := x.DType()
	scale := ctx.WithInitializer(initializers.One).VariableWithShape(c.scale, shapes.Make(dtype, d)).ValueGraph(g)
	offset := ctx.WithInitializer(initializers.Zero).VariableWithShape(c.offset, shapes.Make(dtype, d)).ValueGraph(g)
	return graph.Add(graph.Mul(Normalize(x, eps), graph.ExpandLeftToRank(scale, x.Rank())),
		graph.ExpandLeftToRank(offset, x.Rank()))
}

// Normalize is LayerNorm without the learned scale and offset: (x − mean) / √(var + eps) over the
// last axis, biased variance; eps ≤ 0 means LayerNormEpsilon. x: [..., D].
func Normalize(x *graph.Node, eps float64) *graph.Node {
	if eps <= 0 {
		eps = LayerNormEpsilon
	}
	last := x.Rank() - 1
	mean := graph.ReduceAndKeep(x, graph.ReduceMean, last)
	centred := graph.Sub(x, mean)
	variance := graph.ReduceAndKeep(graph.Square(centred), graph.ReduceMean, last)
	// One reciprocal per row, then a multiply over [..., D]. (Rsqrt would do too since
	// cpu.RegisterGradients gives it a gradient; Inverse(Sqrt) keeps earlier runs' numerics.)
	return graph.Mul(centred, graph.Inverse(graph.Sqrt(graph.AddScalar(variance, eps))))
}

// LayerNormParams is the number of trainable parameters of a LayerNorm over C channels.
func LayerNormParams(c int) int { return 2 * c }
