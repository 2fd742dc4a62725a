package ssl

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// layerNodes builds n [b, d] parameters in a fresh graph.
func layerNodes(g *graph.Graph, prefix string, n, b, d int) []*graph.Node {
	out := make([]*graph.Node, n)
	for i := range out {
		out[i] = graph.Parameter(g, fmt.Sprintf("%s%d", prefix, i), shapes.Make(dtypes.Float64, b, d))
	}
	return out
}

type viewKey struct {
	Source   string
	Layer    int
	Detached bool
}

func keys(views []View) []viewKey {
	out := make([]viewKey, len(views))
	for i, v := range views {
		out[i] = viewKey{v.Source.String(), v.Layer, v.Detached}
	}
	return out
}

func sel(t *testing.T, s string) backbone.LayerSelect {
	t.Helper()
	ls, err := backbone.ParseLayerSelect(s)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func TestCLRViews(t *testing.T) {
	g := graph.NewGraph(testutil.Backend(), "views")
	a := layerNodes(g, "a", 5, 2, 3)
	b := layerNodes(g, "b", 4, 2, 3)
	in := CLRInputs{A: a, B: b}
	cases := []struct {
		opts CLRViewOptions
		want []viewKey
	}{
		{CLRViewOptions{}, []viewKey{{"a", 4, false}, {"a", 3, true}}},
		{CLRViewOptions{Layers: sel(t, "last:3")}, []viewKey{{"a", 4, false}, {"a", 2, true}, {"a", 3, true}}},
		{CLRViewOptions{Layers: sel(t, "all"), IntermediateGradient: true},
			[]viewKey{{"a", 4, false}, {"a", 0, false}, {"a", 1, false}, {"a", 2, false}, {"a", 3, false}}},
		{CLRViewOptions{Layers: sel(t, "0,-1")}, []viewKey{{"a", 4, false}, {"a", 0, true}}},
		{CLRViewOptions{Mode: ModeSimLWCLR}, []viewKey{{"a", 4, false}, {"b", 2, false}, {"b", 3, false}}},
		{CLRViewOptions{Mode: ModeSimLWCLR, Layers: sel(t, "1"), StopGradientB: true},
			[]viewKey{{"a", 4, false}, {"b", 3, true}}},
		{CLRViewOptions{Mode: ModeSimCLR, Layers: sel(t, "all")}, []viewKey{{"a", 4, false}, {"b", 3, false}}},
	}
	for _, c := range cases {
		views, err := CLRViews(in, c.opts)
		if err != nil {
			t.Fatalf("%+v: %v", c.opts, err)
		}
		if got := keys(views); !reflect.DeepEqual(got, c.want) {
			t.Fatalf("%s %s: views %v, want %v", c.opts.Mode, c.opts.Layers, got, c.want)
		}
		for _, v := range views {
			src := a
			if v.Source == SourceB {
				src = b
			}
			if !v.Detached && v.Input != src[v.Layer] {
				t.Fatalf("%s: view %v does not carry its layer node", c.opts.Mode, v)
			}
		}
	}

	for _, c := range []struct {
		in   CLRInputs
		opts CLRViewOptions
		msg  string
	}{
		{in, CLRViewOptions{Layers: sel(t, "last:1")}, "at least 2 views"},
		{in, CLRViewOptions{Layers: sel(t, "-1")}, "at least 2 views"},
		{in, CLRViewOptions{Layers: sel(t, "last:6")}, "only 5 layers"},
		{in, CLRViewOptions{Layers: sel(t, "7")}, "only 5 layers"},
		{CLRInputs{A: a}, CLRViewOptions{Mode: ModeSimCLR}, "no layer vectors for b"},
		{CLRInputs{A: a, B: layerNodes(g, "c", 2, 3, 3)}, CLRViewOptions{Mode: ModeSimLWCLR}, "batch sizes differ"},
		{CLRInputs{A: nil}, CLRViewOptions{}, "no layer vectors for a"},
		{in, CLRViewOptions{Mode: CLRMode(9)}, "unknown view mode"},
	} {
		_, err := CLRViews(c.in, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Fatalf("%+v: error %v, want one containing %q", c.opts, err, c.msg)
		}
	}
}

func TestCDViews(t *testing.T) {
	g := graph.NewGraph(testutil.Backend(), "views")
	s := graph.Parameter(g, "s", shapes.Make(dtypes.Float64, 2, 3))
	taps := layerNodes(g, "t", 4, 2, 5)
	cases := []struct {
		opts CDViewOptions
		want []viewKey
	}{
		{CDViewOptions{}, []viewKey{{"student", 0, false}, {"teacher", 2, true}, {"teacher", 3, true}}},
		{CDViewOptions{Taps: sel(t, "1")}, []viewKey{{"student", 0, false}, {"teacher", 3, true}}},
		{CDViewOptions{Taps: sel(t, "last:3"), TeacherGradient: true},
			[]viewKey{{"student", 0, false}, {"teacher", 1, false}, {"teacher", 2, false}, {"teacher", 3, false}}},
		{CDViewOptions{Taps: sel(t, "-1,0")}, []viewKey{{"student", 0, false}, {"teacher", 3, true}, {"teacher", 0, true}}},
	}
	for _, c := range cases {
		views, err := CDViews(s, taps, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := keys(views); !reflect.DeepEqual(got, c.want) {
			t.Fatalf("%s: views %v, want %v", c.opts.Taps, got, c.want)
		}
	}
	if _, err := CDViews(s, taps, CDViewOptions{Taps: sel(t, "last:5")}); err == nil {
		t.Fatal("last:5 of 4 taps: want an error")
	}
	if _, err := CDViews(s, layerNodes(g, "u", 2, 3, 5), CDViewOptions{}); err == nil {
		t.Fatal("batch mismatch: want an error")
	}
	if _, err := CDViews(graph.Parameter(g, "bad", shapes.Make(dtypes.Float64, 2, 3, 1)), taps, CDViewOptions{}); err == nil {
		t.Fatal("rank-3 student: want an error")
	}
}

// TestViewsStopGradient checks that detached views send no gradient to their layer while the heads
// still get it, end to end through EmbedViews and SupCon.
func TestViewsStopGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	const b, d, n = 4, 3, 3
	inputs := make([]any, n)
	for i := range inputs {
		x := make([]float64, b*d)
		for j := range x {
			x[j] = rng.NormFloat64()
		}
		inputs[i] = tensors.FromFlatDataAndDimensions(x, b, d)
	}
	for _, intermediate := range []bool{false, true} {
		ctx := context.New()
		outs := context.MustExecOnceN(testutil.Backend(), ctx, func(ctx *context.Context, l0, l1, l2 *graph.Node) []*graph.Node {
			views, err := CLRViews(CLRInputs{A: []*graph.Node{l0, l1, l2}},
				CLRViewOptions{Layers: sel(t, "all"), IntermediateGradient: intermediate})
			if err != nil {
				panic(err)
			}
			proj := SharedHead(ctx.In("proj"), HeadConfig{Layers: 1, Out: 4, Norm: NormLayer})
			stack := EmbedViews(views, func(v View) *graph.Node { return proj(v.Input) })
			loss := SupCon(stack, nil, SupConOptions{Temperature: 0.5})
			w := ctx.In("proj").In("fc_0").GetVariable("weights").ValueGraph(l0.Graph())
			grads := graph.Gradient(loss, l0, l1, l2, w)
			return append([]*graph.Node{stack}, grads...)
		}, inputs...)
		if got := outs[0].Shape().Dimensions; !reflect.DeepEqual(got, []int{b, n, 4}) {
			t.Fatalf("stack shape %v", got)
		}
		// Each embedded view is unit norm.
		st := toF64(outs[0])
		for i := 0; i < b*n; i++ {
			var s float64
			for k := 0; k < 4; k++ {
				s += st[i*4+k] * st[i*4+k]
			}
			if math.Abs(s-1) > 1e-12 {
				t.Fatalf("view %d has squared norm %g", i, s)
			}
		}
		norm := func(x []float64) float64 {
			var s float64
			for _, v := range x {
				s += v * v
			}
			return math.Sqrt(s)
		}
		gLast, g0, g1, gw := norm(toF64(outs[3])), norm(toF64(outs[1])), norm(toF64(outs[2])), norm(toF64(outs[4]))
		if gLast == 0 || gw == 0 {
			t.Fatalf("intermediate=%v: last-layer grad %g, projector grad %g, want both > 0", intermediate, gLast, gw)
		}
		if intermediate != (g0 > 0 && g1 > 0) || (!intermediate && (g0 != 0 || g1 != 0)) {
			t.Fatalf("intermediate=%v: intermediate-layer grads %g, %g", intermediate, g0, g1)
		}
	}
}
