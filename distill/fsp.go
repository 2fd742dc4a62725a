package distill

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
)

// FSPMatrix is the "flow of solution procedure" matrix of Yim et al. ("A Gift from Knowledge
// Distillation: Fast Optimization, Network Minimization and Transfer Learning", CVPR 2017, Eq. (1))
// in RepDistiller's form: for two channels-last maps a: [B, H, W, Ca] and b: [B, H', W', Cb], the
// larger pooled to the smaller's grid (adaptive average), G[n, j, i] = mean over positions p of
// b[n, p, j]·a[n, p, i]. Returns [B, Cb, Ca].
func FSPMatrix(a, b *graph.Node) *graph.Node {
	a, b = matchSpatial(a, b)
	d := a.Shape().Dimensions
	hw := d[1] * d[2]
	fa := graph.Reshape(a, d[0], hw, d[3])
	fb := graph.Reshape(b, d[0], hw, b.Shape().Dim(3))
	return graph.DivScalar(graph.Einsum("npj,npi->nji", fb, fa), float64(hw))
}

// FSPLoss sums, over consecutive map pairs (f_i, f_{i+1}), the mean squared difference of the
// student's and the teacher's FSP matrices (METHODS.md §4.2). fs, ft: the student's and the
// teacher's maps, equally many, each [B, H, W, C]; the pairs' channel counts must agree. Returns a
// scalar.
func FSPLoss(fs, ft []*graph.Node) *graph.Node {
	mustPair("fsp", fs, ft)
	if len(fs) < 2 {
		panicf("distill: fsp: needs at least two maps, got %d", len(fs))
	}
	var total *graph.Node
	for i := 0; i+1 < len(fs); i++ {
		gs, gt := FSPMatrix(fs[i], fs[i+1]), FSPMatrix(ft[i], ft[i+1])
		if !gs.Shape().Equal(gt.Shape()) {
			panicf("distill: fsp: pair %d: student FSP matrix %s, teacher %s", i, gs.Shape(), gt.Shape())
		}
		l := graph.ReduceAllMean(graph.Square(graph.Sub(gs, gt)))
		if total == nil {
			total = l
		} else {
			total = graph.Add(total, l)
		}
	}
	return total
}

// FSP is the registry entry for FSP on the stage maps f[:-1] (stem included; a token model, which
// has no stem, contributes its block maps), β = 50. RepDistiller trains FSP in a 30-epoch
// initialisation stage only; here, like every method, its term is added to CE and KD throughout.
type FSP struct{}

// Name implements Method.
func (FSP) Name() string { return "fsp" }

// DefaultBeta implements Weighted.
func (FSP) DefaultBeta() float64 { return 50 }

// fspShapes and fspMaps drop a missing stem (a token model's).
func fspShapes(f FeatureShapes) []shapes.Shape {
	if len(f.Stages) > 0 && !f.Stages[0].Ok() {
		return f.Stages[1:]
	}
	return f.Stages
}

func fspMaps(f backbone.Features) []*graph.Node {
	if len(f.Stages) > 0 && f.Stages[0] == nil {
		return f.Stages[1:]
	}
	return f.Stages
}

// Check implements Method: equally many stage maps, and equal channel counts for each pair (the
// FSP matrices must have the same shape).
func (m FSP) Check(_ *context.Context, s, t FeatureShapes) error {
	sm, tm := fspShapes(s), fspShapes(t)
	if len(sm) < 2 || len(sm) != len(tm) {
		return fmt.Errorf("distill: fsp: the student has %d stage maps and the teacher %d; want the same number, at least 2 (choose them with --student-taps and --teacher-taps)",
			len(sm), len(tm))
	}
	for i, ss := range sm {
		ts := tm[i]
		if !ss.Ok() || !ts.Ok() || ss.Rank() != 4 || ts.Rank() != 4 || ss.Dim(0) != ts.Dim(0) {
			return fmt.Errorf("distill: fsp: stage %d: student %s, teacher %s; want [B, H, W, C] maps of one batch", i, ss, ts)
		}
		if ss.Dim(3) != ts.Dim(3) {
			return fmt.Errorf("distill: fsp: stage %d: the student has %d channels, the teacher %d; FSP needs equal channel counts (choose the maps with --student-taps and --teacher-taps)",
				i, ss.Dim(3), ts.Dim(3))
		}
	}
	return nil
}

// Loss implements Method.
func (FSP) Loss(_ *context.Context, s, t backbone.Features, _ Step) *graph.Node {
	return FSPLoss(fspMaps(s), constants(fspMaps(t)))
}
