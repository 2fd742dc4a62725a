package ssl

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// byolMethod is BYOL and its layer-wise variant lwbyol.
//
// BYOL (Grill et al., "Bootstrap your own latent", NeurIPS 2020, §3.1 and Eq. 2; METHODS.md
// §10.1): an online network (encoder f_θ, projector g_θ, predictor q_θ) predicts the projection of
// a momentum target network (f_ξ, g_ξ; no predictor) on the other augmentation. With
// n(x) = x/max(‖x‖, 1e-12) and ℓ(p, z) = ‖n(p) − n(z)‖² = 2 − 2·cos(p, z),
//
//	L = (1/B) Σ_i [ℓ(p_i^a, sg z'_i^b) + ℓ(p_i^b, sg z'_i^a)]
//
// the two directions summed as the reference does (per image in [0, 8]). The target is a
// stop-gradient, non-trainable copy updated after each step by ξ ← τξ + (1−τ)θ with τ from
// τ_base = 0.99 to 1 along a cosine (fit.EMA); it starts as a copy of the online weights. Heads
// (solo-learn/lightly form, widths scaled to a d = 64 encoder as METHODS.md §10.4 advises):
// projector Linear(1024) → BN → ReLU → Linear(256), predictor the same on 256.
//
// lwbyol (METHODS.md §10.5): every selected online layer l ∈ S (the last one included) is a
// prediction; the targets stay the momentum network's last-layer projections of the other global
// crop:
//
//	L = 1/(|S|·B) · Σ_{l∈S} Σ_{v∈{a,b}} Σ_i [2 − 2·n(p_{l,i}^v)·n(t_i^v̄)],
//	p_{l,i}^v = q_θ(g_θ(h_l(x_i^v))),   t_i^v = sg g_ξ(f_ξ,L(x_i^v)).
//
// Positives: (layer l of crop v, target of the other crop), one pair per layer and direction:
// 2|S| terms per image against 2 target vectors. Stop-gradients: on the targets only (and on
// h_{l<L} with DetachIntermediate). Shared heads: one projector and one predictor for every layer
// and crop; the target projector is the EMA of that projector. With S = {L}, lwbyol is byol.
// With local crops (multi-crop), every layer of every crop v is paired with the target of every
// global g ≠ v, L = (2/(|S|·P))·Σ, P = G(G+M−1) (§10.4).
type byolMethod struct{ layerwise bool }

func (m byolMethod) Doc() string {
	if m.layerwise {
		return "layer-wise BYOL, every selected online layer predicts the target's last-layer projection of the other crop"
	}
	return "BYOL, online projector + predictor regress the EMA target's projection of the other crop (2 - 2cos)"
}

func (byolMethod) Augmentations() int    { return globalCrops }
func (byolMethod) MultiCrop() bool       { return true }
func (byolMethod) Targets() []TargetPair { return momentumTargets() }
func (byolMethod) Defaults(c PretrainConfig) PretrainConfig {
	if c.Projector.Layers == 0 {
		c.Projector = HeadConfig{Layers: 2, Hidden: 1024, Out: 256, Norm: NormBatch, Act: ActReLU, SkipLastNorm: true}
	}
	if c.Predictor.Layers == 0 {
		c.Predictor = HeadConfig{Layers: 2, Hidden: 1024, Out: c.Projector.Out, Norm: NormBatch, Act: ActReLU, SkipLastNorm: true}
	}
	if c.Temperature == 0 {
		c.Temperature = DefaultTemperature // unused
	}
	return c
}

func (m byolMethod) Loss(ctx *context.Context, encoder EncoderFn, cfg PretrainConfig, augs []*graph.Node, _ *graph.Node) PretrainOutput {
	s := siameseForward(ctx, encoder, cfg, augs, m.layerwise, true)
	return PretrainOutput{Loss: BYOLLoss(s.online, s.targets), Embeddings: s.embeddings(), Views: s.views}
}

// BYOLLoss is the (layer-wise, multi-crop) BYOL loss of METHODS.md §10.1, §10.4, §10.5:
// (2/(|S|·P)) · Σ_{l, v, g≠v} mean_i [2 − 2·cos(online[l][v]_i, targets[g]_i)], P = G(G+M−1).
// online: [|S|][G+M] predictions [B, D]; targets: [G] target projections [B, D] (stop their
// gradient before calling). With one layer and two crops this is BYOL's symmetric loss.
func BYOLLoss(online [][]*graph.Node, targets []*graph.Node) *graph.Node {
	return crossCrop(online, targets, 2, func(p, t *graph.Node) *graph.Node {
		return graph.ReduceAllMean(graph.MulScalar(graph.OneMinus(cosine(p, t)), 2))
	})
}
