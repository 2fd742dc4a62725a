package nn

import (
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
)

// FrozenParam is the context parameter that, set to true in a scope (e.g. a teacher's), makes every
// BatchNorm below it run in evaluation mode (running statistics, no update) even while the graph is
// training.
const FrozenParam = "nn_frozen"

// Batch-norm defaults: PyTorch's BatchNorm1d/2d.
const (
	BatchNormMomentum = 0.1
	BatchNormEpsilon  = 1e-5
)

// IsTraining reports whether layers in ctx's scope run in training mode in graph g: the graph is
// training and the scope is not frozen.
func IsTraining(ctx *context.Context, g *graph.Graph) bool {
	return ctx.IsTraining(g) && !context.GetParamOr(ctx, FrozenParam, false)
}

// hasFusedBatchNorm reports whether g's backend implements the training batch-norm op and its
// gradient (the cpu and XLA backends do; GoMLX's simplego does not).
func hasFusedBatchNorm(g *graph.Graph) bool {
	ops := g.Backend().Capabilities().Operations
	return ops[backends.OpTypeBatchNormForTraining] && ops[backends.OpTypeBatchNormGradient]
}

// BatchNorm normalises x over every axis but the last (channels-last: [B, C], [B, H, W, C], ...),
// with PyTorch's semantics: in training mode it uses the batch mean and biased variance — with the
// gradient flowing through both — and updates running averages with momentum BatchNormMomentum
// (the running variance gets the unbiased batch variance); in evaluation mode it uses the running
// averages. Variables, in ctx's current scope: "scale" (γ, 1), "offset" (β, 0), trainable;
// "running_mean" (0) and "running_var" (1), not trainable. In training mode it uses the backend's
// batch-norm op and its gradient op where the backend has them, graph ops otherwise.
func BatchNorm(ctx *context.Context, x *graph.Node) *graph.Node {
	g := x.Graph()
	c := x.Shape().Dim(-1)
	dtype := x.DType()
	varShape := shapes.Make(dtype, c)
	scale := ctx.WithInitializer(initializers.One).VariableWithShape("scale", varShape).ValueGraph(g)
	offset := ctx.WithInitializer(initializers.Zero).VariableWithShape("offset", varShape).ValueGraph(g)
	meanVar := ctx.WithInitializer(initializers.Zero).VariableWithShape("running_mean", varShape).SetTrainable(false)
	varVar := ctx.WithInitializer(initializers.One).VariableWithShape("running_var", varShape).SetTrainable(false)

	axes := make([]int, x.Rank()-1)
	for i := range axes {
		axes[i] = i
	}
	bshape := make([]int, x.Rank())
	for i := range bshape {
		bshape[i] = 1
	}
	bshape[x.Rank()-1] = c
	asBroadcast := func(v *graph.Node) *graph.Node { return graph.Reshape(v, bshape...) }

	var mean, variance *graph.Node
	if IsTraining(ctx, g) {
		n := x.Shape().Size() / c
		var y *graph.Node
		if hasFusedBatchNorm(g) {
			// The backend's batch-norm op: its gradient (graph.InternalBatchNormGradient) flows
			// through the batch statistics; the statistics outputs only feed the running averages.
			y, mean, variance = graph.InternalBatchNormForTraining(x, scale, offset, BatchNormEpsilon, -1)
		} else {
			mean = graph.ReduceMean(x, axes...)
			centred := graph.Sub(x, asBroadcast(mean))
			variance = graph.ReduceMean(graph.Square(centred), axes...)
			inv := graph.Inverse(graph.Sqrt(graph.AddScalar(variance, BatchNormEpsilon)))
			y = graph.Add(graph.Mul(centred, asBroadcast(graph.Mul(inv, scale))), asBroadcast(offset))
		}
		unbiased := variance
		if n > 1 {
			unbiased = graph.MulScalar(variance, float64(n)/float64(n-1))
		}
		m := BatchNormMomentum
		meanVar.SetValueGraph(graph.Add(
			graph.MulScalar(graph.StopGradient(meanVar.ValueGraph(g)), 1-m),
			graph.MulScalar(graph.StopGradient(mean), m)))
		varVar.SetValueGraph(graph.Add(
			graph.MulScalar(graph.StopGradient(varVar.ValueGraph(g)), 1-m),
			graph.MulScalar(graph.StopGradient(unbiased), m)))
		return y
	}
	mean = meanVar.ValueGraph(g)
	variance = varVar.ValueGraph(g)
	inv := graph.Inverse(graph.Sqrt(graph.AddScalar(variance, BatchNormEpsilon)))
	a := graph.Mul(inv, scale)
	b := graph.Sub(offset, graph.Mul(mean, a))
	return graph.Add(graph.Mul(x, asBroadcast(a)), asBroadcast(b))
}
