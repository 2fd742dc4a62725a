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

// LayerNorm normalises x over its last axis with PyTorch's nn.LayerNorm semantics (elementwise affine):
// y = (x − mean) / √(var + eps) · γ + β, where mean and the biased variance are taken over the last
// axis of each row. eps ≤ 0 means LayerNormEpsilon.
//
// x: [..., C]; returns the same shape. Variables, in ctx's current scope: "scale" (γ [C], init 1) and
// "offset" (β [C], init 0), both trainable.
func LayerNorm(ctx *context.Context, x *graph.Node, eps float64) *graph.Node {
	if x.Rank() < 1 {
		panic(errors.New("nn.LayerNorm: input must have rank >= 1, got a scalar"))
	}
	if eps <= 0 {
		eps = LayerNormEpsilon
	}
	g := x.Graph()
	c := x.Shape().Dim(-1)
	dtype := x.DType()
	scale := ctx.WithInitializer(initializers.One).VariableWithShape("scale", shapes.Make(dtype, c)).ValueGraph(g)
	offset := ctx.WithInitializer(initializers.Zero).VariableWithShape("offset", shapes.Make(dtype, c)).ValueGraph(g)

	last := x.Rank() - 1
	mean := graph.ReduceAndKeep(x, graph.ReduceMean, last)
	centred := graph.Sub(x, mean)
	variance := graph.ReduceAndKeep(graph.Square(centred), graph.ReduceMean, last)
	// Inverse(Sqrt) rather than Rsqrt: GoMLX v0.26 has no gradient for Rsqrt.
	normed := graph.Mul(centred, graph.Inverse(graph.Sqrt(graph.AddScalar(variance, eps))))

	bshape := make([]int, x.Rank())
	for i := range bshape {
		bshape[i] = 1
	}
	bshape[last] = c
	return graph.Add(graph.Mul(normed, graph.Reshape(scale, bshape...)), graph.Reshape(offset, bshape...))
}

// LayerNormParams is the number of trainable parameters of a LayerNorm over C channels.
func LayerNormParams(c int) int { return 2 * c }
