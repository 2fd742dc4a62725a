package ssl

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// mocov3Method is MoCo v3 and its layer-wise variant lwmocov3.
//
// MoCo v3 (Chen, Xie & He, "An Empirical Study of Training Self-Supervised Vision Transformers",
// ICCV 2021, Algorithm 1; METHODS.md §10.3): queries from the online branch (f_θ, g_θ, predictor
// q_θ), keys from the momentum branch (f_ξ, g_ξ), InfoNCE over the in-batch keys (no queue):
//
//	ctr(q, k) = 2τ · (1/B) Σ_i −log[exp(n(q_i)·n(k_i)/τ) / Σ_{j=1..B} exp(n(q_i)·n(k_j)/τ)]
//	L = ctr(q^a, k^b) + ctr(q^b, k^a)
//
// with τ = 0.2 (every ViT recipe) and the keys stop-gradient; the momentum copy follows τ_base =
// 0.99 → 1 (fit.EMA). The reference ViT recipe freezes the patch projection at its random
// initialisation (`ifa pretrain vit --freeze-patch`). Heads (widths scaled from 4096/256 to a
// d = 64 encoder): projector 3 layers 1024 → 1024 → 256, each Linear → BN (→ ReLU on the hidden
// ones), predictor 2 layers 1024 → 256 ending in BN (the ViT form).
//
// lwmocov3 (METHODS.md §10.5): keys k_j^v = n(sg g_ξ(f_ξ,L(x_j^v))) shared by all layers;
// queries u_{l,i}^v = n(p_{l,i}^v) from every selected online layer l ∈ S:
//
//	ctr_l^v = −(2τ/B) Σ_i log[exp(u_{l,i}^v·k_i^v̄/τ) / Σ_j exp(u_{l,i}^v·k_j^v̄/τ)]
//	L = (1/|S|) Σ_{l∈S} (ctr_l^a + ctr_l^b).
//
// Positives: (layer l of image i in crop v, key of image i from the other crop); negatives: the
// other B−1 keys of that crop. 2|S| softmax terms per image. Stop-gradient on the keys (and on
// h_{l<L} with DetachIntermediate); one projector and predictor shared by every layer and crop.
// With S = {L}, lwmocov3 is mocov3. Multi-crop: L = (2/(|S|·P))·Σ_{l, v, g≠v} ctr(u_{l,v}, k_g).
type mocov3Method struct{ layerwise bool }

// DefaultMoCoTemperature is MoCo v3's τ.
const DefaultMoCoTemperature = 0.2

func (m mocov3Method) Doc() string {
	if m.layerwise {
		return "layer-wise MoCo v3, every selected online layer is a query against the momentum keys of the other crop"
	}
	return "MoCo v3, predictor queries against in-batch momentum keys of the other crop (InfoNCE, tau 0.2, scaled by 2 tau)"
}

func (mocov3Method) Augmentations() int    { return globalCrops }
func (mocov3Method) MultiCrop() bool       { return true }
func (mocov3Method) Targets() []TargetPair { return momentumTargets() }
func (mocov3Method) UsesTemperature() bool { return true }
func (mocov3Method) Defaults(c PretrainConfig) PretrainConfig {
	if c.Projector.Layers == 0 {
		c.Projector = HeadConfig{Layers: 3, Hidden: 1024, Out: 256, Norm: NormBatch, Act: ActReLU}
	}
	if c.Predictor.Layers == 0 {
		c.Predictor = HeadConfig{Layers: 2, Hidden: 1024, Out: c.Projector.Out, Norm: NormBatch, Act: ActReLU}
	}
	if c.Temperature == 0 {
		c.Temperature = DefaultMoCoTemperature
	}
	return c
}

func (m mocov3Method) Loss(ctx *context.Context, encoder EncoderFn, cfg PretrainConfig, augs []*graph.Node, _ *graph.Node) PretrainOutput {
	s := siameseForward(ctx, encoder, cfg, augs, m.layerwise, true)
	return PretrainOutput{Loss: MoCoV3Loss(s.online, s.targets, cfg.Temperature), Embeddings: s.embeddings(), Views: s.views}
}

// MoCoV3Loss is the (layer-wise, multi-crop) MoCo v3 loss of METHODS.md §10.3–10.5:
// (2/(|S|·P)) · Σ_{l, v, g≠v} ctr(online[l][v], keys[g]) with ctr the 2τ-scaled InfoNCE of the
// queries against the B keys (positive: the same row). keys: the momentum projections [B, D]
// (stop their gradient before calling; they are L2-normalised here). With one layer and two crops
// this is MoCo v3's ctr(q^a, k^b) + ctr(q^b, k^a).
func MoCoV3Loss(online [][]*graph.Node, keys []*graph.Node, tau float64) *graph.Node {
	if !(tau > 0) {
		panic(fmt.Errorf("ssl: MoCo v3 temperature %g, want > 0", tau))
	}
	return crossCrop(online, keys, 2, func(q, k *graph.Node) *graph.Node {
		logits := graph.DivScalar(graph.Einsum("id,jd->ij", L2Normalize(q), L2Normalize(k)), tau) // [B, B]
		b := logits.Shape().Dim(0)
		sq := shapes.Make(dtypes.Int32, b, b)
		eye := graph.ConvertDType(graph.Equal(graph.Iota(logits.Graph(), sq, 0), graph.Iota(logits.Graph(), sq, 1)), logits.DType())
		// Cross-entropy with the diagonal as the labels: −mean_i log softmax(logits_i)_i.
		ce := graph.Neg(graph.ReduceAllMean(graph.ReduceSum(graph.Mul(eye, graph.LogSoftmax(logits, -1)), -1)))
		return graph.MulScalar(ce, 2*tau)
	})
}
