package distill

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/param"
)

// rkdClamp is the floor on squared distances before the square root.
const rkdClamp = 1e-12

// smoothL1Mean is PyTorch's smooth_l1_loss with β = 1, averaged over all elements:
// mean(0.5·d² if |d| < 1 else |d| − 0.5), d = a − b.
func smoothL1Mean(a, b *graph.Node) *graph.Node {
	d := graph.Sub(a, b)
	ad := graph.Abs(d)
	quad := graph.MulScalar(graph.Square(d), 0.5)
	lin := graph.SubScalar(ad, 0.5)
	return graph.ReduceAllMean(graph.Where(graph.LessThan(ad, graph.ScalarOne(d.Graph(), d.DType())), quad, lin))
}

// RKDDistances returns RKD's distance potential ψ_D for e: [B, D]: the Euclidean distances
// ‖e_i − e_j‖ (computed as √max(|e_i|² + |e_j|² − 2e_i·e_j, 1e−12), diagonal set to 0) divided by
// their mean over the positive entries; [B, B].
func RKDDistances(e *graph.Node) *graph.Node {
	g := e.Graph()
	b := e.Shape().Dim(0)
	sq := graph.ReduceSum(graph.Square(e), 1)
	prod := graph.Einsum("id,jd->ij", e, e)
	d2 := graph.Sub(graph.Add(graph.ExpandAxes(sq, 1), graph.ExpandAxes(sq, 0)), graph.MulScalar(prod, 2))
	d := graph.Sqrt(graph.MaxScalar(d2, rkdClamp))
	offDiag := graph.Not(graph.Diagonal(g, b))
	d = graph.Where(offDiag, d, graph.ZerosLike(d))
	positive := graph.ConvertDType(graph.GreaterThan(d, graph.ZerosLike(d)), d.DType())
	mean := graph.Div(graph.ReduceAllSum(d), graph.StopGradient(graph.ReduceAllSum(positive)))
	return graph.Div(d, mean)
}

// RKDAngles returns RKD's angle potential ψ_A for e: [B, D]: for every triple (i, j, k) the cosine
// ⟨n(e_j − e_i), n(e_k − e_i)⟩, n = F.normalize (ε = 1e−12, so terms with j = i or k = i are 0);
// [B, B, B].
func RKDAngles(e *graph.Node) *graph.Node {
	diff := graph.Sub(graph.ExpandAxes(e, 0), graph.ExpandAxes(e, 1)) // [i, j, :] = e_j − e_i
	n := l2Normalize(diff, 2, normalizeEpsilon)
	return graph.Einsum("ijd,ikd->ijk", n, n)
}

// RKDLoss is relational knowledge distillation (Park et al., "Relational Knowledge Distillation",
// CVPR 2019: distance-wise loss with ψ_D, Eqs. (3)–(4), and angle-wise loss with ψ_A, Eqs. (5)–(6),
// both with the Huber loss l_δ, δ = 1), combined as
// wDist·smoothL1(ψ_D(s), ψ_D(t)) + wAngle·smoothL1(ψ_A(s), ψ_A(t)).
//
// fs, ft: [B, ...] student and teacher features, flattened per sample (widths may differ). The
// teacher potentials are computed from StopGradient(ft). Returns a scalar.
func RKDLoss(fs, ft *graph.Node, wDist, wAngle float64) *graph.Node {
	if fs.Shape().Dim(0) != ft.Shape().Dim(0) {
		panicf("distill: rkd: batch sizes differ: student %s, teacher %s", fs.Shape(), ft.Shape())
	}
	s, t := flatten(fs), graph.StopGradient(flatten(ft))
	lossD := smoothL1Mean(RKDDistances(s), RKDDistances(t))
	lossA := smoothL1Mean(RKDAngles(s), RKDAngles(t))
	return graph.Add(graph.MulScalar(lossD, wDist), graph.MulScalar(lossA, wAngle))
}

// RKD is the registry entry for RKD on the pooled features, β = 1; the term weights are the
// context parameters ParamRKDDistWeight (25) and ParamRKDAngleWeight (50).
type RKD struct{}

// ParamRKDDistWeight and ParamRKDAngleWeight weigh RKD's distance and angle terms.
const (
	ParamRKDDistWeight  = "rkd_w_dist"
	ParamRKDAngleWeight = "rkd_w_angle"
)

var rkdParams = param.Table{
	{Key: ParamRKDDistWeight, Default: 25.0, Doc: "RKD: weight of the distance term"},
	{Key: ParamRKDAngleWeight, Default: 50.0, Doc: "RKD: weight of the angle term"},
}

// Params implements Tunable.
func (RKD) Params() param.Table { return rkdParams }

// Name implements Method.
func (RKD) Name() string { return "rkd" }

// DefaultBeta implements Weighted.
func (RKD) DefaultBeta() float64 { return 1 }

// Check implements Method.
func (m RKD) Check(_ *context.Context, s, t FeatureShapes) error { return checkPooled(m.Name(), s, t) }

// Loss implements Method.
func (m RKD) Loss(ctx *context.Context, s, t backbone.Features, _ Step) *graph.Node {
	ctx = ctx.In(m.Name())
	wd := param.Get[float64](ctx, rkdParams, ParamRKDDistWeight)
	wa := param.Get[float64](ctx, rkdParams, ParamRKDAngleWeight)
	return RKDLoss(s.Pooled, t.Pooled, wd, wa)
}
