package nn

import (
	"errors"
	"math"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
)

// Variable names of Linear inside its scope: part of the checkpoint format.
const (
	WeightsName = "weights"
	BiasesName  = "biases"
)

// LinearOption changes Linear's bias or initialisation.
type LinearOption func(*linearConfig)

type linearConfig struct {
	noBias       bool
	wInit, bInit context.VariableInitializer
	wSet, bSet   bool
}

// NoBias drops the bias term (PyTorch's bias=False): only "weights" [in, out].
func NoBias() LinearOption { return func(c *linearConfig) { c.noBias = true } }

// WeightInit initialises the weights with init instead of PyTorch's U(−1/√in, 1/√in).
func WeightInit(init context.VariableInitializer) LinearOption {
	return func(c *linearConfig) { c.wInit, c.wSet = init, true }
}

// BiasInit initialises the biases with init instead of PyTorch's U(−1/√in, 1/√in)
// (initializers.Zero for zero biases).
func BiasInit(init context.VariableInitializer) LinearOption {
	return func(c *linearConfig) { c.bInit, c.bSet = init, true }
}

// Linear is a fully connected layer with PyTorch's nn.Linear semantics and, by default, its
// initialisation: y = x·W + b, with W and b drawn from U(−1/√in, 1/√in) (WeightInit, BiasInit and
// NoBias change that).
//
// x: [..., in] (any rank ≥ 1, the last axis is contracted); returns [..., out] in x's dtype.
// Variables, in ctx's current scope: "weights" [in, out] and "biases" [out], both trainable,
// created in that order. A variable already present (loaded from a checkpoint) keeps its value.
func Linear(ctx *context.Context, x *graph.Node, out int, opts ...LinearOption) *graph.Node {
	w, b := LinearVariables(ctx, x, out, opts...)
	var y *graph.Node
	if x.Rank() == 2 {
		y = graph.MatMul(x, w)
	} else {
		y = graph.DotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{0}, nil)
	}
	if b != nil {
		y = graph.Add(y, graph.ExpandLeftToRank(b, y.Rank()))
	}
	return y
}

// LinearVariables returns the values in x's graph of the variables Linear(ctx, x, out, opts...)
// uses: the weights [in, out] and the biases [out] (nil with NoBias). Layers that compute with
// slices of the weights (vit's fused q/k/v projection) build on it.
func LinearVariables(ctx *context.Context, x *graph.Node, out int, opts ...LinearOption) (w, b *graph.Node) {
	if x.Rank() < 1 {
		panic(errors.New("nn.Linear: input must have rank >= 1, got a scalar"))
	}
	if out < 1 {
		panic(errors.New("nn.Linear: output width must be >= 1"))
	}
	var c linearConfig
	for _, o := range opts {
		o(&c)
	}
	in := x.Shape().Dim(-1)
	bound := 1 / math.Sqrt(float64(in))
	if !c.wSet {
		c.wInit = initializers.RandomUniformFn(ctx, -bound, bound)
	}
	if !c.bSet {
		c.bInit = initializers.RandomUniformFn(ctx, -bound, bound)
	}
	g := x.Graph()
	w = ctx.WithInitializer(c.wInit).VariableWithShape(WeightsName, shapes.Make(x.DType(), in, out)).ValueGraph(g)
	if !c.noBias {
		b = ctx.WithInitializer(c.bInit).VariableWithShape(BiasesName, shapes.Make(x.DType(), out)).ValueGraph(g)
	}
	return w, b
}

// LinearParams is the number of trainable parameters of a Linear layer with or without bias.
func LinearParams(in, out int, bias bool) int {
	n := in * out
	if bias {
		n += out
	}
	return n
}

// CountTrainable returns the number of trainable parameters (elements of trainable float
// variables) of ctx for which keep returns true (nil keeps all). Variables exist once the model's
// graph has been built.
func CountTrainable(ctx *context.Context, keep func(v *context.Variable) bool) int64 {
	var n int64
	for v := range ctx.IterVariables() {
		if v.Trainable && v.DType().IsFloat() && (keep == nil || keep(v)) {
			n += int64(v.Shape().Size())
		}
	}
	return n
}
