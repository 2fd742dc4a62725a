package ssl

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
)

// Tunables of the contrastive core, read from the GoMLX context (searched from the current scope up
// to the root), each with its default beside it. Params lists them all. The defaults are IFACLR's
// (METHODS.md §1.4, §8.3); IFACD keeps its own temperature in package distill.
const (
	// ParamTemperature: SupCon's τ.
	ParamTemperature   = "ssl_temperature"
	DefaultTemperature = 0.5

	// ParamBaseTemperature: SupCon's τ_b (the loss is scaled by τ/τ_b); 0 means τ_b = τ.
	ParamBaseTemperature   = "ssl_base_temperature"
	DefaultBaseTemperature = 0.0

	// ParamContrastMode: which contrast points are anchors, "all" or "one".
	ParamContrastMode   = "ssl_contrast_mode"
	DefaultContrastMode = "all"

	// ParamViews: the IFACLR view construction, "lwclr", "simlwclr" or "simclr".
	ParamViews   = "ssl_views"
	DefaultViews = "lwclr"

	// ParamLayers: the layers taking part in the views (backbone.LayerSelect text form).
	ParamLayers   = "ssl_layers"
	DefaultLayers = "last:2"

	// ParamIntermediateGradient: let gradient reach the encoder through lwclr's intermediate views.
	ParamIntermediateGradient   = "ssl_intermediate_gradient"
	DefaultIntermediateGradient = false

	// ParamStopGradientB: detach every view of the second augmentation (simlwclr, simclr).
	ParamStopGradientB   = "ssl_stop_gradient_b"
	DefaultStopGradientB = false
)

// Param describes one tunable of the package.
type Param struct {
	Key     string
	Default any
	Doc     string
}

// Params lists the package's tunables with their defaults.
func Params() []Param {
	return []Param{
		{ParamTemperature, DefaultTemperature, "SupCon temperature τ"},
		{ParamBaseTemperature, DefaultBaseTemperature, "SupCon base temperature τ_b (loss × τ/τ_b); 0 means τ"},
		{ParamContrastMode, DefaultContrastMode, "SupCon anchors: all or one"},
		{ParamViews, DefaultViews, "IFACLR views: lwclr, simlwclr or simclr"},
		{ParamLayers, DefaultLayers, "IFACLR layers: all, last:K, or indices like 0,-1"},
		{ParamIntermediateGradient, DefaultIntermediateGradient, "lwclr: gradient through intermediate-layer views"},
		{ParamStopGradientB, DefaultStopGradientB, "simlwclr/simclr: stop-gradient on the second augmentation"},
	}
}

// SupConOptionsFromContext reads τ, τ_b and the contrast mode from ctx.
func SupConOptionsFromContext(ctx *context.Context) (SupConOptions, error) {
	mode, err := ParseContrastMode(context.GetParamOr(ctx, ParamContrastMode, DefaultContrastMode))
	if err != nil {
		return SupConOptions{}, fmt.Errorf("ssl: context param %s: %w", ParamContrastMode, err)
	}
	opts := SupConOptions{
		Temperature:     context.GetParamOr(ctx, ParamTemperature, DefaultTemperature),
		BaseTemperature: context.GetParamOr(ctx, ParamBaseTemperature, DefaultBaseTemperature),
		Mode:            mode,
	}
	if !(opts.Temperature > 0) {
		return SupConOptions{}, fmt.Errorf("ssl: context param %s = %g, want > 0", ParamTemperature, opts.Temperature)
	}
	if opts.BaseTemperature < 0 {
		return SupConOptions{}, fmt.Errorf("ssl: context param %s = %g, want >= 0", ParamBaseTemperature,
			opts.BaseTemperature)
	}
	return opts, nil
}

// SupConFromContext is SupCon with its options read from ctx (SupConOptionsFromContext); it panics
// (graph building) on invalid parameters. features: [B, V, D]; labels: [B] or nil. Returns a scalar.
func SupConFromContext(ctx *context.Context, features, labels *graph.Node) *graph.Node {
	opts, err := SupConOptionsFromContext(ctx)
	if err != nil {
		panic(err)
	}
	return SupCon(features, labels, opts)
}

// CLRViewOptionsFromContext reads the IFACLR view construction from ctx.
func CLRViewOptionsFromContext(ctx *context.Context) (CLRViewOptions, error) {
	mode, err := ParseCLRMode(context.GetParamOr(ctx, ParamViews, DefaultViews))
	if err != nil {
		return CLRViewOptions{}, fmt.Errorf("ssl: context param %s: %w", ParamViews, err)
	}
	sel, err := backbone.ParseLayerSelect(context.GetParamOr(ctx, ParamLayers, DefaultLayers))
	if err != nil {
		return CLRViewOptions{}, fmt.Errorf("ssl: context param %s: %w", ParamLayers, err)
	}
	return CLRViewOptions{
		Mode:                 mode,
		Layers:               sel,
		IntermediateGradient: context.GetParamOr(ctx, ParamIntermediateGradient, DefaultIntermediateGradient),
		StopGradientB:        context.GetParamOr(ctx, ParamStopGradientB, DefaultStopGradientB),
	}, nil
}
