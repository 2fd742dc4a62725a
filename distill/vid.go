package distill

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/param"
)

// vidEpsilon is VID's floor on the predicted variance: σ² = softplus(θ) + ε.
const vidEpsilon = 1e-5

// VIDLoss is the variational information distillation term of one layer (Ahn et al., "Variational
// Information Distillation for Knowledge Transfer", CVPR 2019: −log q(t|s) for the Gaussian with
// heteroscedastic per-channel variance, Eq. (5)), as RepDistiller averages it:
// mean_{b,h,w,c} ½[(μ − t)²/σ²_c + log σ²_c].
//
// mean, target: [B, H, W, C]; variance: [C], positive. Returns a scalar.
func VIDLoss(mean, target, variance *graph.Node) *graph.Node {
	if !mean.Shape().EqualDimensions(target.Shape()) || variance.Rank() != 1 || variance.Shape().Dim(0) != mean.Shape().Dim(-1) {
		panicf("distill: vid: want mean and target of equal shape and a [C] variance, got %s, %s, %s", mean.Shape(), target.Shape(), variance.Shape())
	}
	v := graph.ExpandLeftToRank(variance, mean.Rank())
	nll := graph.Add(graph.Div(graph.Square(graph.Sub(mean, target)), v), graph.Log(v))
	return graph.MulScalar(graph.ReduceAllMean(nll), 0.5)
}

// VIDRegressor predicts the teacher map's mean from the student map s: [B, H, W, Cs]: three 1×1
// convolutions without bias, Cs → mid → mid → out, with ReLUs between; [B, H, W, out]. Variables
// in ctx.In("conv_0"), ctx.In("conv_1"), ctx.In("conv_2").
func VIDRegressor(ctx *context.Context, s *graph.Node, mid, out int) *graph.Node {
	relu := func(x *graph.Node) *graph.Node { return graph.Max(x, graph.ZerosLike(x)) }
	y := conv2d(ctx.In("conv_0"), s, conv2dSpec{kh: 1, kw: 1, out: mid})
	y = conv2d(ctx.In("conv_1"), relu(y), conv2dSpec{kh: 1, kw: 1, out: mid})
	return conv2d(ctx.In("conv_2"), relu(y), conv2dSpec{kh: 1, kw: 1, out: out})
}

// VIDVariance returns VID's per-channel variance σ² = softplus(θ) + 1e−5, [channels], with θ the
// trainable variable "log_scale" in ctx's scope, initialised to log(exp(initVar − 1e−5) − 1) so
// that σ² starts at initVar.
func VIDVariance(ctx *context.Context, g *graph.Graph, dtype dtypes.DType, channels int, initVar float64) *graph.Node {
	theta0 := math.Log(math.Expm1(initVar - vidEpsilon))
	init := func(g *graph.Graph, shape shapes.Shape) *graph.Node {
		return graph.AddScalar(initializers.Zero(g, shape), theta0)
	}
	theta := ctx.WithInitializer(init).VariableWithShape("log_scale", shapes.Make(dtype, channels)).ValueGraph(g)
	return graph.AddScalar(graph.Softplus(theta), vidEpsilon)
}

// VID is the registry entry for VID: for each pair of intermediate stage maps f[1:-1]
// (Stages[1:]), the larger map is pooled to the smaller size, a VIDRegressor (Cs → Ct → Ct → Ct)
// and a VIDVariance over Ct (scope vid/layer_<i>) give VIDLoss; the layers' terms are summed;
// β = 1.
type VID struct{}

// ParamVIDInitVar: VID's initial predicted variance σ² (softplus(θ) + ε at initialisation).
const ParamVIDInitVar = "vid_init_var"

var vidParams = param.Table{
	{Key: ParamVIDInitVar, Default: 5.0, Doc: "VID: initial predicted variance"},
}

// Params implements Tunable.
func (VID) Params() param.Table { return vidParams }

// Name implements Method.
func (VID) Name() string { return "vid" }

// DefaultBeta implements Weighted.
func (VID) DefaultBeta() float64 { return 1 }

// Check implements Method.
func (m VID) Check(_ *context.Context, s, t FeatureShapes) error {
	return checkIntermediatePairs(m.Name(), s, t)
}

// HeadParams implements WithHeads: per layer Cs·Ct + 2·Ct² regressor weights and Ct variance
// parameters, counted once (METHODS.md §2.1).
func (m VID) HeadParams(ctx *context.Context, s, t FeatureShapes) (HeadParams, error) {
	if err := m.Check(ctx, s, t); err != nil {
		return HeadParams{}, err
	}
	n := 0
	ss, ts := intermediateShapes(s), intermediateShapes(t)
	for i := range ss {
		cs, ct := ss[i].Dim(3), ts[i].Dim(3)
		n += cs*ct + 2*ct*ct + ct
	}
	return HeadParams{Params: n}, nil
}

// Loss implements Method.
func (m VID) Loss(ctx *context.Context, s, t backbone.Features, _ Step) *graph.Node {
	ctx = ctx.In(m.Name())
	initVar := param.Get[float64](ctx, vidParams, ParamVIDInitVar)
	fs, ft := intermediate(s), constants(intermediate(t))
	mustPair(m.Name(), fs, ft)
	var total *graph.Node
	for i := range fs {
		si, ti := matchSpatial(fs[i], ft[i])
		lctx := ctx.In(fmt.Sprintf("layer_%d", i))
		ct := ti.Shape().Dim(3)
		mean := VIDRegressor(lctx.In("regressor"), si, ct, ct)
		variance := VIDVariance(lctx, si.Graph(), si.DType(), ct, initVar)
		l := VIDLoss(mean, ti, variance)
		if total == nil {
			total = l
		} else {
			total = graph.Add(total, l)
		}
	}
	return total
}
