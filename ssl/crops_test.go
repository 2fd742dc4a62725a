package ssl

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

func TestParseCrops(t *testing.T) {
	c, err := ParseCrops("2x28:0.4-1, 6x14:0.1-0.4")
	if err != nil {
		t.Fatal(err)
	}
	want := Crops{{2, 28, 0.4, 1}, {6, 14, 0.1, 0.4}}
	if fmt.Sprint(c) != fmt.Sprint(want) || c.Views() != 8 || c.String() != "2x28:0.4-1,6x14:0.1-0.4" {
		t.Fatalf("parsed %v (%s, %d views)", c, c, c.Views())
	}
	for _, m := range []Method{"lwbyol", "simclr", "simlwclr", "supcon"} {
		if err := c.Check(m, 28, 7); err != nil {
			t.Errorf("%s, 28 px, patch 7: %v", m, err)
		}
	}
	for _, bad := range []struct{ spec, method, want string }{
		{"2x28:0.4-1,6x14:0.1-0.4", "lwclr", "wants 1 of 28x28"},
		{"2x28:0.4-1,6x12:0.1-0.4", "byol", "multiple of the patch"},
		{"3x28:0.4-1", "byol", "global crops"},
		{"2x24:0.4-1", "byol", "global crops"},
	} {
		c, err := ParseCrops(bad.spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Check(Method(bad.method), 28, 7); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s %s: %v, want %q", bad.spec, bad.method, err, bad.want)
		}
	}
	for _, s := range []string{"2x28", "2:0.4-1", "0x28:0.4-1", "2x28:0.5-0.4", "2x28:0-1", "2x28:0.4-1.5", "ax28:0.1-1", ""} {
		if _, err := ParseCrops(s); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
}

// recordingEncoder pools the image spatially (so any crop size fits) and maps it through L
// independent tanh layers; it records the scope and the crop size of every call.
func recordingEncoder(widths []int, calls *[]string) EncoderFn {
	return func(ctx *context.Context, images *graph.Node) backbone.Features {
		*calls = append(*calls, fmt.Sprintf("%s:%d", ctx.Scope(), images.Shape().Dim(1)))
		x := graph.ReduceMean(images, 1, 2) // [B, C]
		var f backbone.Features
		for l, w := range widths {
			wt := ctx.In(fmt.Sprintf("layer_%d", l)).VariableWithShape("w", shapes.Make(x.DType(), x.Shape().Dim(1), w)).ValueGraph(images.Graph())
			f.TapVectors = append(f.TapVectors, graph.Tanh(graph.MatMul(x, wt)))
		}
		f.Pooled = f.TapVectors[len(f.TapVectors)-1]
		return f
	}
}

// Multi-crop bookkeeping: SplitCrops cuts the local crops out of their canvases; every crop passes
// the online encoder, only the global ones the target encoder; the views are |S|·(G+M) groups in
// layer-major order; the loss equals BYOLLoss over the same outputs.
func TestMultiCropViews(t *testing.T) {
	crops := Crops{{2, 8, 0.4, 1}, {3, 4, 0.1, 0.4}, {1, 6, 0.2, 0.5}}
	rng := rand.New(rand.NewPCG(9, 10))
	images := randImages(rng, 5, crops.Views(), 8, 8, 2)
	var calls []string
	enc := recordingEncoder([]int{4, 4, 4}, &calls)
	cfg := PretrainConfig{Method: "lwbyol", Layers: backbone.LayerSelect{Last: 2},
		Projector: HeadConfig{Layers: 2, Hidden: 6, Out: 4, Norm: NormBatch, Act: ActReLU, SkipLastNorm: true}}
	var views []View
	var embDims []int
	ctx := context.New()
	exec, err := context.NewExec(testutil.Backend(), ctx, func(ctx *context.Context, x *graph.Node) *graph.Node {
		ctx.SetTraining(x.Graph(), true)
		global, locals := SplitCrops(x, crops)
		if !global.Shape().Equal(shapes.Make(x.DType(), 5, 2, 8, 8, 2)) || len(locals) != 2 ||
			!locals[0].Shape().Equal(shapes.Make(x.DType(), 5, 3, 4, 4, 2)) || !locals[1].Shape().Equal(shapes.Make(x.DType(), 5, 1, 6, 6, 2)) {
			t.Errorf("split: %s, %v", global.Shape(), locals)
		}
		out := PretrainLossCrops(ctx, enc, cfg, global, locals, nil)
		views, embDims = out.Views, out.Embeddings.Shape().Dimensions
		return out.Loss
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec(images)
	if err != nil {
		t.Fatal(err)
	}
	if l := toF64(out[0])[0]; !(l >= 0 && l <= 8) {
		t.Errorf("lwbyol multi-crop loss %v, want in [0, 8] (2 × the mean of 2 − 2cos)", l)
	}
	wantCalls := "/encoder:8 /encoder:8 /encoder:4 /encoder:4 /encoder:4 /encoder:6 /target_encoder:8 /target_encoder:8"
	if got := strings.Join(calls, " "); got != wantCalls {
		t.Errorf("encoder calls %q, want %q (locals never reach the target)", got, wantCalls)
	}
	if fmt.Sprint(embDims) != "[5 12 4]" || len(views) != 12 {
		t.Fatalf("embeddings %v and %d views, want [5 12 4] (2 layers × 6 crops)", embDims, len(views))
	}
	for i, v := range views {
		if v.Layer != 1+i/6 || v.Crop != i%6 {
			t.Errorf("view %d: layer %d crop %d, want layer %d crop %d", i, v.Layer, v.Crop, 1+i/6, i%6)
		}
	}
}
