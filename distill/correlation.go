package distill

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/nn"
	"github.com/ifa-toolkit/ifa/internal/param"
)

// CCLoss is correlation congruence (Peng et al., "Correlation Congruence for Knowledge
// Distillation", ICCV 2019, the correlation-congruence term of Eq. (9)) in the simplified form
// RepDistiller ships: with δ = |e_s − e_t|, mean_{i<B−1} Σ_d δ_{i,d}·δ_{i+1,d} over consecutive
// batch rows.
//
// es, et: [B, D] student and teacher embeddings (equal widths, B ≥ 2). Returns a scalar.
func CCLoss(es, et *graph.Node) *graph.Node {
	if es.Rank() != 2 || !es.Shape().EqualDimensions(et.Shape()) || es.Shape().Dim(0) < 2 {
		panicf("distill: correlation: want equal [B, D] embeddings with B >= 2, got %s and %s", es.Shape(), et.Shape())
	}
	b := es.Shape().Dim(0)
	delta := graph.Abs(graph.Sub(es, et))
	// next[i] = delta[i+1] for i < B−1 and 0 for the last row, as a product with a constant shift
	// matrix (whose gradient needs no padding op).
	shift := make([][]float64, b)
	for i := range shift {
		shift[i] = make([]float64, b)
		if i+1 < b {
			shift[i][i+1] = 1
		}
	}
	next := graph.MatMul(graph.ConstAsDType(es.Graph(), es.DType(), shift), delta)
	return graph.DivScalar(graph.ReduceAllSum(graph.Mul(delta, next)), float64(b-1))
}

// LinearEmbed is RepDistiller's LinearEmbed: x flattened per sample to [B, D], then a linear layer
// (with bias) to dim; [B, dim]. Variables "weights" and "biases" in ctx's scope.
func LinearEmbed(ctx *context.Context, x *graph.Node, dim int) *graph.Node {
	return nn.Linear(ctx, flatten(x), dim)
}

// Correlation is the registry entry for CC: both pooled features go through their own
// LinearEmbed (scopes correlation/embed_s and correlation/embed_t, width ParamCCFeatDim = 128,
// both trained; the teacher feature itself is a constant), then CCLoss; β = 0.02.
//
// As in RepDistiller, nothing normalises the features or the embeddings: the loss grows with the
// square of the pooled teacher feature's scale, and so does its gradient with respect to the
// embeddings. A teacher whose eval-mode batch-norm statistics are unsettled (a deep ResNet trained
// for a few steps) can give an initial loss of order 10⁵–10⁹ and an SGD step that overshoots: the
// run then stops on a non-finite loss within a few steps, even at a tenth of the default β. With
// a teacher trained for a few dozen steps (checked with resnet56 and resnet110) the same pair
// trains normally.
type Correlation struct{}

// ParamCCFeatDim: the width of CC's linear embeddings.
const ParamCCFeatDim = "cc_feat_dim"

var ccParams = param.Table{
	{Key: ParamCCFeatDim, Default: 128, Doc: "CC: embedding width"},
}

// Params implements Tunable.
func (Correlation) Params() param.Table { return ccParams }

// Name implements Method.
func (Correlation) Name() string { return "correlation" }

// DefaultBeta implements Weighted.
func (Correlation) DefaultBeta() float64 { return 0.02 }

// Check implements Method.
func (m Correlation) Check(_ *context.Context, s, t FeatureShapes) error {
	return checkPooled(m.Name(), s, t)
}

// HeadParams implements WithHeads: two linear embeddings, counted once (METHODS.md §2.1).
func (m Correlation) HeadParams(ctx *context.Context, s, t FeatureShapes) (HeadParams, error) {
	if err := m.Check(ctx, s, t); err != nil {
		return HeadParams{}, err
	}
	dim := param.Get[int](ctx.In(m.Name()), ccParams, ParamCCFeatDim)
	return HeadParams{Params: nn.LinearParams(s.Pooled.Dim(1), dim, true) + nn.LinearParams(t.Pooled.Dim(1), dim, true)}, nil
}

// Loss implements Method.
func (m Correlation) Loss(ctx *context.Context, s, t backbone.Features, _ Step) *graph.Node {
	ctx = ctx.In(m.Name())
	dim := param.Get[int](ctx, ccParams, ParamCCFeatDim)
	es := LinearEmbed(ctx.In("embed_s"), s.Pooled, dim)
	et := LinearEmbed(ctx.In("embed_t"), graph.StopGradient(t.Pooled), dim)
	return CCLoss(es, et)
}
