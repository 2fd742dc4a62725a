package ssl

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// lwsupconLoss builds a method's loss on the global crops [B, 2, H, W, C] and local crops
// [B, M, h, w, C] (nil: none) with the labels, on recordingEncoder's 3 layers of width 4, a linear
// projector to 3 and τ = 0.3, τ_b = 0.07, in ctx.
func lwsupconLoss(t *testing.T, ctx *context.Context, m Method, layers int, global, local, labels *tensors.Tensor) float64 {
	t.Helper()
	var calls []string
	cfg := PretrainConfig{Method: m, Layers: backbone.LayerSelect{Last: layers}, Temperature: 0.3, BaseTemperature: 0.07,
		Projector: HeadConfig{Layers: 1, Out: 3, Norm: NormNone}}
	exec, err := context.NewExec(testutil.Backend(), ctx, func(ctx *context.Context, in []*graph.Node) *graph.Node {
		ctx.SetTraining(in[0].Graph(), true)
		var locals []*graph.Node
		if len(in) > 2 {
			locals = in[2:]
		}
		return PretrainLossCrops(ctx, recordingEncoder([]int{4, 4, 4}, &calls), cfg, in[0], locals, in[1]).Loss
	})
	if err != nil {
		t.Fatal(err)
	}
	args := []any{global, labels}
	if local != nil {
		args = append(args, local)
	}
	out, err := exec.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return toF64(out[0])[0]
}

// lwsupcon against the float64 reference of its formula (naiveSupCon with labels over the views
// computed by hand from the variables; with local crops naiveSupConAnchors), and with last:1 equal
// to supcon on the same variables.
func TestLWSupConMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	const b, c = 6, 2
	global := randImages(rng, b, 2, 4, 4, c)
	local := randImages(rng, b, 2, 2, 2, c)
	labels := []int{0, 1, 0, 2, 1, 0}
	lbl := labelTensor(labels)
	for _, withLocal := range []bool{false, true} {
		ctx := context.New()
		var loc *tensors.Tensor
		if withLocal {
			loc = local
		}
		loss := lwsupconLoss(t, ctx, "lwsupcon", 2, global, loc, lbl)

		// z(x, l) = n(W_p·tanh(mean_hw(x)·W_l) + b_p) for image x [h·w·C] of crop side s.
		wp, bp := varValue(t, ctx, "/projector/fc_0", "weights"), varValue(t, ctx, "/projector/fc_0", "biases")
		z := func(pix []float64, side, l int) []float64 {
			w := varValue(t, ctx, "/encoder/layer_"+string(rune('0'+l)), "w") // [C, 4]
			mean := make([]float64, c)
			for p := range side * side {
				for ch := range c {
					mean[ch] += pix[p*c+ch] / float64(side*side)
				}
			}
			h := make([]float64, 4)
			for j := range h {
				for ch := range c {
					h[j] += mean[ch] * w[ch*4+j]
				}
				h[j] = math.Tanh(h[j])
			}
			out := make([]float64, 3)
			var norm float64
			for j := range out {
				out[j] = bp[j]
				for i := range h {
					out[j] += h[i] * wp[i*3+j]
				}
				norm += out[j] * out[j]
			}
			for j := range out {
				out[j] /= math.Sqrt(norm)
			}
			return out
		}
		gx, lx := toF64(global), toF64(local)
		crop := func(x []float64, s, v, side, views int) []float64 {
			n := side * side * c
			return x[(s*views+v)*n : (s*views+v+1)*n]
		}
		f, e := make([][][]float64, b), make([][][]float64, b)
		for s := range b {
			f[s] = [][]float64{z(crop(gx, s, 0, 4, 2), 4, 2), z(crop(gx, s, 1, 4, 2), 4, 1), z(crop(gx, s, 1, 4, 2), 4, 2)}
			for v := range 2 {
				e[s] = append(e[s], z(crop(lx, s, v, 2, 2), 2, 2))
			}
		}
		var want float64
		if withLocal {
			_, want = naiveSupConAnchors(f, e, labels, 0.3, 0.07)
		} else {
			_, want = naiveSupCon(f, labels, 0.3, 0.07, ContrastAll, false)
		}
		if math.Abs(loss-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Fatalf("local crops %v: loss %.12g, naive %.12g", withLocal, loss, want)
		}

		// last:1: the views are h_L(x^a), h_L(x^b), supcon's.
		one := lwsupconLoss(t, ctx.Reuse(), "lwsupcon", 1, global, loc, lbl)
		sup := lwsupconLoss(t, ctx.Reuse(), MethodSupCon, 1, global, loc, lbl)
		if one != sup || math.Abs(one-loss) < 1e-6 {
			t.Errorf("local crops %v: lwsupcon last:1 %v, supcon %v (want equal), last:2 %v (want different)", withLocal, one, sup, loss)
		}
	}
	if !Method("lwsupcon").NeedsLabels() || !Method("lwsupcon").MultiCrop() || Method("lwsupcon").Augmentations() != 2 {
		t.Errorf("lwsupcon: labels %v, multi-crop %v, %d augmentations", Method("lwsupcon").NeedsLabels(), Method("lwsupcon").MultiCrop(), Method("lwsupcon").Augmentations())
	}
}
