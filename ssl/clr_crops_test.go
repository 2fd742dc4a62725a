package ssl

import (
	"fmt"
	"math"
	"math/rand/v2"
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

// naiveSupConAnchors is a plain float64 transcription of SupConWithAnchors' formula: f [B][V][D]
// the contrast points, e [B][M][D] the extra anchors, labels nil or [B]. It returns the per-anchor
// losses (the V·B contrast anchors view-major, then the M·B extra ones, index N + m·B + b) and their
// mean.
func naiveSupConAnchors(f, e [][][]float64, labels []int, tau, baseTau float64) ([]float64, float64) {
	b, v, m := len(f), len(f[0]), len(e[0])
	n := b * v
	c := func(k int) []float64 { return f[k%b][k/b] }
	anchor := func(i int) []float64 {
		if i < n {
			return c(i)
		}
		return e[(i-n)%b][(i-n)/b]
	}
	scale := 1.0
	if baseTau != 0 {
		scale = tau / baseTau
	}
	dot := func(x, y []float64) float64 {
		var s float64
		for j := range x {
			s += x[j] * y[j]
		}
		return s
	}
	nA := n + m*b
	per := make([]float64, nA)
	var total float64
	for i := range nA {
		a := anchor(i)
		var den float64
		for k := range n {
			if k != i {
				den += math.Exp(dot(a, c(k)) / tau)
			}
		}
		var sum float64
		var nPos int
		for k := range n {
			pos := k%b == i%b
			if labels != nil {
				pos = labels[k%b] == labels[i%b]
			}
			if k == i || !pos {
				continue
			}
			nPos++
			sum += dot(a, c(k))/tau - math.Log(den)
		}
		if nPos > 0 {
			per[i] = -scale * sum / float64(nPos)
		}
		total += per[i]
	}
	return per, total / float64(nA)
}

// runAnchors evaluates SupConWithAnchorsPerAnchor and its mean on x = [B, V+M, D] (the first V
// views the contrast points, the rest the extra anchors).
func runAnchors(t *testing.T, x *tensors.Tensor, v int, labels []int, opts SupConOptions) ([]float64, float64) {
	t.Helper()
	fn := func(x, y *graph.Node) *graph.Node {
		f, e := splitViews(x, v)
		return SupConWithAnchorsPerAnchor(f, e, y, opts)
	}
	return runPerAnchor(t, func(x, y *graph.Node, _ SupConOptions) *graph.Node { return fn(x, y) }, x, labels, opts)
}

func splitViews(x *graph.Node, v int) (*graph.Node, *graph.Node) {
	return graph.Slice(x, graph.AxisRange(), graph.AxisRange(0, v)), graph.Slice(x, graph.AxisRange(), graph.AxisRange(v))
}

func concatViews(f, e [][][]float64) [][][]float64 {
	out := make([][][]float64, len(f))
	for i := range f {
		out[i] = append(append([][]float64(nil), f[i]...), e[i]...)
	}
	return out
}

// The worked example: B = 2, V = 2, M = 1, τ = τ_b = 0.5 (so ℓ = 2⟨a, c⟩). Image 0's global views
// are both e1, image 1's both e2; the local crop of image 0 is e1, the local crop of image 1 is e1
// too (it looks like image 0). Every global anchor sees logits {0, 2, 0} over the other three
// contrast points, its positive the 2: L = log(e²+2) − 2. The local anchor of image 0 sees {2, 0,
// 2, 0} over all four, its positives the two 2s: L = log(2e²+2) − 2. The local anchor of image 1
// has positives of logit 0: L = log(2e²+2). With labels {0, 0} (one class) every contrast point is
// a positive of a local anchor: L = log(2e²+2) − 1 for both; the global anchors then have 3
// positives of logits {0, 2, 0}: L = log(e²+2) − 2/3.
func TestSupConWithAnchorsWorkedExample(t *testing.T) {
	e1, e2 := []float64{1, 0}, []float64{0, 1}
	f := [][][]float64{{e1, e1}, {e2, e2}}
	e := [][][]float64{{e1}, {e1}}
	e2sq := math.Exp(2)
	g := math.Log(e2sq+2) - 2
	want := []float64{g, g, g, g, math.Log(2*e2sq+2) - 2, math.Log(2*e2sq + 2)}
	wantLabels := []float64{g + 2 - 2.0/3, g + 2 - 2.0/3, g + 2 - 2.0/3, g + 2 - 2.0/3, math.Log(2*e2sq+2) - 1, math.Log(2*e2sq+2) - 1}
	opts := SupConOptions{Temperature: 0.5, BaseTemperature: 0.5}
	for _, c := range []struct {
		labels []int
		want   []float64
	}{{nil, want}, {[]int{0, 0}, wantLabels}} {
		naive, naiveMean := naiveSupConAnchors(f, e, c.labels, 0.5, 0.5)
		assertClose(t, fmt.Sprintf("naive labels=%v", c.labels), naive, c.want, 1e-14)
		per, mean := runAnchors(t, tensor3(concatViews(f, e)), 2, c.labels, opts)
		assertClose(t, fmt.Sprintf("per-anchor labels=%v", c.labels), per, c.want, 1e-13)
		assertClose(t, "mean", []float64{mean}, []float64{naiveMean}, 1e-13)
	}
}

// SupConWithAnchors against the float64 reference, for several V, M, labels and temperatures; its
// contrast anchors' losses are SupCon's (the extra anchors change no other anchor's terms).
func TestSupConWithAnchorsMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	const b, d = 5, 4
	labels := []int{0, 2, 0, 1, 2}
	for v := 1; v <= 3; v++ {
		for m := 1; m <= 3; m++ {
			x := randUnit(rng, b, v+m, d)
			f, e := make([][][]float64, b), make([][][]float64, b)
			for i := range x {
				f[i], e[i] = x[i][:v], x[i][v:]
			}
			for _, y := range [][]int{nil, labels} {
				for _, taus := range [][2]float64{{0.5, 0}, {0.1, 0.07}} {
					what := fmt.Sprintf("V=%d M=%d labels=%v tau=%v", v, m, y, taus)
					opts := SupConOptions{Temperature: taus[0], BaseTemperature: taus[1]}
					wantPer, wantMean := naiveSupConAnchors(f, e, y, taus[0], taus[1])
					per, mean := runAnchors(t, tensor3(x), v, y, opts)
					assertClose(t, what+" per-anchor", per, wantPer, 1e-12)
					assertClose(t, what+" mean", []float64{mean}, []float64{wantMean}, 1e-12)
					supPer, _ := naiveSupCon(f, y, taus[0], taus[1], ContrastAll, false)
					assertClose(t, what+" contrast anchors = SupCon", per[:b*v], supPer, 1e-12)
					if v == 2 && m == 2 {
						per32, _ := runAnchors(t, tensor3f32(x), v, y, opts)
						assertClose(t, what+" float32", per32, wantPer, 1e-5)
					}
				}
			}
		}
	}
}

func TestSupConWithAnchorsGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	const b, v, m, d = 3, 2, 2, 3
	x := randUnit(rng, b, v+m, d)
	flat := flat3(x)
	naive := func(xs []float64, y []int) float64 {
		all := unflat3(xs, b, v+m, d)
		f, e := make([][][]float64, b), make([][][]float64, b)
		for i := range all {
			f[i], e[i] = all[i][:v], all[i][v:]
		}
		_, mean := naiveSupConAnchors(f, e, y, 0.3, 0.07)
		return mean
	}
	for _, y := range [][]int{nil, {0, 1, 0}} {
		opts := SupConOptions{Temperature: 0.3, BaseTemperature: 0.07}
		_, grad := gradOf(t, func(xx, yy *graph.Node) *graph.Node {
			f, e := splitViews(xx, v)
			return SupConWithAnchors(f, e, yy, opts)
		}, tensor3(x), y)
		const h = 1e-6
		for i := range flat {
			up, down := append([]float64(nil), flat...), append([]float64(nil), flat...)
			up[i] += h
			down[i] -= h
			fd := (naive(up, y) - naive(down, y)) / (2 * h)
			if math.Abs(fd-grad[i]) > 1e-6*(1+math.Abs(fd)) {
				t.Fatalf("labels=%v: d/dx[%d] = %.12g, finite difference %.12g", y, i, grad[i], fd)
			}
		}
	}
}

func TestSupConWithAnchorsErrors(t *testing.T) {
	cases := map[string]func(g *graph.Graph){
		"no extra": func(g *graph.Graph) {
			SupConWithAnchors(graph.Zeros(g, shapes.Make(dtypes.Float64, 2, 2, 3)), nil, nil, SupConOptions{Temperature: 0.1})
		},
		"mode one": func(g *graph.Graph) {
			SupConWithAnchors(graph.Zeros(g, shapes.Make(dtypes.Float64, 2, 2, 3)), graph.Zeros(g, shapes.Make(dtypes.Float64, 2, 1, 3)), nil,
				SupConOptions{Temperature: 0.1, Mode: ContrastOne})
		},
		"batch": func(g *graph.Graph) {
			SupConWithAnchors(graph.Zeros(g, shapes.Make(dtypes.Float64, 2, 2, 3)), graph.Zeros(g, shapes.Make(dtypes.Float64, 3, 1, 3)), nil, SupConOptions{Temperature: 0.1})
		},
		"width": func(g *graph.Graph) {
			SupConWithAnchors(graph.Zeros(g, shapes.Make(dtypes.Float64, 2, 2, 3)), graph.Zeros(g, shapes.Make(dtypes.Float64, 2, 1, 4)), nil, SupConOptions{Temperature: 0.1})
		},
		"one contrast point": func(g *graph.Graph) {
			SupConWithAnchors(graph.Zeros(g, shapes.Make(dtypes.Float64, 1, 1, 3)), graph.Zeros(g, shapes.Make(dtypes.Float64, 1, 1, 3)), nil, SupConOptions{Temperature: 0.1})
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			g := graph.NewGraph(testutil.Backend(), "anchors")
			build(g)
		})
	}
}

// Multi-crop bookkeeping of the contrastive methods: every crop passes the encoder once; the
// global crops give the two-crop views, each local crop one view, its last layer, marked AnchorOnly; the embeddings are the global views then the local ones; the loss is
// SupConWithAnchors over them (with the labels for supcon), and without local crops SupCon over the
// same views.
func TestCLRMultiCropViews(t *testing.T) {
	type view struct {
		crop, layer int
		src         ViewSource
		anchor      bool
		detached    bool
	}
	cases := []struct {
		method Method
		crops  Crops
		want   []view
	}{
		{MethodSimLWCLR, Crops{{2, 8, 0.4, 1}, {2, 4, 0.1, 0.4}, {1, 6, 0.2, 0.5}}, []view{
			{0, 2, SourceA, false, false}, {1, 1, SourceB, false, false}, {1, 2, SourceB, false, false},
			{2, 2, SourceB, true, false}, {3, 2, SourceB, true, false}, {4, 2, SourceB, true, false}}},
		{MethodSimCLR, Crops{{2, 8, 0.4, 1}, {3, 4, 0.1, 0.4}}, []view{
			{0, 2, SourceA, false, false}, {1, 2, SourceB, false, false},
			{2, 2, SourceB, true, false}, {3, 2, SourceB, true, false}, {4, 2, SourceB, true, false}}},
		{MethodSupCon, Crops{{2, 8, 0.4, 1}, {1, 4, 0.1, 0.4}}, []view{
			{0, 2, SourceA, false, false}, {1, 2, SourceB, false, false}, {2, 2, SourceB, true, false}}},
		{"lwsupcon", Crops{{2, 8, 0.4, 1}, {1, 4, 0.1, 0.4}}, []view{
			{0, 2, SourceA, false, false}, {1, 1, SourceB, false, false}, {1, 2, SourceB, false, false}, {2, 2, SourceB, true, false}}},
		{MethodLWCLR, Crops{{1, 8, 0.4, 1}, {2, 4, 0.1, 0.4}}, []view{
			{0, 2, SourceA, false, false}, {0, 1, SourceA, false, true},
			{1, 2, SourceA, true, false}, {2, 2, SourceA, true, false}}},
		{MethodSimLWCLR, Crops{{2, 8, 0.4, 1}}, []view{
			{0, 2, SourceA, false, false}, {1, 1, SourceB, false, false}, {1, 2, SourceB, false, false}}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s %s", c.method, c.crops), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(25, 26))
			images := randImages(rng, 5, c.crops.Views(), 8, 8, 2)
			labels := tensors.FromFlatDataAndDimensions([]int32{0, 1, 0, 2, 1}, 5)
			var calls []string
			enc := recordingEncoder([]int{4, 4, 4}, &calls)
			cfg := PretrainConfig{Method: c.method, Layers: backbone.LayerSelect{Last: 2}, Temperature: 0.2,
				Projector: HeadConfig{Layers: 2, Hidden: 6, Out: 4, Norm: NormBatch, Act: ActReLU, SkipLastNorm: true}}
			var views []View
			var embDims []int
			ctx := context.New()
			exec, err := context.NewExec(testutil.Backend(), ctx, func(ctx *context.Context, x, y *graph.Node) []*graph.Node {
				ctx.SetTraining(x.Graph(), true)
				global, locals := SplitCrops(x, c.crops)
				out := PretrainLossCrops(ctx, enc, cfg, global, locals, y)
				views, embDims = out.Views, out.Embeddings.Shape().Dimensions
				nGlobal := 0
				for _, v := range out.Views {
					if !v.AnchorOnly {
						nGlobal++
					}
				}
				var lbl *graph.Node
				if c.method.NeedsLabels() {
					lbl = y
				}
				opts := SupConOptions{Temperature: cfg.Temperature}
				var again *graph.Node
				if nGlobal == len(out.Views) {
					again = SupCon(out.Embeddings, lbl, opts)
				} else {
					f, e := splitViews(out.Embeddings, nGlobal)
					again = SupConWithAnchors(f, e, lbl, opts)
				}
				return []*graph.Node{out.Loss, again}
			})
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Exec(images, labels)
			if err != nil {
				t.Fatal(err)
			}
			loss, again := toF64(out[0])[0], toF64(out[1])[0]
			if !(loss > 0) || math.Abs(loss-again) > 1e-6 {
				t.Errorf("loss %v, SupCon(WithAnchors) over the returned embeddings %v", loss, again)
			}
			var wantCalls []string
			for _, g := range c.crops {
				for range g.Count {
					wantCalls = append(wantCalls, fmt.Sprintf("/encoder:%d", g.Size))
				}
			}
			if got := strings.Join(calls, " "); got != strings.Join(wantCalls, " ") {
				t.Errorf("encoder calls %q, want %q", got, strings.Join(wantCalls, " "))
			}
			if fmt.Sprint(embDims) != fmt.Sprintf("[5 %d 4]", len(c.want)) || len(views) != len(c.want) {
				t.Fatalf("embeddings %v and %d views, want [5 %d 4]", embDims, len(views), len(c.want))
			}
			for i, v := range views {
				got := view{v.Crop, v.Layer, v.Source, v.AnchorOnly, v.Detached}
				if got != c.want[i] {
					t.Errorf("view %d: %+v, want %+v", i, got, c.want[i])
				}
			}
		})
	}
}
