package fit

import (
	"errors"
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/data"
)

// LogitsFn returns class logits for a batch of images: images as data.Batch gives them, logits
// [B, C] float. It runs in evaluation mode (ctx.IsTraining(g) is false) on a context that reuses
// existing variables (declaring a new one is an error).
type LogitsFn func(ctx *context.Context, images *graph.Node) *graph.Node

// Accuracy is the result of an evaluation pass.
type Accuracy struct {
	// Top1 and Top5 are percentages (0–100). A prediction ranks the true class by its logit, ties
	// broken towards the lower class index (a stable descending sort); top-k is correct when that
	// rank is below k.
	Top1, Top5 float64
	// Loss is the mean cross-entropy (natural log) of the softmax of the logits.
	Loss float64
	// N is the number of examples evaluated.
	N int
}

// Metrics returns the accuracy as metrics named prefix+"top1", prefix+"top5", prefix+"loss"
// (e.g. prefix "test_").
func (a Accuracy) Metrics(prefix string) map[string]float64 {
	return map[string]float64{prefix + "top1": a.Top1, prefix + "top5": a.Top5, prefix + "loss": a.Loss}
}

// Evaluator computes top-1/top-5 accuracy of a logits function over loaders, compiling its graph
// once per batch shape.
type Evaluator struct {
	exec *context.Exec
}

// NewEvaluator prepares an evaluator for fn on ctx's variables.
func NewEvaluator(backend backends.Backend, ctx *context.Context, fn LogitsFn) (*Evaluator, error) {
	graphFn := func(ctx *context.Context, images, labels *graph.Node) (*graph.Node, *graph.Node, *graph.Node) {
		g := images.Graph()
		ctx.SetTraining(g, false)
		logits := fn(ctx, images)
		if logits.Rank() != 2 || logits.Shape().Dim(0) != labels.Shape().Dim(0) || !logits.DType().IsFloat() {
			panic(fmt.Sprintf("the logits function must return float [B=%d, C], got %s", labels.Shape().Dim(0), logits.Shape()))
		}
		return topKCounts(logits, labels)
	}
	exec, err := context.NewExec(backend, ctx.Reuse(), graphFn)
	if err != nil {
		return nil, fmt.Errorf("fit: evaluator: %w", err)
	}
	return &Evaluator{exec: exec}, nil
}

// topKCounts returns, summed over the batch, the number of top-1 and top-5 hits and the
// cross-entropy (float64 scalars). logits: [B, C]; labels: int [B].
func topKCounts(logits, labels *graph.Node) (top1, top5, ceSum *graph.Node) {
	g := logits.Graph()
	b, c := logits.Shape().Dim(0), logits.Shape().Dim(1)
	labels = graph.ConvertDType(labels, dtypes.Int32)
	oneHot := graph.OneHot(labels, c, logits.DType())
	trueLogit := graph.ReduceSum(graph.Mul(logits, oneHot), -1) // [B]
	trueB := graph.ExpandAxes(trueLogit, -1)                    // [B, 1]
	classIdx := graph.Iota(g, shapes.Make(dtypes.Int32, b, c), 1)
	before := graph.LessThan(classIdx, graph.ExpandAxes(labels, -1))
	ahead := graph.LogicalOr(graph.GreaterThan(logits, trueB), graph.LogicalAnd(graph.Equal(logits, trueB), before))
	rank := graph.ReduceSum(graph.ConvertDType(ahead, dtypes.Int32), -1) // [B]
	hits := func(k int) *graph.Node {
		return graph.ReduceAllSum(graph.ConvertDType(graph.LessThan(rank, graph.Scalar(g, dtypes.Int32, k)), dtypes.Float64))
	}
	logProbs := graph.LogSoftmax(graph.ConvertDType(logits, dtypes.Float64), -1)
	ceSum = graph.Neg(graph.ReduceAllSum(graph.Mul(logProbs, graph.ConvertDType(oneHot, dtypes.Float64))))
	return hits(1), hits(5), ceSum
}

// Evaluate runs the evaluator over epoch 0 of loader, whose batches must carry labels.
func (e *Evaluator) Evaluate(loader data.Loader) (Accuracy, error) {
	var acc Accuracy
	var top1, top5, ce float64
	i := 0
	for batch, err := range loader.Epoch(0) {
		i++
		if err != nil {
			return acc, fmt.Errorf("fit: evaluate: batch %d: %w", i, err)
		}
		if batch.Labels == nil {
			return acc, fmt.Errorf("fit: evaluate: batch %d has no labels", i)
		}
		outs, err := e.exec.Exec(batch.Images, batch.Labels)
		if err != nil {
			return acc, fmt.Errorf("fit: evaluate: batch %d: %w", i, err)
		}
		top1 += tensors.ToScalar[float64](outs[0])
		top5 += tensors.ToScalar[float64](outs[1])
		ce += tensors.ToScalar[float64](outs[2])
		acc.N += batch.Labels.Shape().Dim(0)
	}
	if acc.N == 0 {
		return acc, errors.New("fit: evaluate: the loader yielded no examples")
	}
	n := float64(acc.N)
	acc.Top1, acc.Top5, acc.Loss = 100*top1/n, 100*top5/n, ce/n
	return acc, nil
}

// Finalize releases the compiled graphs.
func (e *Evaluator) Finalize() { e.exec.Finalize() }

// Evaluate computes top-1/top-5 accuracy and mean cross-entropy of fn over epoch 0 of loader, in
// evaluation mode. Callers evaluating repeatedly should keep an Evaluator instead.
func Evaluate(backend backends.Backend, ctx *context.Context, loader data.Loader, fn LogitsFn) (Accuracy, error) {
	e, err := NewEvaluator(backend, ctx, fn)
	if err != nil {
		return Accuracy{}, err
	}
	defer e.Finalize()
	return e.Evaluate(loader)
}
