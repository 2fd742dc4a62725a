package fit

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
)

// CrossEntropy is the mean softmax cross-entropy of logits [B, K] against int labels [B] (natural
// log), computed with a log-softmax in the logits' dtype. Returns a scalar.
func CrossEntropy(logits, labels *graph.Node) *graph.Node {
	if logits.Rank() != 2 || labels.Rank() != 1 || labels.Shape().Dim(0) != logits.Shape().Dim(0) {
		panic(fmt.Errorf("fit: cross-entropy wants logits [B, K] and labels [B], got %s and %s", logits.Shape(), labels.Shape()))
	}
	oneHot := graph.OneHot(graph.ConvertDType(labels, dtypes.Int32), logits.Shape().Dim(1), logits.DType())
	return graph.Neg(graph.ReduceAllMean(graph.ReduceSum(graph.Mul(graph.LogSoftmax(logits, -1), oneHot), -1)))
}

// BatchTop1 is the percentage of rows of logits [B, K] whose largest logit is at the label's index
// (ties count as hits only when the label's logit is strictly the first maximum: ArgMax's lowest
// index). Returns a float32 scalar, logged as a training term.
func BatchTop1(logits, labels *graph.Node) *graph.Node {
	pred := graph.ArgMax(logits, -1, dtypes.Int32)
	hits := graph.ConvertDType(graph.Equal(pred, graph.ConvertDType(labels, dtypes.Int32)), dtypes.Float32)
	return graph.MulScalar(graph.ReduceAllMean(hits), 100)
}

// Classification is the supervised loss of a classifier: cross-entropy as the total, with the
// terms "ce" and "top1" (the batch's top-1 percentage).
func Classification(logits, labels *graph.Node) Loss {
	ce := CrossEntropy(logits, labels)
	return Loss{Total: ce, Terms: []Term{{Name: "ce", Value: ce}, {Name: "top1", Value: BatchTop1(logits, labels)}}}
}
