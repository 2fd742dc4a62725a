package ssl

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/nn"
)

// The self-supervised pretraining methods of ifa. The contrastive family (METHODS.md §1, §3):
// IFACLR ("lwclr", layerwiseclr's layer-wise CLR on one augmentation, Lin et al. ICLR CSS 2022
// project), its two-augmentation variant "simlwclr", plain SimCLR (Chen et al., ICML 2020, Eq. 1)
// and SupCon (Khosla et al., NeurIPS 2020, Eq. 2), all as SupCon in "all" mode over a [B, V, D]
// stack of L2-normalised, projected layer views (clr.go). The predictor family (METHODS.md §10):
// BYOL, SimSiam and MoCo v3 and their layer-wise variants (byol.go, simsiam.go, mocov3.go). The
// registry (registry.go) maps names to implementations.

// Method is the name of a registered pretraining method.
type Method string

// The names of the contrastive methods.
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

// Scopes of a pretraining model, relative to the context scope PretrainLoss is called in: the
// checkpoint format.
const (
	// ScopeEncoder holds the (online) encoder's variables (the part kept for evaluation).
	ScopeEncoder = "encoder"
	// ScopeProjector holds the projector shared by every view.
	ScopeProjector = "projector"
	// ScopePredictor holds the predictor of BYOL, SimSiam and MoCo v3 (online branch only).
	ScopePredictor = "predictor"
	// ScopeTargetEncoder and ScopeTargetProjector hold the momentum (EMA) copies of the encoder
	// and the projector (BYOL, MoCo v3): not trainable, updated after each optimizer step.
	ScopeTargetEncoder   = "target_encoder"
	ScopeTargetProjector = "target_projector"
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

// PretrainConfig configures PretrainLoss. Zero heads and a zero temperature take the method's
// defaults (WithDefaults).
type PretrainConfig struct {
	Method Method
	// Layers selects the layers taking part (lwclr, simlwclr and the layer-wise predictor
	// methods); the zero value means last:2.
	Layers backbone.LayerSelect
	// Projector is the head shared by every view (layerwiseclr: IFACLRProjector(2048, 2048)).
	Projector HeadConfig
	// Predictor is the online branch's predictor (BYOL, SimSiam, MoCo v3), shared by every view.
	Predictor HeadConfig
	// Rescaler maps a layer vector whose width differs from the last layer's to that width before
	// the projector (a CNN's earlier taps); its Out is set to the last layer's width. A ViT's
	// layers all have the same width and get no rescaler (the reference's identity rescaler).
	// The zero value means {Layers: 1, Norm: NormLayer, Act: ActGELU} (layerwiseclr's default).
	Rescaler HeadConfig
	// Temperature τ of SupCon or of MoCo v3's InfoNCE (> 0); BaseTemperature τ_b (SupCon; 0
	// means τ).
	Temperature, BaseTemperature float64
	// IntermediateGradient lets gradient reach the encoder through lwclr's non-final layer views
	// (the reference detaches them: false).
	IntermediateGradient bool
	// StopGradientB detaches the views of the second augmentation (simlwclr, simclr, supcon).
	StopGradientB bool
	// DetachIntermediate stops the gradient of the non-final layer vectors of the layer-wise
	// predictor methods (lwbyol, lwsimsiam, lwmocov3) before their heads, as IFACLR does; by
	// default gradient reaches blocks 1..l from every layer l (METHODS.md §10.5).
	DetachIntermediate bool
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

// WithDefaults fills the zero projector, predictor and temperature with the method's defaults.
func (c PretrainConfig) WithDefaults() PretrainConfig {
	if d, ok := c.Method.Impl().(defaulter); ok {
		return d.Defaults(c)
	}
	if c.Projector.Layers == 0 {
		c.Projector = IFACLRProjector(DefaultProjHidden, DefaultProjOut)
	}
	if c.Temperature == 0 {
		c.Temperature = DefaultTemperature
	}
	return c
}

func (c PretrainConfig) rescaler(out int) HeadConfig {
	r := c.Rescaler
	if r.Layers == 0 {
		r = HeadConfig{Layers: 1, Hidden: DefaultRescalerDims, Norm: NormLayer, Act: ActGELU}
	}
	r.Out = out
	return r
}

// Validate reports the first problem with the configuration (after WithDefaults).
func (c PretrainConfig) Validate() error {
	if _, err := ParseMethod(string(c.Method)); err != nil {
		return err
	}
	c = c.WithDefaults()
	if err := c.Projector.Validate(); err != nil {
		return fmt.Errorf("ssl: projector: %w", err)
	}
	if c.Predictor.Layers != 0 {
		if err := c.Predictor.Validate(); err != nil {
			return fmt.Errorf("ssl: predictor: %w", err)
		}
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
	if ch, ok := c.Method.Impl().(checker); ok {
		return ch.Check(c)
	}
	return nil
}

// EncoderFn runs an encoder on images [B, H, W, C] in ctx's scope and returns its features; only
// TapVectors (one [B, D_l] vector per layer, forward order) are used here.
type EncoderFn func(ctx *context.Context, images *graph.Node) backbone.Features

// PretrainOutput is what PretrainLoss builds.
type PretrainOutput struct {
	// Loss is the scalar loss.
	Loss *graph.Node
	// Embeddings: [B, V, D], the L2-normalised online outputs in view order (the contrastive
	// methods: the projected views; the predictor methods: the predictions of every (layer,
	// crop) group, layer-major).
	Embeddings *graph.Node
	// Views describes the V views (source augmentation, layer, stop-gradient).
	Views []View
}

// PretrainLoss builds the pretraining loss of one batch. images: [B, H, W, C] or [B, 1, H, W, C]
// for lwclr, [B, 2, H, W, C] for the two-augmentation methods; labels: [B] (supcon only, ignored
// otherwise). The encoder runs in ctx.In(ScopeEncoder) (once per augmentation, sharing its
// variables), the projector in ctx.In(ScopeProjector), rescalers (only for layers narrower or wider
// than the last) in ctx.In(RescalerScope(l)); the predictor methods add ScopePredictor and the
// momentum copies (Method.Targets). It panics (graph building) on an invalid configuration or
// mismatched inputs.
func PretrainLoss(ctx *context.Context, encoder EncoderFn, cfg PretrainConfig, images, labels *graph.Node) PretrainOutput {
	return PretrainLossCrops(ctx, encoder, cfg, images, nil, labels)
}

// PretrainLossCrops is PretrainLoss with local crops: locals holds batches of smaller crops
// [B, M, h, w, C] (one node per crop size), used only as online views by the methods that accept
// them (Method.MultiCrop); nil means none.
func PretrainLossCrops(ctx *context.Context, encoder EncoderFn, cfg PretrainConfig, images *graph.Node, locals []*graph.Node, labels *graph.Node) PretrainOutput {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.WithDefaults()
	impl := cfg.Method.Impl()
	augs := splitAugmentations(images, impl.Augmentations())
	if len(locals) > 0 {
		if !cfg.Method.MultiCrop() {
			panic(fmt.Errorf("ssl: %s takes no local crops", cfg.Method))
		}
		for _, l := range locals {
			if l.Rank() != 5 {
				panic(fmt.Errorf("ssl: local crops %s: want [B, M, h, w, C]", l.Shape()))
			}
			augs = append(augs, splitAugmentations(l, l.Shape().Dim(1))...)
		}
	}
	if cfg.Method.NeedsLabels() && labels == nil {
		panic(fmt.Errorf("ssl: %s needs the class labels", cfg.Method))
	}
	return impl.Loss(ctx, encoder, cfg, augs, labels)
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
			out[v] = nn.SelectIndex(images, 1, v)
		}
		return out
	}
	panic(fmt.Errorf("ssl: images %s: want [B, %d, H, W, C] (or [B, H, W, C] for one view)", images.Shape(), n))
}
