package distill

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/ifa-toolkit/ifa/backbone"
)

// AttentionMap returns the normalised spatial attention map of a feature map f: [B, H, W, C]:
// Q = mean_c f², flattened to [B, H·W] and L2-normalised per sample (PyTorch F.normalize, ε = 1e−12).
func AttentionMap(f *graph.Node) *graph.Node {
	if f.Rank() != 4 {
		panicf("distill: attention: want a [B, H, W, C] map, got %s", f.Shape())
	}
	q := graph.ReduceMean(graph.Square(f), -1)
	return l2Normalize(flatten(q), 1, normalizeEpsilon)
}

// ATLoss is attention transfer (Zagoruyko & Komodakis, "Paying More Attention to Attention",
// ICLR 2017, Eq. (2), p = 2) in RepDistiller's form: Σ_layers mean_{i,pix} (Q̂_s − Q̂_t)², with
// Q̂ = AttentionMap and, per layer, the spatially larger map average-pooled to the smaller size.
//
// fs, ft: the student and teacher maps, pairwise, each [B, H, W, C] (channel counts may differ).
// The teacher maps are used as given (the caller stops their gradient). Returns a scalar.
func ATLoss(fs, ft []*graph.Node) *graph.Node {
	mustPair("attention", fs, ft)
	var total *graph.Node
	for i := range fs {
		s, t := matchSpatial(fs[i], ft[i])
		l := graph.ReduceAllMean(graph.Square(graph.Sub(AttentionMap(s), AttentionMap(t))))
		if total == nil {
			total = l
		} else {
			total = graph.Add(total, l)
		}
	}
	return total
}

// Attention is the registry entry for AT: ATLoss over the intermediate stage maps f[1:-1]
// (Stages[1:]), β = 1000.
type Attention struct{}

// Name implements Method.
func (Attention) Name() string { return "attention" }

// DefaultBeta implements Weighted.
func (Attention) DefaultBeta() float64 { return 1000 }

// Check implements Method.
func (m Attention) Check(_ *context.Context, s, t FeatureShapes) error {
	return checkIntermediatePairs(m.Name(), s, t)
}

// Loss implements Method.
func (Attention) Loss(_ *context.Context, s, t backbone.Features, _ Step) *graph.Node {
	return ATLoss(intermediate(s), constants(intermediate(t)))
}

// checkIntermediatePairs checks that student and teacher have the same non-zero number of
// intermediate [B, H, W, C] stage maps with the same batch size.
func checkIntermediatePairs(name string, s, t FeatureShapes) error {
	ss, ts := intermediateShapes(s), intermediateShapes(t)
	if len(ss) == 0 || len(ss) != len(ts) {
		return fmt.Errorf("distill: %s: student has %d intermediate stage maps (Stages[1:]) and teacher %d; want the same non-zero number (choose as many layers of each with a tap choice, ifa distill --student-taps/--teacher-taps)", name, len(ss), len(ts))
	}
	for i := range ss {
		if ss[i].Rank() != 4 || ts[i].Rank() != 4 {
			return fmt.Errorf("distill: %s: stage %d: want [B, H, W, C] maps, got student %s and teacher %s", name, i+1, ss[i], ts[i])
		}
		if ss[i].Dim(0) != ts[i].Dim(0) {
			return fmt.Errorf("distill: %s: stage %d: batch sizes differ: student %s, teacher %s", name, i+1, ss[i], ts[i])
		}
	}
	return nil
}
