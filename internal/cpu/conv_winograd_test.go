package cpu

import (
	"math"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
)

// maxRelErr is the largest |got − want|/(1 + |want|), the measure of assertClose.
func maxRelErr(got, want []float64) float64 {
	worst := 0.0
	for i := range want {
		worst = max(worst, math.Abs(got[i]-want[i])/(1+math.Abs(want[i])))
	}
	return worst
}

// TestConvWinograd checks the float32 3×3 stride-1 convolutions that run with Winograd (the
// forward convolution, the input gradient, whose reversed kernel arrives with its channel axes
// swapped, and the kernel gradient, whose convolution reads the input with batch and channels
// exchanged) against the GEMM paths and the float64 definition, on random NHWC shapes: odd sizes,
// channel counts that are not multiples of 8, batch 1 to 3, symmetric and asymmetric padding of 0
// to 2; with F(2×2, 3×3) and F(3×3, 2×2), F(4×4, 3×3) and F(3×3, 4×4), and the default choice
// between them. The tolerance (of |error| ≤ tol·(1 + |want|)) is 2e-5 for the 2×2 tiles and the
// GEMMs, and 6e-5 with the 4×4 tiles (largest error measured: 3.0e-5), whose transforms round
// values up to 100 (input) and 225 (gradient) times larger than their inputs (see
// kernels/winograd4.go).
func TestConvWinograd(t *testing.T) {
	rng := newRng(71)
	worst := 0.0
	defer func() { t.Logf("largest error |got − want|/(1 + |want|): %.3g", worst) }()
	for ci := 0; ci < 10; ci++ {
		batch := 1 + rng.IntN(3)
		cin, cout := winogradMinChannels+rng.IntN(20), winogradMinChannels+rng.IntN(20)
		h, w := 2+rng.IntN(13), 2+rng.IntN(13)
		pads := [][2]int{{rng.IntN(3), rng.IntN(3)}, {rng.IntN(3), rng.IntN(3)}}
		if ci%2 == 0 {
			pads = [][2]int{{ci % 4 / 2, ci % 4 / 2}, {ci % 4 / 2, ci % 4 / 2}} // 0 or 1 each side
		}
		if h+pads[0][0]+pads[0][1] < 3 || w+pads[1][0]+pads[1][1] < 3 {
			pads = [][2]int{{1, 1}, {1, 1}}
		}
		c := convCase{in: []int{batch, h, w, cin}, kernel: []int{3, 3, cin, cout}, axes: nhwc, pads: pads}
		g := newConvGeom(convParams{axes: nhwc, strides: []int{1, 1}, inputDil: []int{1, 1}, kernelDil: []int{1, 1},
			paddings: pads, featureGroups: 1, batchGroups: 1}, c.in, c.kernel,
			[]int{batch, h + pads[0][0] + pads[0][1] - 2, w + pads[1][0] + pads[1][1] - 2, cout})
		if _, _, ok := winogradGeometry(g); !ok {
			t.Fatalf("case %d %+v: not recognised as a Winograd convolution", ci, c)
		}
		if !isFilterGradForm(kernelGradGeom(g)) {
			t.Fatalf("case %d %+v: kernel gradient not in the filter-gradient form", ci, c)
		}
		if _, _, ok := winogradGeometry(filterGradForward(kernelGradGeom(g), 1)); !ok {
			t.Fatalf("case %d %+v: kernel gradient not recognised as a Winograd convolution", ci, c)
		}
		// Forward and both gradients of sum(y·r) for a random r.
		fn := func(xs []*graph.Node) []*graph.Node {
			y := c.build(xs[:2])[0]
			loss := graph.ReduceAllSum(graph.Mul(y, xs[2]))
			grads := graph.Gradient(loss, xs[0], xs[1])
			return []*graph.Node{y, grads[0], grads[1]}
		}
		x := randTensor(rng, dtypes.Float32, c.in...)
		k := randTensor(rng, dtypes.Float32, c.kernel...)
		r := randTensor(rng, dtypes.Float32, g.outDims...)
		want64, _ := runGraph(t, testCPU(), fn, toF64Tensor(t, x), toF64Tensor(t, k), toF64Tensor(t, r))
		gemm, _ := runGraph(t, testCPUWith("winograd=off"), fn, x, k, r)
		for _, mode := range []string{"on", "f2", "f4"} {
			wino, _ := runGraph(t, testCPUWith("winograd="+mode), fn, x, k, r)
			for i, name := range []string{"output", "input gradient", "kernel gradient"} {
				tol := 2e-5
				if mode != "f2" {
					tol = 6e-5
				}
				worst = max(worst, maxRelErr(wino[i], want64[i]))
				assertClose(t, wino[i], want64[i], tol, "case %d %+v: %s winograd=%s vs float64", ci, c, name, mode)
				assertClose(t, wino[i], gemm[i], tol, "case %d %+v: %s winograd=%s vs GEMM", ci, c, name, mode)
			}
		}
	}
}

// kernelGradGeom is the convolution convGeneralVJP emits for the kernel gradient of the forward
// convolution g (NHWC, no dilations): x read as [C, H, W, N], the output gradient as the kernel
// [N, OH, OW, Cout], the result [KH, KW, C, Cout].
func kernelGradGeom(g convGeom) convGeom {
	ax := g.p.axes
	wAxes := backends.ConvolveAxesConfig{
		InputBatch: ax.InputChannels, InputChannels: ax.InputBatch, InputSpatial: ax.InputSpatial,
		KernelInputChannels: ax.OutputBatch, KernelOutputChannels: ax.OutputChannels, KernelSpatial: ax.OutputSpatial,
		OutputBatch: ax.KernelInputChannels, OutputChannels: ax.KernelOutputChannels, OutputSpatial: ax.KernelSpatial,
	}
	pads := make([][2]int, len(g.inSp))
	for a := range pads {
		pads[a] = [2]int{g.p.paddings[a][0], g.kSp[a] - 1 + g.outSp[a] - g.inSp[a] - g.p.paddings[a][0]}
	}
	p := convParams{axes: wAxes, strides: g.p.kernelDil, inputDil: ones(len(g.inSp)), kernelDil: g.p.strides,
		paddings: pads, featureGroups: 1, batchGroups: 1}
	return newConvGeom(p, g.inDims, g.outDims, g.kDims)
}

// TestWinogradGeometryRejects checks that convolutions Winograd does not compute keep their paths.
func TestWinogradGeometryRejects(t *testing.T) {
	base := convParams{axes: nhwc, strides: []int{1, 1}, inputDil: []int{1, 1}, kernelDil: []int{1, 1},
		paddings: [][2]int{{1, 1}, {1, 1}}, featureGroups: 1, batchGroups: 1}
	in, kernel, out := []int{2, 6, 6, 16}, []int{3, 3, 16, 16}, []int{2, 6, 6, 16}
	if _, _, ok := winogradGeometry(newConvGeom(base, in, kernel, out)); !ok {
		t.Fatal("3×3 stride-1 NHWC convolution not recognised")
	}
	strided := base
	strided.strides = []int{2, 1}
	dilated := base
	dilated.kernelDil = []int{1, 2}
	inDil := base
	inDil.inputDil = []int{2, 2}
	for _, r := range []struct {
		name            string
		p               convParams
		in, kernel, out []int
	}{
		{"stride 2", strided, in, kernel, []int{2, 3, 6, 16}},
		{"kernel dilation", dilated, in, kernel, []int{2, 6, 4, 16}},
		{"input dilation", inDil, in, kernel, []int{2, 11, 11, 16}},
		{"5×3 window", base, in, []int{5, 3, 16, 16}, []int{2, 4, 6, 16}},
		{"few input channels", base, []int{2, 6, 6, 3}, []int{3, 3, 3, 16}, out},
		{"few output channels", base, in, []int{3, 3, 16, 4}, []int{2, 6, 6, 4}},
	} {
		if _, _, ok := winogradGeometry(newConvGeom(r.p, r.in, r.kernel, r.out)); ok {
			t.Errorf("%s: recognised as a Winograd convolution", r.name)
		}
	}
}

// BenchmarkConvWinograd compares Winograd with the GEMM path on the resnet8x4 3×3 stride-1 layers
// (batch 64, "same" padding): the forward convolution alone, and with the input gradient (a
// second 3×3 convolution with the reversed kernel); winograd is the default choice, winograd-f2
// and winograd-f4 force F(2×2, 3×3) or F(4×4, 3×3). GFLOP/s counts the direct convolutions'
// 2·pixels·9·InC·OutC flops each, so the ratio of the two paths is the speed-up.
func BenchmarkConvWinograd(b *testing.B) {
	for _, l := range []struct {
		name          string
		hw, cin, cout int
	}{{"32x32x64to64", 32, 64, 64}, {"16x16x128to128", 16, 128, 128}, {"8x8x256to256", 8, 256, 256}, {"32x32x32to64", 32, 32, 64}} {
		for _, part := range []string{"forward", "forward+input_grad"} {
			for _, mode := range []string{"on", "f2", "f4", "off"} {
				name := l.name + "/" + part + "/" + map[string]string{"on": "winograd", "f2": "winograd-f2", "f4": "winograd-f4", "off": "gemm"}[mode]
				b.Run(name, func(b *testing.B) {
					rng := newRng(43)
					x := randTensor(rng, dtypes.Float32, 64, l.hw, l.hw, l.cin)
					k := randTensor(rng, dtypes.Float32, 3, 3, l.cin, l.cout)
					r := randTensor(rng, dtypes.Float32, 64, l.hw, l.hw, l.cout)
					flops := 2 * float64(64*l.hw*l.hw*9*l.cin*l.cout)
					if part != "forward" {
						flops *= 2
					}
					benchExec(b, testCPUWith("winograd="+mode), flops, "GFLOP/s", func(xs []*graph.Node) []*graph.Node {
						y := graph.Convolve(xs[0], xs[1]).PadSame().Done()
						if part == "forward" {
							return []*graph.Node{y}
						}
						dx := graph.Gradient(graph.ReduceAllSum(graph.Mul(y, xs[2])), xs[0])[0]
						return []*graph.Node{y, dx}
					}, x, k, r)
				})
			}
		}
	}
}
