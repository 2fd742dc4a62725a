package ssl

import (
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// lwsupconMethod is layer-wise supervised contrastive pretraining: IFACLR's two-augmentation views
// (simlwclr, METHODS.md §1.3) with SupCon's class positives (Khosla et al., "Supervised Contrastive
// Learning", NeurIPS 2020, Eq. 2; METHODS.md §3.1). With the selected layers S = {L−k+1..L}
// (last:k) and one projector g shared by every view, each image i gives the V = 1 + k views
//
//	z_{i,1} = n(g(h_L(x_i^a))),   z_{i,1+j} = n(g(h_{L−k+j}(x_i^b))),   j = 1..k,
//
// flattened view-major into the N = V·B contrast points c_k (image b(k), label y(k)). Every point
// is an anchor; the positives of anchor i are every other point of the same class, so the
// intermediate layers' vectors of augmentation b are extra positives of every image of the class:
//
//	P(i) = {k ≠ i : y(k) = y(i)}
//	L_i = −(τ/τ_b) · (1/|P(i)|) · Σ_{k∈P(i)} [c_i·c_k/τ − log Σ_{k′≠i} exp(c_i·c_k′/τ)]
//	L = (1/N) Σ_i L_i
//
// No stop-gradient: gradient reaches blocks 1..l from layer l's view. With last:1 it is supcon
// (views h_L(x^a), h_L(x^b)); without labels it would be simlwclr. Multi-crop as in clrMethod:
// each local crop's last-layer vector is an extra anchor against the global views
// (SupConWithAnchors), positive with the global views of its class.
type lwsupconMethod struct{}

func (lwsupconMethod) Doc() string {
	return "layer-wise SupCon, simlwclr's views (last layer of view a, the selected layers of view b) with the class labels as positives"
}

func (lwsupconMethod) Augmentations() int    { return 2 }
func (lwsupconMethod) NeedsLabels() bool     { return true }
func (lwsupconMethod) MultiCrop() bool       { return true }
func (lwsupconMethod) UsesTemperature() bool { return true }

func (lwsupconMethod) Loss(ctx *context.Context, encoder EncoderFn, cfg PretrainConfig, augs []*graph.Node, labels *graph.Node) PretrainOutput {
	return clrMethod{mode: ModeSimLWCLR, labels: true}.Loss(ctx, encoder, cfg, augs, labels)
}
