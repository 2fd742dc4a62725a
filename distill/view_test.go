package distill

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/cnn"
	"github.com/ifa-toolkit/ifa/internal/testutil"
	"github.com/ifa-toolkit/ifa/vit"
)

// TestViewTokenGridsAndTapChoice checks View.Apply on a ViT-like encoder (three taps [B, 1+4, D],
// CLS first) and on a CNN-like one: the grids hold the patch tokens in row-major order, the stage
// maps are an empty stem and the grids, and a tap choice makes the chosen layers the taps, vectors
// and stage maps.
func TestViewTokenGridsAndTapChoice(t *testing.T) {
	const b, d = 2, 3
	r := rand.New(rand.NewPCG(4, 4))
	taps := make([]host, 3)
	for i := range taps {
		taps[i] = randHost(r, b, 5, d)
	}
	build := func() (*graph.Graph, backbone.Features) {
		g := graph.NewGraph(testutil.Backend(), "view")
		t.Cleanup(g.Finalize)
		var f backbone.Features
		for i, h := range taps {
			f.Taps = append(f.Taps, graph.Parameter(g, fmt.Sprintf("tap%d", i), h.tensor(dtypes.Float32).Shape()))
		}
		for i := range taps {
			f.TapVectors = append(f.TapVectors, graph.Parameter(g, fmt.Sprintf("vec%d", i), shapes.Make(dtypes.Float32, b, d)))
		}
		return g, f
	}
	g, f := build()
	out, err := View{Rows: 2, Cols: 2}.Apply(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Stages) != 4 || out.Stages[0] != nil || !slices.Equal(out.Stages[1:], out.Taps) || !slices.Equal(out.TapVectors, f.TapVectors) {
		t.Fatalf("token view: %d stages (stem %v), taps and vectors not the grids and the vectors", len(out.Stages), out.Stages[0])
	}
	// The grid of tap 1 is the patch tokens: grid[b, i, j, c] = tap[b, 1+2i+j, c].
	g.Compile(out.Taps[1])
	inputs := make([]any, 0, 6)
	for _, h := range taps {
		inputs = append(inputs, h.tensor(dtypes.Float32))
	}
	for range taps {
		inputs = append(inputs, tensors.FromShape(f.TapVectors[0].Shape()))
	}
	grid := tensors.MustCopyFlatData[float32](g.Run(inputs...)[0])
	for bi := range b {
		for i := range 2 {
			for j := range 2 {
				for c := range d {
					want := float32(taps[1].data[(bi*5+1+2*i+j)*d+c])
					if got := grid[((bi*2+i)*2+j)*d+c]; got != want {
						t.Fatalf("grid[%d,%d,%d,%d] = %v, want the token's %v", bi, i, j, c, got, want)
					}
				}
			}
		}
	}

	_, f = build()
	last2, _ := backbone.ParseTapChoice("last:2")
	out, err = View{Rows: 2, Cols: 2, Taps: &last2}.Apply(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Taps) != 2 || len(out.Stages) != 3 || out.Stages[0] != nil || !slices.Equal(out.Stages[1:], out.Taps) ||
		!slices.Equal(out.TapVectors, f.TapVectors[1:]) {
		t.Errorf("last:2 on the token view: %d taps, %d stages", len(out.Taps), len(out.Stages))
	}

	// A CNN: blocks:last:2 are the last two stage maps (after the stem), their pools the vectors.
	cnnF := backbone.Features{Stages: []*graph.Node{f.TapVectors[0], out.Taps[0], out.Taps[1], out.Taps[1]}, Taps: out.Taps[:1]}
	blocks, _ := backbone.ParseTapChoice("blocks:last:2")
	got, err := View{Taps: &blocks}.Apply(cnnF)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Stages, []*graph.Node{cnnF.Stages[0], cnnF.Stages[2], cnnF.Stages[3]}) || !slices.Equal(got.Taps, cnnF.Stages[2:]) ||
		len(got.TapVectors) != 2 || got.TapVectors[0].Rank() != 2 {
		t.Errorf("blocks:last:2 on a CNN: stages %v, taps %v", got.Stages, got.Taps)
	}
	if z, _ := (View{}).Apply(cnnF); !slices.Equal(z.Stages, cnnF.Stages) {
		t.Error("the zero view changed the features")
	}

	// Errors: tokens that fill no grid, a choice out of range.
	if _, err := (View{Rows: 3, Cols: 3}).Apply(f); err == nil || !strings.Contains(err.Error(), "3x3 grid") {
		t.Errorf("5 tokens on a 3x3 grid: err = %v", err)
	}
	last5, _ := backbone.ParseTapChoice("last:5")
	if _, err := (View{Rows: 2, Cols: 2, Taps: &last5}).Apply(f); err == nil || !strings.Contains(err.Error(), "only 3") {
		t.Errorf("last:5 of 3 taps: err = %v", err)
	}
}

// crossEncoders are the tiny encoders of the cross-architecture tests: resnet8, a ViT and an
// MLP-Mixer (nano widths, patch 4, depth 4) on 8x8x1 images with 10 classes.
func crossEncoders(t *testing.T) map[string]Encoder {
	t.Helper()
	resnet8, err := cnn.Get("resnet8")
	if err != nil {
		t.Fatal(err)
	}
	vcfg, _ := vit.Get("nano")
	vm, err := vit.New(vcfg.WithImage(8, 8, 1).WithClasses(10))
	if err != nil {
		t.Fatal(err)
	}
	mcfg, _ := vit.GetMixer("nano")
	mm, err := vit.NewMixer(mcfg.WithImage(8, 8, 1).WithClasses(10))
	if err != nil {
		t.Fatal(err)
	}
	grid := View{Rows: 2, Cols: 2}
	return map[string]Encoder{
		"resnet8":    func(ctx *context.Context, x *graph.Node) backbone.Features { return resnet8.Build(ctx, x, 10) },
		"vit:nano":   grid.Wrap(vm.Features),
		"mixer:nano": grid.Wrap(mm.Features),
	}
}

// crossRefused lists the methods refused between a CNN (resnet8: three stage maps after the stem)
// and a ViT or MLP-Mixer (four blocks) with the default views, and the reason's words; every other
// method holds for every pair. docs/CROSS-ARCH.md states the same.
var crossRefused = map[string]string{
	"attention": "intermediate stage maps",
	"fsp":       "equal channel counts",
	"nst":       "intermediate stage maps",
	"vid":       "intermediate stage maps",
}

// TestCrossArchitectureChecks checks every method on every (student, teacher) pair of resnet8, ViT
// and MLP-Mixer: the methods of crossRefused are refused between a CNN and a token encoder with a
// reason naming the tap choice, everything else is accepted.
func TestCrossArchitectureChecks(t *testing.T) {
	encs := crossEncoders(t)
	names := []string{"resnet8", "vit:nano", "mixer:nano"}
	fs := map[string]FeatureShapes{}
	for _, n := range names {
		f, _, err := DescribeEncoder(testutil.Backend(), encs[n], 8, 8, 1)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		fs[n] = f
	}
	for _, s := range names {
		for _, te := range names {
			cross := (s == "resnet8") != (te == "resnet8")
			for _, m := range Names() {
				method, _ := Get(m)
				ctx := context.New()
				err := NewObjectiveChecked(method, fs[s], fs[te], ctx)
				reason, refused := crossRefused[m]
				switch {
				case cross && refused:
					if err == nil || !strings.Contains(err.Error(), reason) || !strings.Contains(err.Error(), "--teacher-taps") {
						t.Errorf("%s → %s, %s: err = %v, want a refusal about %q naming the tap choice", te, s, m, err, reason)
					}
				case err != nil:
					t.Errorf("%s → %s, %s: refused: %v", te, s, m, err)
				}
			}
		}
	}
}

// NewObjectiveChecked runs Objective.Check for method on these shapes (test helper).
func NewObjectiveChecked(m Method, s, t FeatureShapes, ctx *context.Context) error {
	o := NewObjective(m, func(*context.Context, *graph.Node) backbone.Features { return backbone.Features{} },
		func(*context.Context, *graph.Node) backbone.Features { return backbone.Features{} })
	_, err := o.Check(ctx, s, t)
	return err
}

// TestCrossArchitectureLosses trains nothing but builds and runs, in training mode, the loss of
// every method (CRD aside: its host inputs are tested with the command) between a ViT teacher and a
// resnet8 student and between a resnet8 teacher and an MLP-Mixer student, choosing three blocks of
// the token encoder so the map-based baselines pair layer for layer, and checks each loss is finite
// and its gradient reaches the student's first layer.
func TestCrossArchitectureLosses(t *testing.T) {
	encs := crossEncoders(t)
	last3, _ := backbone.ParseTapChoice("blocks:last:3")
	choose := View{Taps: &last3}
	r := rand.New(rand.NewPCG(8, 1))
	images := randHost(r, 4, 8, 8, 1).tensor(dtypes.Float32)
	labels := tensors.FromFlatDataAndDimensions([]int32{1, 3, 1, 7}, 4)
	for _, pair := range []struct {
		student, teacher string
		firstScope       string
	}{
		{"resnet8", "vit:nano", "/student/stem/conv"},
		{"mixer:nano", "resnet8", "/student/patch_embed"},
	} {
		for _, m := range Names() {
			if m == "crd" {
				continue
			}
			t.Run(pair.teacher+"→"+pair.student+"/"+m, func(t *testing.T) {
				method, _ := Get(m)
				sEnc, tEnc := encs[pair.student], encs[pair.teacher]
				if pair.student != "resnet8" {
					sEnc = choose.Wrap(sEnc)
				} else {
					tEnc = choose.Wrap(tEnc)
				}
				ss, _, err := DescribeEncoder(testutil.Backend(), sEnc, 8, 8, 1)
				if err != nil {
					t.Fatal(err)
				}
				ts, _, err := DescribeEncoder(testutil.Backend(), tEnc, 8, 8, 1)
				if err != nil {
					t.Fatal(err)
				}
				if err := method.Check(context.New(), ss, ts); err != nil {
					t.Skipf("the method does not apply to this pair: %v", err)
				}
				o := NewObjective(method, sEnc, tEnc)
				ctx := context.New()
				if err := ctx.SetRNGStateFromSeed(3); err != nil {
					t.Fatal(err)
				}
				e, err := context.NewExec(testutil.Backend(), ctx, func(ctx *context.Context, x, y *graph.Node) []*graph.Node {
					ctx.SetTraining(x.Graph(), true)
					loss := o.Method.Loss(ctx, o.Student(ctx.InAbsPath(StudentScope), x), o.Teacher(ctx.InAbsPath(TeacherScope), x), Step{Labels: y})
					first := ctx.InspectVariable(pair.firstScope, "weights")
					if first == nil {
						panic("no first student variable under " + pair.firstScope)
					}
					grad := graph.Gradient(graph.ReduceAllSum(loss), first.ValueGraph(x.Graph()))[0]
					return []*graph.Node{loss, graph.ReduceAllSum(graph.Abs(grad))}
				})
				if err != nil {
					t.Fatal(err)
				}
				out, err := e.Exec(images, labels)
				if err != nil {
					t.Fatal(err)
				}
				loss := float64(tensors.MustCopyFlatData[float32](out[0])[0])
				grad := float64(tensors.MustCopyFlatData[float32](out[1])[0])
				if math.IsNaN(loss) || math.IsInf(loss, 0) || math.IsNaN(grad) {
					t.Errorf("loss %v, gradient mass %v", loss, grad)
				}
				if _, weighted := method.(Weighted); weighted && !(grad > 0) {
					t.Errorf("loss %v: no gradient (%v) reaches the student's first layer", loss, grad)
				}
			})
		}
	}
}
