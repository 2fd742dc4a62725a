package vit

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// naiveBicubic resizes one row x to out samples the way PyTorch's upsample_bicubic2d does for
// align_corners=False and a given output size: source s = (o + 0.5)·in/out − 0.5, coefficients
// cc2(t+1), cc1(t), cc1(1−t), cc2(2−t) on pixels ⌊s⌋−1 … ⌊s⌋+2 clamped to the border.
func naiveBicubic(x []float64, out int) []float64 {
	const a = -0.75
	cc1 := func(t float64) float64 { return ((a+2)*t-(a+3))*t*t + 1 }
	cc2 := func(t float64) float64 { return ((a*t-5*a)*t+8*a)*t - 4*a }
	in := len(x)
	y := make([]float64, out)
	for o := range out {
		if in == out {
			y[o] = x[o]
			continue
		}
		s := (float64(o)+0.5)*float64(in)/float64(out) - 0.5
		f := math.Floor(s)
		t := s - f
		w := []float64{cc2(t + 1), cc1(t), cc1(1 - t), cc2(2 - t)}
		for k, wk := range w {
			idx := min(max(int(f)+k-1, 0), in-1)
			y[o] += wk * x[idx]
		}
	}
	return y
}

func TestBicubicMatrix(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 9))
	for _, c := range [][2]int{{7, 4}, {7, 2}, {4, 7}, {7, 7}, {3, 1}, {8, 3}} {
		m := BicubicMatrix(c[0], c[1])
		x := make([]float64, c[0])
		for i := range x {
			x[i] = rng.NormFloat64()
		}
		want := naiveBicubic(x, c[1])
		for o, row := range m {
			var sum, y float64
			for i, w := range row {
				sum += w
				y += w * x[i]
			}
			if math.Abs(sum-1) > 1e-12 {
				t.Errorf("%d→%d: row %d sums to %g", c[0], c[1], o, sum)
			}
			if math.Abs(y-want[o]) > 1e-12 {
				t.Errorf("%d→%d: output %d = %g, reference %g", c[0], c[1], o, y, want[o])
			}
		}
	}
	// A hand value: 7 → 4, output 0 samples s = 0.375: weights on pixels 0 (clamped −1 and 0), 1, 2.
	t0 := 0.375
	w := []float64{cubicWeight(t0 + 1), cubicWeight(t0), cubicWeight(1 - t0), cubicWeight(2 - t0)}
	m := BicubicMatrix(7, 4)
	if math.Abs(m[0][0]-(w[0]+w[1])) > 1e-15 || math.Abs(m[0][1]-w[2]) > 1e-15 || math.Abs(m[0][2]-w[3]) > 1e-15 {
		t.Errorf("7→4 row 0 = %v, want [%g %g %g ...]", m[0], w[0]+w[1], w[2], w[3])
	}
}

// The table at the configuration's grid is unchanged; 7×7 → 4×4 (16-px crops at patch 4 of a
// 28-px configuration) equals M_h·grid·M_wᵀ per channel with the CLS slot kept.
func TestInterpolatePosEmbed(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 3))
	const d = 3
	pos := make([]float64, (1+49)*d)
	for i := range pos {
		pos[i] = rng.NormFloat64()
	}
	in := tensors.FromFlatDataAndDimensions(pos, 1+49, d)
	for _, g2 := range [][2]int{{7, 7}, {4, 4}, {2, 3}} {
		out := graph.MustExecOnce(testutil.Backend(), func(p *graph.Node) *graph.Node {
			return InterpolatePosEmbed(p, 7, 7, g2[0], g2[1])
		}, in)
		got := tensors.MustCopyFlatData[float64](out)
		if len(got) != (1+g2[0]*g2[1])*d {
			t.Fatalf("%v: %d values", g2, len(got))
		}
		mh, mw := BicubicMatrix(7, g2[0]), BicubicMatrix(7, g2[1])
		for k := range d {
			if got[k] != pos[k] {
				t.Errorf("%v: CLS slot changed", g2)
			}
		}
		for a := range g2[0] {
			for b := range g2[1] {
				for k := range d {
					var want float64
					for i := range 7 {
						for j := range 7 {
							want += mh[a][i] * mw[b][j] * pos[(1+i*7+j)*d+k]
						}
					}
					if v := got[(1+a*g2[1]+b)*d+k]; math.Abs(v-want) > 1e-12 {
						t.Errorf("%v: [%d,%d,%d] = %g, want %g", g2, a, b, k, v, want)
					}
				}
			}
		}
	}
}

// The ViT runs on local crops smaller than its configuration (patch multiples), with the position
// embeddings interpolated: the token count follows the crop, and gradient reaches every position
// embedding (bicubic weights span the grid).
func TestForwardOnSmallerCrops(t *testing.T) {
	cfg := Config{Name: "crop", Dim: 8, MLPDim: 16, Heads: 2, Depth: 2, Patch: 4, ImageHeight: 28, ImageWidth: 28,
		Channels: 1, LayerNormEps: 1e-6, Pooling: PoolMean}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.New()
	rng := rand.New(rand.NewPCG(4, 5))
	pix := func(n, s int) *tensors.Tensor {
		x := make([]float32, n*s*s)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return tensors.FromFlatDataAndDimensions(x, n, s, s, 1)
	}
	exec, err := context.NewExec(testutil.Backend(), ctx, func(ctx *context.Context, big, small *graph.Node) []*graph.Node {
		fb := m.Features(ctx, big)
		fs := m.Features(ctx.Reuse(), small)
		pos := ctx.GetVariableByScopeAndName(ctx.Scope(), VarPosEmbed)
		loss := graph.ReduceAllSum(graph.Square(fs.Pooled))
		gr := graph.Gradient(loss, pos.ValueGraph(big.Graph()))[0]
		// The smallest |gradient| over the patch slots.
		minAbs := graph.ReduceAllMin(graph.Abs(graph.Slice(gr, graph.AxisRange(1, 50))))
		return []*graph.Node{fb.Taps[0], fs.Taps[0], fs.Pooled, minAbs}
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(pix(2, 28), pix(3, 16))
	if err != nil {
		t.Fatal(err)
	}
	if got := outs[0].Shape(); !got.Equal(shapes.Make(dtypes.Float32, 2, 50, 8)) {
		t.Errorf("28-px taps %s, want [2, 50, 8]", got)
	}
	if got := outs[1].Shape(); !got.Equal(shapes.Make(dtypes.Float32, 3, 17, 8)) {
		t.Errorf("16-px taps %s, want [3, 17, 8] (4x4 patches + CLS)", got)
	}
	for _, v := range tensors.MustCopyFlatData[float32](outs[2]) {
		if math.IsNaN(float64(v)) {
			t.Fatal("NaN pooled vector")
		}
	}
	if g := tensors.ToScalar[float32](outs[3]); !(g > 0) {
		t.Errorf("a position embedding gets no gradient from the 16-px crops (min |g| = %g)", g)
	}
	// A size that is not a multiple of the patch is refused.
	bad, err := context.NewExec(testutil.Backend(), ctx.Reuse(), func(ctx *context.Context, x *graph.Node) *graph.Node {
		return m.Features(ctx, x).Pooled
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Exec(pix(1, 14)); err == nil {
		t.Error("14-px images with patch 4: no error")
	}
}
