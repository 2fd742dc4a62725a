package ssl

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

func TestSupConFromContext(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	f := randUnit(rng, 4, 3, 5)
	run := func(ctx *context.Context) float64 {
		return toF64(context.MustExecOnce(testutil.Backend(), ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
			return SupConFromContext(ctx, x, nil)
		}, tensor3(f)))[0]
	}
	ctx := context.New()
	_, want := naiveSupCon(f, nil, DefaultTemperature, DefaultBaseTemperature, ContrastAll, false)
	assertClose(t, "defaults", []float64{run(ctx)}, []float64{want}, 1e-12)

	ctx.SetParams(map[string]any{ParamTemperature: 0.1, ParamBaseTemperature: 0.07, ParamContrastMode: "one"})
	_, want = naiveSupCon(f, nil, 0.1, 0.07, ContrastOne, false)
	assertClose(t, "from context", []float64{run(ctx)}, []float64{want}, 1e-12)

	for _, bad := range []map[string]any{{ParamContrastMode: "many"}, {ParamTemperature: 0.0},
		{ParamBaseTemperature: -0.5}} {
		c := context.New()
		c.SetParams(bad)
		if _, err := SupConOptionsFromContext(c); err == nil {
			t.Fatalf("params %v: want an error", bad)
		}
	}
}

func TestCLRViewOptionsFromContext(t *testing.T) {
	ctx := context.New()
	opts, err := CLRViewOptionsFromContext(ctx)
	if err != nil || opts.Mode != ModeLWCLR || opts.Layers.Last != DefaultCLRLastK || opts.IntermediateGradient || opts.StopGradientB {
		t.Fatalf("defaults: %+v, %v", opts, err)
	}
	ctx.SetParams(map[string]any{ParamViews: "simlwclr", ParamLayers: "all", ParamStopGradientB: true,
		ParamIntermediateGradient: true})
	opts, err = CLRViewOptionsFromContext(ctx)
	want := CLRViewOptions{Mode: ModeSimLWCLR, Layers: backbone.LayerSelect{All: true}, IntermediateGradient: true,
		StopGradientB: true}
	if err != nil || opts.Mode != want.Mode || !opts.Layers.All || !opts.StopGradientB || !opts.IntermediateGradient {
		t.Fatalf("set: %+v, %v", opts, err)
	}
	for _, bad := range []map[string]any{{ParamViews: "byol"}, {ParamLayers: "last:0"}} {
		c := context.New()
		c.SetParams(bad)
		if _, err := CLRViewOptionsFromContext(c); err == nil {
			t.Fatalf("params %v: want an error", bad)
		}
	}
	if m, err := ParseCLRMode("simclr"); err != nil || m != ModeSimCLR {
		t.Fatalf("ParseCLRMode(simclr) = %v, %v", m, err)
	}
}

func TestParamsListed(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range Params() {
		if seen[p.Key] || p.Doc == "" {
			t.Fatalf("param %q duplicated or undocumented", p.Key)
		}
		seen[p.Key] = true
	}
	for _, k := range []string{ParamTemperature, ParamBaseTemperature, ParamContrastMode, ParamViews, ParamLayers,
		ParamIntermediateGradient, ParamStopGradientB} {
		if !seen[k] {
			t.Fatalf("param %q not listed", k)
		}
	}
}
