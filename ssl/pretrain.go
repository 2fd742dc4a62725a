package ssl

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
)

// The self-supervised pretraining methods of ifa (METHODS.md §1): IFACLR ("lwclr", layerwiseclr's
// layer-wise CLR on one augmentation, Lin et al. ICLR CSS 2022 project), its two-augmentation variant
// "simlwclr", plain SimCLR (Chen et al., ICML 2020, Eq. 1) and SupCon (Khosla et al., NeurIPS 2020,
// Eq. 2), all as SupCon in "all" mode over a [B, V, D] stack of L2-normalised, projected layer views.

// Method is a pretraining method.
type Method string

// The pretraining methods.
const (
	// MethodLWCLR is IFACLR: one augmented view x; the views are the projected last-layer vector
	// g(h_L(x)) and the projected vectors of the other selected layers, stop-gradient by default
	// (V = k for last:k). No labels.
	MethodLWCLR Method = "lwclr"
	// MethodSimLWCLR: two augmentations; g(h_L(x_a)) and g(h_l(x_b)) for the selected layers l of
	// x_b (V = 1 + k). No labels.
	MethodSimLWCLR Method = "simlwclr"
	// MethodSimCLR: two augmentations, the last layer of each (V = 2). No labels.
	MethodSimCLR Method = "simclr"
	// MethodSupCon: SimCLR's two views, with the class labels defining the positives.
	MethodSupCon Method = "supcon"
)

// Methods lists the pretraining methods.
func Methods() []Method { return []Method{MethodLWCLR, MethodSimLWCLR, MethodSimCLR, MethodSupCon} }

// ParseMethod parses "lwclr", "simlwclr", "simclr" or "supcon".
func ParseMethod(s string) (Method, error) {
	for _, m := range Methods() {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("ssl: pretraining method %q: want lwclr, simlwclr, simclr or supcon", s)
}

// Augmentations is the number of augmented views of each image the method's batches carry: 1 for
// lwclr ([B, H, W, C] images), 2 for the others ([B, 2, H, W, C]).
func (m Method) Augmentations() int {
	if m == MethodLWCLR {
		return 1
	}
	return 2
}

// NeedsLabels reports whether the method uses the class labels (supcon).
func (m Method) NeedsLabels() bool { return m == MethodSupCon }

// clrMode is the view construction of the method.
func (m Method) clrMode() CLRMode {
	switch m {
	case MethodLWCLR:
		return ModeLWCLR
	case MethodSimLWCLR:
		return ModeSimLWCLR
	}
	return ModeSimCLR
}

// Scopes of a pretraining model, relative to the context scope PretrainLoss is called in: the
// checkpoint format.
const (
	// ScopeEncoder holds the encoder's variables (the part kept for evaluation).
	ScopeEncoder = "encoder"
	// ScopeProjector holds the projector shared by every view.
	ScopeProjector = "projector"
)

// RescalerScope is the scope of the rescaler of layer l: "rescaler_00", "rescaler_01", ….
func RescalerScope(l int) string { return fmt.Sprintf("rescaler_%02d", l) }

// Pretraining defaults (METHODS.md §1.4, §8.3).
const (
	DefaultProjHidden   = 2048
	DefaultProjOut      = 2048
	DefaultProjLayers   = 3
	DefaultRescalerDims = 512
)

// PretrainConfig configures PretrainLoss.
type PretrainConfig struct {
	Method Method
	// Layers selects the layers taking part (lwclr, simlwclr); the zero value means last:2.
	Layers backbone.LayerSelect
	// Projector is the head shared by every view (layerwiseclr: IFACLRProjector(2048, 2048)).
	Projector HeadConfig
	// Rescaler maps a layer vector whose width differs from the last layer's to that width before
	// the projector (a CNN's earlier taps); its Out is set to the last layer's width. A ViT's
	// layers all have the same width and get no rescaler (the reference's identity rescaler).
	// The zero value means {Layers: 1, Norm: NormLayer, Act: ActGELU} (layerwiseclr's default).
	Rescaler HeadConfig
	// Temperature τ of SupCon (> 0); BaseTemperature τ_b (0 means τ).
	Temperature, BaseTemperature float64
	// IntermediateGradient lets gradient reach the encoder through lwclr's non-final layer views
	// (the reference detaches them: false).
	IntermediateGradient bool
	// StopGradientB detaches the views of the second augmentation (simlwclr, simclr, supcon).
	StopGradientB bool
}

// DefaultPretrainConfig is IFACLR as layerwiseclr runs it by default: lwclr over the last 2 layers,
// the 3-layer LN-GELU projector 2048→2048, τ = τ_b = 0.5, stop-gradient on the intermediate view.
func DefaultPretrainConfig() PretrainConfig {
	return PretrainConfig{
		Method:      MethodLWCLR,
		Layers:      backbone.LayerSelect{Last: DefaultCLRLastK},
		Projector:   IFACLRProjector(DefaultProjHidden, DefaultProjOut),
		Temperature: DefaultTemperature,
	}
}

func (c PretrainConfig) rescaler(out int) HeadConfig {
	r := c.Rescaler
	if r.Layers == 0 {
		r = HeadConfig{Layers: 1, Hidden: DefaultRescalerDims, Norm: NormLayer, Act: ActGELU}
	}
	r.Out = out
	return r
}

// Validate reports the first problem with the configuration.
func (c PretrainConfig) Validate() error {
	if _, err := ParseMethod(string(c.Method)); err != nil {
		return err
	}
	if err := c.Projector.Validate(); err != nil {
		return fmt.Errorf("ssl: projector: %w", err)
	}
	if err := c.rescaler(1).Validate(); err != nil {
		return fmt.Errorf("ssl: rescaler: %w", err)
	}
	if !(c.Temperature > 0) {
		return fmt.Errorf("ssl: temperature %g, want > 0", c.Temperature)
	}
	if c.BaseTemperature < 0 {
		return fmt.Errorf("ssl: base temperature %g, want >= 0", c.BaseTemperature)
	}
	if c.Method == MethodLWCLR {
		// lwclr needs at least two views: the selection must name a layer besides the last one.
		if c.Layers.Last == 1 {
			return fmt.Errorf("ssl: lwclr: layer selection last:1 gives a single view; lwclr needs at least last:2")
		}
	}
	return nil
}

// EncoderFn runs an encoder on images [B, H, W, C] in ctx's scope and returns its features; only
// TapVectors (one [B, D_l] vector per layer, forward order) are used here.
type EncoderFn func(ctx *context.Context, images *graph.Node) backbone.Features

// PretrainOutput is what PretrainLoss builds.
type PretrainOutput struct {
	// Loss is the scalar SupCon loss.
	Loss *graph.Node
	// Embeddings: [B, V, D], the L2-normalised projected views in view order.
	Embeddings *graph.Node
	// Views describes the V views (source augmentation, layer, stop-gradient).
	Views []View
}

// PretrainLoss builds the pretraining loss of one batch. images: [B, H, W, C] or [B, 1, H, W, C]
// for lwclr, [B, 2, H, W, C] for the two-augmentation methods; labels: [B] (supcon only, ignored
// otherwise). The encoder runs in ctx.In(ScopeEncoder) (once per augmentation, sharing its
// variables), the projector in ctx.In(ScopeProjector), rescalers (only for layers narrower or wider
// than the last) in ctx.In(RescalerScope(l)). It panics (graph building) on an invalid
// configuration or mismatched inputs.
func PretrainLoss(ctx *context.Context, encoder EncoderFn, cfg PretrainConfig, images, labels *graph.Node) PretrainOutput {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	augs := splitAugmentations(images, cfg.Method.Augmentations())
	enc := ctx.In(ScopeEncoder)
	in := CLRInputs{A: encoder(enc, augs[0]).TapVectors}
	if len(augs) > 1 {
		in.B = encoder(enc.Reuse(), augs[1]).TapVectors
	}
	views, err := CLRViews(in, CLRViewOptions{
		Mode:                 cfg.Method.clrMode(),
		Layers:               cfg.Layers,
		IntermediateGradient: cfg.IntermediateGradient,
		StopGradientB:        cfg.StopGradientB,
	})
	if err != nil {
		panic(err)
	}
	width := views[0].Input.Shape().Dim(1)
	proj := SharedHead(ctx.In(ScopeProjector), cfg.Projector)
	rescalers := map[int]func(*graph.Node) *graph.Node{}
	stack := EmbedViews(views, func(v View) *graph.Node {
		x := v.Input
		if x.Shape().Dim(1) != width {
			r, ok := rescalers[v.Layer]
			if !ok {
				r = SharedHead(ctx.In(RescalerScope(v.Layer)), cfg.rescaler(width))
				rescalers[v.Layer] = r
			}
			x = r(x)
		}
		return proj(x)
	})
	var lbl *graph.Node
	if cfg.Method.NeedsLabels() {
		if labels == nil {
			panic(fmt.Errorf("ssl: %s needs the class labels", cfg.Method))
		}
		lbl = labels
	}
	loss := SupCon(stack, lbl, SupConOptions{Temperature: cfg.Temperature, BaseTemperature: cfg.BaseTemperature, Mode: ContrastAll})
	return PretrainOutput{Loss: loss, Embeddings: stack, Views: views}
}

// splitAugmentations returns n image batches [B, H, W, C] from images [B, H, W, C] (n = 1) or
// [B, V, H, W, C] (V = n).
func splitAugmentations(images *graph.Node, n int) []*graph.Node {
	dims := images.Shape().Dimensions
	switch {
	case images.Rank() == 4 && n == 1:
		return []*graph.Node{images}
	case images.Rank() == 5 && dims[1] == n:
		out := make([]*graph.Node, n)
		for v := range n {
			// The images take no gradient: a plain slice is fine here.
			x := graph.Slice(images, graph.AxisRange(), graph.AxisElem(v))
			out[v] = graph.Reshape(x, dims[0], dims[2], dims[3], dims[4])
		}
		return out
	}
	panic(fmt.Errorf("ssl: images %s: want [B, %d, H, W, C] (or [B, H, W, C] for one view)", images.Shape(), n))
}
