package distill

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/ifa-toolkit/ifa/backbone"
)

// nstKernelMean returns mean_{b,i,j} (â_{b,i}·b̂_{b,j})², the degree-2 polynomial kernel averaged
// over every pair of channels i of a: [B, HW, Ca] and j of b: [B, HW, Cb] and over the batch.
func nstKernelMean(a, b *graph.Node) *graph.Node {
	k := graph.Einsum("bpi,bpj->bij", a, b)
	return graph.ReduceAllMean(graph.Square(k))
}

// NSTLoss is neuron selectivity transfer (Huang & Wang, "Like What You Like: Knowledge Distill via
// Neuron Selectivity Transfer", 2017: the squared MMD of Eq. (5) with the polynomial kernel
// k(x, y) = (xᵀy)², d = 2, c = 0) in RepDistiller's form, summed over layers:
// mean K_tt + mean K_ss − 2·mean K_st, where each channel's spatial vector is L2-normalised
// (F.normalize) after pooling the larger map to the smaller size.
//
// fs, ft: the student and teacher maps, pairwise, each [B, H, W, C] (channel counts may differ).
// Returns a scalar.
func NSTLoss(fs, ft []*graph.Node) *graph.Node {
	mustPair("nst", fs, ft)
	var total *graph.Node
	for i := range fs {
		s, t := matchSpatial(fs[i], ft[i])
		prep := func(x *graph.Node) *graph.Node {
			d := x.Shape().Dimensions
			return l2Normalize(graph.Reshape(x, d[0], d[1]*d[2], d[3]), 1, normalizeEpsilon)
		}
		s, t = prep(s), prep(t)
		l := graph.Sub(graph.Add(nstKernelMean(t, t), nstKernelMean(s, s)), graph.MulScalar(nstKernelMean(s, t), 2))
		if total == nil {
			total = l
		} else {
			total = graph.Add(total, l)
		}
	}
	return total
}

// NST is the registry entry for NST on the intermediate stage maps f[1:-1], β = 50.
type NST struct{}

// Name implements Method.
func (NST) Name() string { return "nst" }

// DefaultBeta implements Weighted.
func (NST) DefaultBeta() float64 { return 50 }

// Check implements Method.
func (m NST) Check(_ *context.Context, s, t FeatureShapes) error {
	return checkIntermediatePairs(m.Name(), s, t)
}

// Loss implements Method.
func (NST) Loss(_ *context.Context, s, t backbone.Features, _ Step) *graph.Node {
	return NSTLoss(intermediate(s), constants(intermediate(t)))
}
