package distill

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
)

// DefaultKDTemperature is RepDistiller's (and IFACD's) KD temperature T = 4.
const DefaultKDTemperature = 4.0

// KDLoss is Hinton et al.'s knowledge-distillation loss ("Distilling the Knowledge in a Neural
// Network", 2015, §2), as RepDistiller's DistillKL computes it (METHODS.md §4.2):
//
//	T² · (1/B) · Σ_b KL(softmax(teacher_b/T) ‖ softmax(student_b/T))
//
// student, teacher: [B, C] logits of the same shape and float dtype. Returns a scalar. The gradient
// flows into both arguments: stop the teacher's gradient (or freeze its scope) when it must not
// train. Classes where the teacher's probability underflows to 0 contribute 0, as in PyTorch's
// kl_div.
func KDLoss(student, teacher *graph.Node, temperature float64) *graph.Node {
	if !(temperature > 0) {
		panic(fmt.Errorf("distill: KD temperature must be > 0, got %g", temperature))
	}
	if student.Rank() != 2 || !student.Shape().Equal(teacher.Shape()) {
		panic(fmt.Errorf("distill: KD wants student and teacher logits [B, C] of the same shape, got %s and %s",
			student.Shape(), teacher.Shape()))
	}
	if !student.DType().IsFloat() {
		panic(fmt.Errorf("distill: KD logits must be floating point, got %s", student.DType()))
	}
	logPS := graph.LogSoftmax(graph.DivScalar(student, temperature), -1)
	logPT := graph.LogSoftmax(graph.DivScalar(teacher, temperature), -1)
	pT := graph.Exp(logPT)
	kl := graph.ReduceSum(graph.Mul(pT, graph.Sub(logPT, logPS)), -1) // [B]
	return graph.MulScalar(graph.ReduceAllMean(kl), temperature*temperature)
}
