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

func (m clrMethod) Loss(ctx *context.Context, encoder EncoderFn, cfg PretrainConfig, augs []*graph.Node, labels *graph.Node) PretrainOutput {
	enc := ctx.In(ScopeEncoder)
	in := CLRInputs{A: encoder(enc, augs[0]).TapVectors}
	if len(augs) > 1 {
		in.B = encoder(enc.Reuse(), augs[1]).TapVectors
	}
	views, err := CLRViews(in, CLRViewOptions{
		Mode:                 m.mode,
		Layers:               cfg.Layers,
		IntermediateGradient: cfg.IntermediateGradient,
		StopGradientB:        cfg.StopGradientB,
	})
	if err != nil {
		panic(err)
	}
	width := views[0].Input.Shape().Dim(1)
	proj := SharedHead(ctx.In(ScopeProjector), cfg.Projector)
	rescale := newRescalers(ctx, cfg, width)
	stack := EmbedViews(views, func(v View) *graph.Node { return proj(rescale(v.Layer, v.Input)) })
	var lbl *graph.Node
	if m.labels {
		lbl = labels
	}
	loss := SupCon(stack, lbl, SupConOptions{Temperature: cfg.Temperature, BaseTemperature: cfg.BaseTemperature, Mode: ContrastAll})
	return PretrainOutput{Loss: loss, Embeddings: stack, Views: views}
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
