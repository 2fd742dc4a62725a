package distill

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/ifa-toolkit/ifa/backbone"
)

// pktEpsilon is PKT's ε, both in the row normalisation and in the KL ratio.
const pktEpsilon = 1e-7

// pktProbabilities returns PKT's conditional probabilities for x: [B, D]: rows normalised by
// ‖x‖ + ε (NaN entries set to 0), C = (x̂·x̂ᵀ + 1)/2, and each row of C divided by its sum; [B, B].
func pktProbabilities(x *graph.Node) *graph.Node {
	norm := graph.AddScalar(graph.Sqrt(graph.ReduceAndKeep(graph.Square(x), graph.ReduceSum, 1)), pktEpsilon)
	xn := graph.Div(x, norm)
	xn = graph.Where(graph.IsNaN(xn), graph.ZerosLike(xn), xn)
	c := graph.DivScalar(graph.AddScalar(graph.Einsum("id,jd->ij", xn, xn), 1), 2)
	return graph.Div(c, graph.ReduceAndKeep(c, graph.ReduceSum, 1))
}

// PKTLoss is probabilistic knowledge transfer (Passalis & Tefas, "Learning Deep Representations
// with Probabilistic Knowledge Transfer", ECCV 2018: the cosine-kernel conditional probabilities
// and the KL divergence between them, Eqs. (6)–(10)) in RepDistiller's form:
// mean over all B² entries of Q_t·log((Q_t + ε)/(Q_s + ε)), ε = 1e−7, Q = pktProbabilities.
//
// fs, ft: [B, D_s] and [B, D_t] (widths may differ). Returns a scalar.
func PKTLoss(fs, ft *graph.Node) *graph.Node {
	if fs.Rank() != 2 || ft.Rank() != 2 || fs.Shape().Dim(0) != ft.Shape().Dim(0) {
		panicf("distill: pkt: want [B, D] student and teacher features, got %s and %s", fs.Shape(), ft.Shape())
	}
	qs, qt := pktProbabilities(fs), pktProbabilities(ft)
	ratio := graph.Div(graph.AddScalar(qt, pktEpsilon), graph.AddScalar(qs, pktEpsilon))
	return graph.ReduceAllMean(graph.Mul(qt, graph.Log(ratio)))
}

// PKT is the registry entry for PKT on the pooled features, β = 30000.
type PKT struct{}

// Name implements Method.
func (PKT) Name() string { return "pkt" }

// DefaultBeta implements Weighted.
func (PKT) DefaultBeta() float64 { return 30000 }

// Check implements Method.
func (m PKT) Check(_ *context.Context, s, t FeatureShapes) error { return checkPooled(m.Name(), s, t) }

// Loss implements Method.
func (PKT) Loss(_ *context.Context, s, t backbone.Features, _ Step) *graph.Node {
	return PKTLoss(s.Pooled, graph.StopGradient(t.Pooled))
}

// checkPooled checks that student and teacher have [B, D] pooled features of the same batch size.
func checkPooled(name string, s, t FeatureShapes) error {
	if !s.Pooled.Ok() || !t.Pooled.Ok() || s.Pooled.Rank() != 2 || t.Pooled.Rank() != 2 {
		return fmt.Errorf("distill: %s: want [B, D] pooled features, got student %s and teacher %s", name, s.Pooled, t.Pooled)
	}
	if s.Pooled.Dim(0) != t.Pooled.Dim(0) {
		return fmt.Errorf("distill: %s: batch sizes differ: student %s, teacher %s", name, s.Pooled, t.Pooled)
	}
	return nil
}
