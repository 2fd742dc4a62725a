package cnn

import (
	"bytes"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite testdata/scopes.golden")

// expectedShapes is METHODS.md §4.1's is_feat table for 32×32×3 inputs, converted to NHWC, plus the
// §2.2 tap lists.
type expectedShapes struct {
	stages []MapShape
	pooled int
	taps   []MapShape
}

func expectedFor(t *testing.T, name string) expectedShapes {
	t.Helper()
	spec, err := Get(name)
	if err != nil {
		t.Fatal(err)
	}
	switch c := spec.Config.(type) {
	case ResNetConfig:
		w := c.Widths
		e := expectedShapes{
			stages: []MapShape{{32, 32, w[0]}, {32, 32, w[1]}, {16, 16, w[2]}, {8, 8, w[3]}},
			pooled: w[3],
		}
		n := (c.Depth - 2) / 6
		if n == 1 {
			e.taps = append(e.taps, MapShape{16, 16, w[2]})
		}
		for range 2 * n {
			e.taps = append(e.taps, MapShape{8, 8, w[3]})
		}
		return e
	case WRNConfig:
		k := c.Widen
		last := MapShape{8, 8, 64 * k}
		return expectedShapes{
			stages: []MapShape{{32, 32, 16}, {32, 32, 16 * k}, {16, 16, 32 * k}, last},
			pooled: 64 * k,
			taps:   []MapShape{last, last, last},
		}
	case MobileNetV2Config:
		return expectedShapes{
			stages: []MapShape{{16, 16, 16}, {16, 16, 12}, {8, 8, 16}, {4, 4, 48}, {2, 2, 160}},
			pooled: 1280,
			taps:   []MapShape{{2, 2, 480}, {2, 2, 480}, {2, 2, 1280}},
		}
	case VGGConfig:
		return expectedShapes{
			stages: []MapShape{{32, 32, 64}, {16, 16, 128}, {8, 8, 256}, {4, 4, 512}, {4, 4, 512}},
			pooled: 512,
			taps:   []MapShape{{8, 8, 256}, {4, 4, 512}, {4, 4, 512}},
		}
	case BottleneckResNetConfig:
		e := expectedShapes{
			stages: []MapShape{{32, 32, 64}, {32, 32, 256}, {16, 16, 512}, {8, 8, 1024}, {4, 4, 2048}},
			pooled: 2048,
			taps:   []MapShape{{8, 8, 512}, {4, 4, 512}, {4, 4, 2048}},
		}
		for range c.Blocks[3] - 1 {
			e.taps = append(e.taps, MapShape{4, 4, 512}, MapShape{4, 4, 512}, MapShape{4, 4, 2048})
		}
		return e
	case ShuffleNetV1Config:
		e := expectedShapes{
			stages: []MapShape{{32, 32, 24}, {16, 16, 240}, {8, 8, 480}, {4, 4, 960}},
			pooled: 960,
			taps:   []MapShape{{8, 8, 120}, {4, 4, 120}, {4, 4, 960}},
		}
		for range c.Blocks[2] - 1 {
			e.taps = append(e.taps, MapShape{4, 4, 240}, MapShape{4, 4, 240}, MapShape{4, 4, 960})
		}
		return e
	case ShuffleNetV2Config:
		e := expectedShapes{
			stages: []MapShape{{32, 32, 24}, {16, 16, 116}, {8, 8, 232}, {4, 4, 464}},
			pooled: 1024,
			taps:   []MapShape{{4, 4, 232}, {8, 8, 232}, {4, 4, 232}},
		}
		for range c.Blocks[2] {
			e.taps = append(e.taps, MapShape{4, 4, 232}, MapShape{4, 4, 232})
		}
		e.taps = append(e.taps, MapShape{4, 4, 1024})
		return e
	}
	t.Fatalf("%s: unknown config type %T", name, spec.Config)
	return expectedShapes{}
}

// slowModels are only executed without -short (graph building still covers them).
var slowModels = []string{"resnet110", "resnet56", "resnet44", "resnet32", "resnet32x4", "resnet8x4",
	"vgg11", "vgg13", "vgg16", "vgg19", "wrn_16_2", "wrn_40_1", "wrn_40_2", "resnet50"}

func TestRegistryShapes(t *testing.T) {
	wantTaps := map[string]int{"resnet8": 3, "resnet8x4": 3, "resnet14": 4, "resnet20": 6, "resnet56": 18,
		"resnet110": 36, "resnet32x4": 10, "wrn_40_2": 3, "vgg13": 3, "resnet50": 9, "shufflev1": 12, "shufflev2": 10}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			want := expectedFor(t, name)
			if n, ok := wantTaps[name]; ok && len(want.taps) != n {
				t.Fatalf("expected tap count %d, §1.2/§2.2 say %d", len(want.taps), n)
			}
			spec, _ := Get(name)
			info, err := spec.Describe(testutil.Backend(), MapShape{32, 32, 3}, 100)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(info.Stages, want.stages) {
				t.Errorf("stages %v, want %v", info.Stages, want.stages)
			}
			if !slices.Equal(info.PreactStages, want.stages) {
				t.Errorf("preact stages %v, want %v", info.PreactStages, want.stages)
			}
			if !slices.Equal(info.Taps, want.taps) {
				t.Errorf("taps %v, want %v", info.Taps, want.taps)
			}
			if info.FeatureDim != want.pooled {
				t.Errorf("feature dim %d, want %d", info.FeatureDim, want.pooled)
			}
			for i, tp := range want.taps {
				if info.TapWidths[i] != tp.C {
					t.Errorf("tap width %d: %d, want %d", i, info.TapWidths[i], tp.C)
				}
			}
			if testing.Short() && slices.Contains(slowModels, name) {
				return
			}
			runForward(t, spec, 2, MapShape{32, 32, 3}, 100, want)
		})
	}
}

// TestFashionMNISTInput runs one model of each family on 28×28×1 inputs.
func TestFashionMNISTInput(t *testing.T) {
	in := MapShape{28, 28, 1}
	cases := map[string]expectedShapes{
		"resnet8": {
			stages: []MapShape{{28, 28, 16}, {28, 28, 16}, {14, 14, 32}, {7, 7, 64}}, pooled: 64,
			taps: []MapShape{{14, 14, 32}, {7, 7, 64}, {7, 7, 64}},
		},
		"wrn_16_1": {
			stages: []MapShape{{28, 28, 16}, {28, 28, 16}, {14, 14, 32}, {7, 7, 64}}, pooled: 64,
			taps: []MapShape{{7, 7, 64}, {7, 7, 64}, {7, 7, 64}},
		},
		"mobilenetv2": {
			stages: []MapShape{{14, 14, 16}, {14, 14, 12}, {7, 7, 16}, {4, 4, 48}, {2, 2, 160}}, pooled: 1280,
			taps: []MapShape{{2, 2, 480}, {2, 2, 480}, {2, 2, 1280}},
		},
		"vgg8": {
			stages: []MapShape{{28, 28, 64}, {14, 14, 128}, {7, 7, 256}, {3, 3, 512}, {3, 3, 512}}, pooled: 512,
			taps: []MapShape{{7, 7, 256}, {3, 3, 512}, {3, 3, 512}},
		},
		"shufflev1": {
			stages: []MapShape{{28, 28, 24}, {14, 14, 240}, {7, 7, 480}, {4, 4, 960}}, pooled: 960,
			taps: []MapShape{{7, 7, 120}, {4, 4, 120}, {4, 4, 960}, {4, 4, 240}, {4, 4, 240}, {4, 4, 960},
				{4, 4, 240}, {4, 4, 240}, {4, 4, 960}, {4, 4, 240}, {4, 4, 240}, {4, 4, 960}},
		},
		"shufflev2": {
			stages: []MapShape{{28, 28, 24}, {14, 14, 116}, {7, 7, 232}, {4, 4, 464}}, pooled: 1024,
			taps: []MapShape{{4, 4, 232}, {7, 7, 232}, {4, 4, 232}, {4, 4, 232}, {4, 4, 232}, {4, 4, 232},
				{4, 4, 232}, {4, 4, 232}, {4, 4, 232}, {4, 4, 1024}},
		},
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			spec, err := Get(name)
			if err != nil {
				t.Fatal(err)
			}
			runForward(t, spec, 2, in, 10, want)
			info, err := spec.Describe(testutil.Backend(), in, 10)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(info.Stages, want.stages) || !slices.Equal(info.Taps, want.taps) {
				t.Errorf("Describe: stages %v taps %v, want %v %v", info.Stages, info.Taps, want.stages, want.taps)
			}
		})
	}
}

// featureOutputs lists every output of f: logits, pooled vector, stages, pre-activation stages,
// taps and tap vectors, in that order.
func featureOutputs(f backbone.Features) []*graph.Node {
	out := []*graph.Node{f.Logits, f.Pooled}
	out = append(out, f.Stages...)
	out = append(out, f.PreactStages...)
	out = append(out, f.Taps...)
	return append(out, f.TapVectors...)
}

// runForward executes the model in training mode on a random batch and checks every output's shape
// and finiteness.
func runForward(t *testing.T, spec Spec, batch int, in MapShape, numClasses int, want expectedShapes) {
	t.Helper()
	ctx := context.New()
	ctx.SetParam(context.ParamInitialSeed, int64(1))
	exec, err := context.NewExec(testutil.Backend(), ctx, func(ctx *context.Context, images *graph.Node) []*graph.Node {
		ctx.SetTraining(images.Graph(), true)
		return featureOutputs(spec.Build(ctx, images, numClasses))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	imgs := make([]float32, batch*in.H*in.W*in.C)
	for i := range imgs {
		imgs[i] = float32(math.Sin(float64(i) * 0.37))
	}
	outs, err := exec.Exec(tensors.FromFlatDataAndDimensions(imgs, batch, in.H, in.W, in.C))
	if err != nil {
		t.Fatal(err)
	}
	var wantDims [][]int
	wantDims = append(wantDims, []int{batch, numClasses}, []int{batch, want.pooled})
	for range 2 {
		for _, s := range want.stages {
			wantDims = append(wantDims, []int{batch, s.H, s.W, s.C})
		}
	}
	for _, s := range want.taps {
		wantDims = append(wantDims, []int{batch, s.H, s.W, s.C})
	}
	for _, s := range want.taps {
		wantDims = append(wantDims, []int{batch, s.C})
	}
	if len(outs) != len(wantDims) {
		t.Fatalf("%d outputs, want %d", len(outs), len(wantDims))
	}
	for i, o := range outs {
		if !slices.Equal(o.Shape().Dimensions, wantDims[i]) {
			t.Errorf("output %d: shape %v, want %v", i, o.Shape().Dimensions, wantDims[i])
		}
		for j, v := range tensors.MustCopyFlatData[float32](o) {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("output %d entry %d is %v", i, j, v)
			}
		}
	}
}

// scopeListing lists every variable of the model as "scope/name [dims] (trainable|state)".
func scopeListing(t *testing.T, name string) string {
	t.Helper()
	spec, err := Get(name)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.New()
	g := graph.NewGraph(testutil.Backend(), name)
	defer g.Finalize()
	spec.Build(ctx, graph.Parameter(g, "images", shapeOf(1, 32, 32, 3)), 100)
	var lines []string
	for v := range ctx.IterVariables() {
		kind := "state"
		if v.Trainable {
			kind = "trainable"
		}
		lines = append(lines, fmt.Sprintf("%s %v %s", v.ScopeAndName(), v.Shape().Dimensions, kind))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func TestScopesGolden(t *testing.T) {
	var buf bytes.Buffer
	for _, name := range Names() {
		fmt.Fprintf(&buf, "## %s\n%s\n", name, scopeListing(t, name))
	}
	path := filepath.Join("testdata", "scopes.golden")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cnn -run TestScopesGolden -update to create it)", err)
	}
	if !bytes.Equal(golden, buf.Bytes()) {
		gl, nl := strings.Split(string(golden), "\n"), strings.Split(buf.String(), "\n")
		for i := range max(len(gl), len(nl)) {
			var a, b string
			if i < len(gl) {
				a = gl[i]
			}
			if i < len(nl) {
				b = nl[i]
			}
			if a != b {
				t.Fatalf("variable scopes changed (this breaks old checkpoints); first difference at line %d:\n golden: %q\n now:    %q", i+1, a, b)
			}
		}
	}
}
