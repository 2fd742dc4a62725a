package nn

import (
	"errors"
	"math"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
)

// Linear is a fully connected layer with PyTorch's nn.Linear semantics and default initialisation:
// y = x·W + b, with W and b drawn from U(−1/√in, 1/√in).
//
// x: [..., in] (any rank ≥ 1, the last axis is contracted); returns [..., out] in x's dtype.
// Variables, in ctx's current scope: "weights" [in, out] and "biases" [out], both trainable.
// A variable already present (loaded from a checkpoint) keeps its value.
func Linear(ctx *context.Context, x *graph.Node, out int) *graph.Node {
	return linear(ctx, x, out, true)
}

// LinearNoBias is Linear without the bias term (PyTorch's bias=False): only "weights" [in, out].
func LinearNoBias(ctx *context.Context, x *graph.Node, out int) *graph.Node {
	return linear(ctx, x, out, false)
}

// LinearParams is the number of trainable parameters of a Linear (bias true) or LinearNoBias layer.
func LinearParams(in, out int, bias bool) int {
	n := in * out
	if bias {
		n += out
	}
	return n
}

func linear(ctx *context.Context, x *graph.Node, out int, bias bool) *graph.Node {
	if x.Rank() < 1 {
		panic(errors.New("nn.Linear: input must have rank >= 1, got a scalar"))
	}
	if out < 1 {
		panic(errors.New("nn.Linear: output width must be >= 1"))
	}
	in := x.Shape().Dim(-1)
	bound := 1 / math.Sqrt(float64(in))
	init := ctx.WithInitializer(initializers.RandomUniformFn(ctx, -bound, bound))
	g := x.Graph()
	dtype := x.DType()
	w := init.VariableWithShape("weights", shapes.Make(dtype, in, out)).ValueGraph(g)

	dims := x.Shape().Dimensions
	outDims := append(append([]int(nil), dims[:len(dims)-1]...), out)
	flat := graph.Reshape(x, -1, in)
	y := graph.MatMul(flat, w)
	if bias {
		b := init.VariableWithShape("biases", shapes.Make(dtype, out)).ValueGraph(g)
		y = graph.Add(y, graph.Reshape(b, 1, out))
	}
	return graph.Reshape(y, outDims...)
}
