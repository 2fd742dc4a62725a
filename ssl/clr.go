package ssl

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// clrMethod is the contrastive family: SupCon in "all" mode over the [B, V, D] stack of the
// L2-normalised projected views that CLRViews chooses (METHODS.md §1.3, §3.1):
//
//	lwclr:    V = k views of one augmentation, z_1 = g(h_L(x)), z_{1+j} = g(sg h_{L−k+j}(x))
//	simlwclr: z_1 = g(h_L(x_a)), z_{1+j} = g(h_{L−k+j}(x_b))
//	simclr:   z_1 = g(h_L(x_a)), z_2 = g(h_L(x_b))            (Chen et al. 2020, Eq. 1)
//	supcon:   simclr's views, positives by class label        (Khosla et al. 2020, Eq. 2)
//
// with one projector g shared by every view and τ = τ_b = 0.5 by default.
//
// Multi-crop (--crops; METHODS.md §10.4): the global crops are the augmentations above and make the
// contrast set; each local crop x_m (m = 1..M) adds one view, its projected last-layer vector
//
//	u_m = g(h_L(x_m))   (every method; the same projector g),
//
// which is an anchor only (SupConWithAnchors) — never a positive, negative or denominator term of
// another anchor. The local anchor of image i is positive with every global view of image i
// (simclr: z_1 and z_2 of image i; simlwclr: its 1 + k layer views; lwclr: its k layer views;
// supcon and lwsupcon: every global view of its class) and contrasts with all V·B global views;
// the global anchors keep exactly the two-crop terms. The loss is the mean over the V·B global and
// the M·B local anchors. Local views take no stop-gradient (they are the anchors that train on the
// crops). Only the last layer of a local crop is used: on 2-epoch Fashion-MNIST runs (ViT nano,
// patch 7, 4 local 14-px crops) simlwclr with every selected layer of the local crops as anchors
// gave kNN@200 81.73 % and linear 83.88 % at 5 % more CPU time, the last layer alone 82.03 % and
// 84.30 %. Without local crops every method is bit for bit the two-crop one (the same graph and
// checkpoint scopes).
type clrMethod struct {
	mode   CLRMode
	labels bool
}

func (m clrMethod) Doc() string {
	switch {
	case m.labels:
		return "SupCon, SimCLR's two views with the class labels as positives"
	case m.mode == ModeLWCLR:
		return "IFACLR, SupCon over the layer vectors of one augmentation"
	case m.mode == ModeSimLWCLR:
		return "IFACLR over two augmentations, last layer of view a against the layers of view b"
	}
	return "SimCLR (NT-Xent), the last layer of two augmentations"
}

func (m clrMethod) Augmentations() int {
	if m.mode == ModeLWCLR {
		return 1
	}
	return 2
}

func (m clrMethod) NeedsLabels() bool { return m.labels }

func (m clrMethod) Check(cfg PretrainConfig) error {
	// lwclr needs at least two views: the selection must name a layer besides the last one.
	if m.mode == ModeLWCLR && cfg.Layers.Last == 1 {
		return fmt.Errorf("ssl: lwclr: layer selection last:1 gives a single view; lwclr needs at least last:2")
	}
	return nil
}

func (m clrMethod) MultiCrop() bool       { return true }
func (m clrMethod) UsesTemperature() bool { return true }

func (m clrMethod) Loss(ctx *context.Context, encoder EncoderFn, cfg PretrainConfig, augs []*graph.Node, labels *graph.Node) PretrainOutput {
	enc := ctx.In(ScopeEncoder)
	feats := make([][]*graph.Node, len(augs))
	for v, x := range augs {
		c := enc
		if v > 0 {
			c = enc.Reuse()
		}
		feats[v] = encoder(c, x).TapVectors
	}
	in := CLRInputs{A: feats[0]}
	if m.Augmentations() > 1 {
		in.B = feats[1]
	}
	opts := CLRViewOptions{
		Mode:                 m.mode,
		Layers:               cfg.Layers,
		IntermediateGradient: cfg.IntermediateGradient,
		StopGradientB:        cfg.StopGradientB,
	}
	views, err := CLRViews(in, opts)
	if err != nil {
		panic(err)
	}
	var locals []View
	for v := m.Augmentations(); v < len(augs); v++ {
		lv, err := localCLRView(feats[v], v, m.mode)
		if err != nil {
			panic(err)
		}
		locals = append(locals, lv)
	}
	width := views[0].Input.Shape().Dim(1)
	proj := SharedHead(ctx.In(ScopeProjector), cfg.Projector)
	rescale := newRescalers(ctx, cfg, width)
	embed := func(v View) *graph.Node { return proj(rescale(v.Layer, v.Input)) }
	stack := EmbedViews(views, embed)
	var lbl *graph.Node
	if m.labels {
		lbl = labels
	}
	supOpts := SupConOptions{Temperature: cfg.Temperature, BaseTemperature: cfg.BaseTemperature, Mode: ContrastAll}
	if len(locals) == 0 {
		return PretrainOutput{Loss: SupCon(stack, lbl, supOpts), Embeddings: stack, Views: views}
	}
	extra := EmbedViews(locals, embed)
	loss := SupConWithAnchors(stack, extra, lbl, supOpts)
	return PretrainOutput{Loss: loss, Embeddings: graph.Concatenate([]*graph.Node{stack, extra}, 1), Views: append(views, locals...)}
}

// localCLRView is the anchor-only view of local crop number crop: its last layer vector (see
// clrMethod), drawn from the same source as the last global crop's views.
func localCLRView(local []*graph.Node, crop int, mode CLRMode) (View, error) {
	if err := checkLayers(fmt.Sprintf("local crop %d", crop), local); err != nil {
		return View{}, err
	}
	src := SourceB
	if mode == ModeLWCLR {
		src = SourceA
	}
	l := len(local) - 1
	return View{Source: src, Crop: crop, Layer: l, Input: local[l], AnchorOnly: true}, nil
}

// newRescalers returns a function mapping layer l's vector x to width: x itself when it already has
// that width, else its rescaler (one per layer, in ctx.In(RescalerScope(l)), shared by every call).
func newRescalers(ctx *context.Context, cfg PretrainConfig, width int) func(l int, x *graph.Node) *graph.Node {
	rescalers := map[int]func(*graph.Node) *graph.Node{}
	return func(l int, x *graph.Node) *graph.Node {
		if x.Shape().Dim(1) == width {
			return x
		}
		r, ok := rescalers[l]
		if !ok {
			r = SharedHead(ctx.In(RescalerScope(l)), cfg.rescaler(width))
			rescalers[l] = r
		}
		return r(x)
	}
}
