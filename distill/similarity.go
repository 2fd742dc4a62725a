package distill

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/ifa-toolkit/ifa/backbone"
)

// SimilarityGram returns the row-normalised batch similarity matrix of f: [B, ...]:
// G = F·Fᵀ with F = f flattened per sample, each row L2-normalised (F.normalize, ε = 1e−12); [B, B].
func SimilarityGram(f *graph.Node) *graph.Node {
	x := flatten(f)
	g := graph.Einsum("id,jd->ij", x, x)
	return l2Normalize(g, 1, normalizeEpsilon)
}

// SPLoss is similarity-preserving distillation (Tung & Mori, "Similarity-Preserving Knowledge
// Distillation", ICCV 2019, Eqs. (2)–(4)): ‖G_t − G_s‖²_F / B², with G = SimilarityGram.
//
// fs, ft: the student and teacher features of one layer, [B, ...] each (any trailing shapes; the
// flattening order does not change G). Returns a scalar.
func SPLoss(fs, ft *graph.Node) *graph.Node {
	b := fs.Shape().Dim(0)
	if ft.Shape().Dim(0) != b {
		panicf("distill: similarity: batch sizes differ: student %s, teacher %s", fs.Shape(), ft.Shape())
	}
	d := graph.Sub(SimilarityGram(ft), SimilarityGram(fs))
	return graph.DivScalar(graph.ReduceAllSum(graph.Square(d)), float64(b*b))
}

// Similarity is the registry entry for SP: SPLoss on the last stage map f[-2], β = 3000.
type Similarity struct{}

// Name implements Method.
func (Similarity) Name() string { return "similarity" }

// DefaultBeta implements Weighted.
func (Similarity) DefaultBeta() float64 { return 3000 }

// Check implements Method.
func (Similarity) Check(_ *context.Context, s, t FeatureShapes) error {
	if len(s.Stages) == 0 || len(t.Stages) == 0 {
		return fmt.Errorf("distill: similarity: student (%d) and teacher (%d) need stage maps", len(s.Stages), len(t.Stages))
	}
	ls, lt := s.Stages[len(s.Stages)-1], t.Stages[len(t.Stages)-1]
	if ls.Dim(0) != lt.Dim(0) {
		return fmt.Errorf("distill: similarity: batch sizes differ: student %s, teacher %s", ls, lt)
	}
	return nil
}

// Loss implements Method.
func (Similarity) Loss(_ *context.Context, s, t backbone.Features, _ Step) *graph.Node {
	if len(s.Stages) == 0 || len(t.Stages) == 0 {
		panicf("distill: similarity: student and teacher need stage maps")
	}
	return SPLoss(s.Stages[len(s.Stages)-1], graph.StopGradient(t.Stages[len(t.Stages)-1]))
}
