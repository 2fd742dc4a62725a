package ssl

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// simsiamMethod is SimSiam and its layer-wise variant lwsimsiam.
//
// SimSiam (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021, Eq. 1–3;
// METHODS.md §10.2): one network serves both branches; there is no momentum copy. With
// D(p, z) = −cos(p, sg z), p = q(g(f(x))) and z = g(f(x)),
//
//	L = ½·D(p^a, z^b) + ½·D(p^b, z^a)    (a batch mean, in [−1, 1]).
//
// Heads (the reference's, widths halved for a d = 64 encoder): projector [Linear → BN → ReLU] ×2 →
// Linear → BN, 1024 wide; predictor a bottleneck 1024 → 256 (Linear → BN → ReLU) → 1024.
//
// lwsimsiam (METHODS.md §10.5): the targets are the online last-layer projections of the other
// crop from the same forward pass, t_i^v = sg g_θ(h_L(x_i^v)); every selected layer predicts them:
//
//	L = 1/(|S|·B) · Σ_{l∈S} Σ_i ½[D(p_{l,i}^a, t_i^b) + D(p_{l,i}^b, t_i^a)].
//
// Positives: (layer l of crop v, last-layer projection of the other crop), 2|S| terms per image.
// Stop-gradient on the targets (and on h_{l<L} with DetachIntermediate). One projector and one
// predictor shared by every layer and crop. With S = {L}, lwsimsiam is simsiam. Multi-crop:
// L = (1/(|S|·P))·Σ_{l, v, g≠v} mean_i D, P = G(G+M−1).
type simsiamMethod struct{ layerwise bool }

func (m simsiamMethod) Doc() string {
	if m.layerwise {
		return "layer-wise SimSiam, every selected layer predicts the stop-gradient last-layer projection of the other crop"
	}
	return "SimSiam, predictor against the stop-gradient projection of the other crop (negative cosine), no momentum network"
}

func (simsiamMethod) Augmentations() int { return globalCrops }
func (simsiamMethod) MultiCrop() bool    { return true }
func (simsiamMethod) Defaults(c PretrainConfig) PretrainConfig {
	if c.Projector.Layers == 0 {
		c.Projector = HeadConfig{Layers: 3, Hidden: 1024, Out: 1024, Norm: NormBatch, Act: ActReLU}
	}
	if c.Predictor.Layers == 0 {
		c.Predictor = HeadConfig{Layers: 2, Hidden: c.Projector.Out / 4, Out: c.Projector.Out, Norm: NormBatch, Act: ActReLU, SkipLastNorm: true}
	}
	if c.Temperature == 0 {
		c.Temperature = DefaultTemperature // unused
	}
	return c
}

func (m simsiamMethod) Loss(ctx *context.Context, encoder EncoderFn, cfg PretrainConfig, augs []*graph.Node, _ *graph.Node) PretrainOutput {
	s := siameseForward(ctx, encoder, cfg, augs, m.layerwise, false)
	return PretrainOutput{Loss: SimSiamLoss(s.online, s.targets), Embeddings: s.embeddings(), Views: s.views}
}

// SimSiamLoss is the (layer-wise, multi-crop) SimSiam loss of METHODS.md §10.2, §10.5:
// (1/(|S|·P)) · Σ_{l, v, g≠v} mean_i −cos(online[l][v]_i, targets[g]_i), P = G(G+M−1). Stop the
// targets' gradient before calling. With one layer and two crops this is SimSiam's
// ½D(p^a, z^b) + ½D(p^b, z^a).
func SimSiamLoss(online [][]*graph.Node, targets []*graph.Node) *graph.Node {
	return crossCrop(online, targets, 1, func(p, t *graph.Node) *graph.Node {
		return graph.Neg(graph.ReduceAllMean(cosine(p, t)))
	})
}
