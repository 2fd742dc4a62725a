package fit

import (
	"errors"
	"fmt"
	"math"

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
	// dp splits each batch over several devices; nil evaluates on one device.
	dp *DataParallel
}

// NewEvaluator prepares an evaluator for fn on ctx's variables, on one device.
func NewEvaluator(backend backends.Backend, ctx *context.Context, fn LogitsFn) (*Evaluator, error) {
	return NewParallelEvaluator(backend, ctx, fn, nil)
}

// NewParallelEvaluator prepares an evaluator for fn on ctx's variables whose batches are split
// over dp's devices (nil: one device, as NewEvaluator). A batch that does not split evenly is
// padded with zero images that a mask leaves out of every count, so any batch size works; fn must
// then treat examples independently (evaluation-mode batch norms do). dp must be the DataParallel
// of the training job that shares ctx's variables.
func NewParallelEvaluator(backend backends.Backend, ctx *context.Context, fn LogitsFn, dp *DataParallel) (*Evaluator, error) {
	logits := func(ctx *context.Context, images, labels *graph.Node) *graph.Node {
		ctx.SetTraining(images.Graph(), false)
		logits := fn(ctx, images)
		if logits.Rank() != 2 || logits.Shape().Dim(0) != labels.Shape().Dim(0) || !logits.DType().IsFloat() {
			panic(fmt.Errorf("the logits function must return float [B=%d, C], got %s", labels.Shape().Dim(0), logits.Shape()))
		}
		return logits
	}
	if dp == nil {
		graphFn := func(ctx *context.Context, images, labels *graph.Node) (*graph.Node, *graph.Node, *graph.Node) {
			return topKCounts(logits(ctx, images, labels), labels, nil)
		}
		exec, err := context.NewExec(backend, ctx.Reuse(), graphFn)
		if err != nil {
			return nil, fmt.Errorf("fit: evaluator: %w", err)
		}
		return &Evaluator{exec: exec}, nil
	}
	graphFn := func(ctx *context.Context, images, labels, valid *graph.Node) (*graph.Node, *graph.Node, *graph.Node) {
		return topKCounts(logits(ctx, images, labels), labels, valid)
	}
	exec, err := context.NewExec(backend, ctx.Reuse(), graphFn)
	if err != nil {
		return nil, fmt.Errorf("fit: evaluator: %w", err)
	}
	dp.configure(exec, true, true, true)
	return &Evaluator{exec: exec, dp: dp}, nil
}

// topKCounts returns, summed over the batch, the number of top-1 and top-5 hits and the
// cross-entropy (float64 scalars). logits: [B, C]; labels: int [B]; valid: bool [B] or nil: when
// given, only the examples where it is true count (the others are padding).
func topKCounts(logits, labels, valid *graph.Node) (top1, top5, ceSum *graph.Node) {
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
	logProbs := graph.LogSoftmax(graph.ConvertDType(logits, dtypes.Float64), -1)
	if valid == nil {
		hits := func(k int) *graph.Node {
			return graph.ReduceAllSum(graph.ConvertDType(graph.LessThan(rank, graph.Scalar(g, dtypes.Int32, k)), dtypes.Float64))
		}
		ceSum = graph.Neg(graph.ReduceAllSum(graph.Mul(logProbs, graph.ConvertDType(oneHot, dtypes.Float64))))
		return hits(1), hits(5), ceSum
	}
	// Masked: a padded example adds 0 (Where, not a product, so that its value cannot leak a NaN).
	masked := func(x *graph.Node) *graph.Node { return graph.Where(valid, x, graph.ZerosLike(x)) } // [B]
	hits := func(k int) *graph.Node {
		return graph.ReduceAllSum(masked(graph.ConvertDType(graph.LessThan(rank, graph.Scalar(g, dtypes.Int32, k)), dtypes.Float64)))
	}
	ce := graph.Neg(graph.ReduceSum(graph.Mul(logProbs, graph.ConvertDType(oneHot, dtypes.Float64)), -1)) // [B]
	return hits(1), hits(5), graph.ReduceAllSum(masked(ce))
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
		outs, err := e.run(batch)
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
	if math.IsNaN(ce) || math.IsInf(ce, 0) {
		// NaN logits rank the true class first (every comparison is false): refuse rather than
		// report them as 100% accurate.
		return acc, fmt.Errorf("fit: evaluate: non-finite logits (cross-entropy %v over %d examples): the model's weights have diverged", ce, acc.N)
	}
	n := float64(acc.N)
	acc.Top1, acc.Top5, acc.Loss = 100*top1/n, 100*top5/n, ce/n
	return acc, nil
}

// run evaluates one batch: directly on one device, or padded to a multiple of the device count
// (with the validity mask) and split over the devices.
func (e *Evaluator) run(batch data.Batch) ([]*tensors.Tensor, error) {
	if e.dp == nil {
		return e.exec.Exec(batch.Images, batch.Labels)
	}
	n := e.dp.NumDevices()
	b := batch.Labels.Shape().Dim(0)
	if batch.Images.Rank() == 0 || batch.Images.Shape().Dim(0) != b {
		return nil, fmt.Errorf("images of shape %s and %d labels", batch.Images.Shape(), b)
	}
	size := (b + n - 1) / n * n
	images, err := padBatch(batch.Images, size)
	if err != nil {
		return nil, err
	}
	labels, err := padBatch(batch.Labels, size)
	if err != nil {
		return nil, err
	}
	valid := make([]bool, size)
	for k := range b {
		valid[k] = true
	}
	args, err := e.dp.args([]*tensors.Tensor{images, labels, tensors.FromFlatDataAndDimensions(valid, size)}, []bool{true, true, true})
	if err != nil {
		return nil, err
	}
	outs, err := e.exec.Exec(args...)
	if err != nil {
		return nil, err
	}
	return e.dp.firstDevice(outs), nil
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
