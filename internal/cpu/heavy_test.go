package cpu

import (
	"reflect"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// dotRef is DotGeneral written from its definition with float64 index loops.
func dotRef(l []float64, ld []int, lc, lb []int, r []float64, rd []int, rc, rb []int) ([]float64, []int) {
	lx := crossAxes(len(ld), lc, lb)
	rx := crossAxes(len(rd), rc, rb)
	var outDims []int
	for _, a := range lb {
		outDims = append(outDims, ld[a])
	}
	for _, a := range lx {
		outDims = append(outDims, ld[a])
	}
	for _, a := range rx {
		outDims = append(outDims, rd[a])
	}
	var cDims []int
	for _, a := range lc {
		cDims = append(cDims, ld[a])
	}
	out := make([]float64, shapes.Make(dtypes.Float64, outDims...).Size())
	lStr, rStr := stridesOf(ld), stridesOf(rd)
	forEachIndex(outDims, func(o int, oi []int) {
		lOff, rOff := 0, 0
		for i, a := range lb {
			lOff += oi[i] * lStr[a]
			rOff += oi[i] * rStr[rb[i]]
		}
		for j, a := range lx {
			lOff += oi[len(lb)+j] * lStr[a]
		}
		for j, a := range rx {
			rOff += oi[len(lb)+len(lx)+j] * rStr[a]
		}
		sum := 0.0
		forEachIndex(cDims, func(_ int, ci []int) {
			lo, ro := lOff, rOff
			for k := range ci {
				lo += ci[k] * lStr[lc[k]]
				ro += ci[k] * rStr[rc[k]]
			}
			sum += l[lo] * r[ro]
		})
		out[o] = sum
	})
	return out, outDims
}

// forEachIndex calls fn for every multi-index over dims in row-major order.
func forEachIndex(dims []int, fn func(flat int, idx []int)) {
	n := 1
	for _, d := range dims {
		n *= d
	}
	idx := make([]int, len(dims))
	for f := 0; f < n; f++ {
		fn(f, idx)
		for a := len(dims) - 1; a >= 0; a-- {
			idx[a]++
			if idx[a] < dims[a] {
				break
			}
			idx[a] = 0
		}
	}
}

type dotCase struct {
	ld, lc, lb, rd, rc, rb []int
}

var dotCases = []dotCase{
	{ld: []int{5, 7}, lc: []int{1}, rd: []int{7, 3}, rc: []int{0}},                                               // plain
	{ld: []int{7, 5}, lc: []int{0}, rd: []int{3, 7}, rc: []int{1}},                                               // both transposed
	{ld: []int{2, 5, 4}, lc: []int{2}, lb: []int{0}, rd: []int{2, 4, 3}, rc: []int{1}, rb: []int{0}},             // batched
	{ld: []int{3, 2, 4, 5}, lc: []int{3, 0}, lb: []int{1}, rd: []int{5, 2, 6, 3}, rc: []int{0, 3}, rb: []int{1}}, // multi-contracting
	{ld: []int{4, 3, 2}, lc: []int{1}, lb: []int{2}, rd: []int{3, 6, 2, 5}, rc: []int{0}, rb: []int{2}},          // batch not leading
	{ld: []int{2, 3, 4}, lc: []int{2, 1}, rd: []int{4, 3}, rc: []int{0, 1}},                                      // contracting order swapped
	{ld: []int{65, 33}, lc: []int{1}, rd: []int{33, 17}, rc: []int{0}},                                           // odd sizes
}

func TestDotGeneral(t *testing.T) {
	rng := newRng(20)
	for ci, c := range dotCases {
		for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
			l := randTensor(rng, dt, c.ld...)
			r := randTensor(rng, dt, c.rd...)
			want, wantDims := dotRef(tensorFloats(t, l), c.ld, c.lc, c.lb, tensorFloats(t, r), c.rd, c.rc, c.rb)
			got, ss := runGraph(t, testCPU(), func(xs []*graph.Node) []*graph.Node {
				return []*graph.Node{graph.DotGeneral(xs[0], c.lc, c.lb, xs[1], c.rc, c.rb)}
			}, l, r)
			if !slices.Equal(ss[0].Dimensions, wantDims) {
				t.Fatalf("case %d: dims %v, want %v", ci, ss[0].Dimensions, wantDims)
			}
			tol := 1e-12
			if dt == dtypes.Float32 {
				tol = 1e-5
			}
			assertClose(t, got[0], want, tol, "case %d %s", ci, dt)
		}
	}
}

// TestDotGeneralVJP compares the registered DotGeneral gradient with GoMLX's own.
func TestDotGeneralVJP(t *testing.T) {
	rng := newRng(21)
	for ci, c := range dotCases {
		l := randTensor(rng, dtypes.Float64, c.ld...)
		r := randTensor(rng, dtypes.Float64, c.rd...)
		fn := func(xs []*graph.Node) []*graph.Node {
			loss := weightedSum(graph.DotGeneral(xs[0], c.lc, c.lb, xs[1], c.rc, c.rb))
			return graph.Gradient(loss, xs[0], xs[1])
		}
		got, _ := runGraph(t, testCPU(), fn, l, r)
		graph.VJPRegistration[graph.NodeTypeDotGeneral] = gomlxDotGeneralVJP
		want, _ := runGraph(t, testCPU(), fn, l, r)
		graph.VJPRegistration[graph.NodeTypeDotGeneral] = dotGeneralVJP
		assertClose(t, got[0], want[0], 1e-12, "case %d: d lhs", ci)
		assertClose(t, got[1], want[1], 1e-12, "case %d: d rhs", ci)
	}
}

// TestDotVJP compares the registered Dot gradient (graph.Dot, graph.MatMul of rank ≤ 2 operands)
// with GoMLX's own, and checks it against finite differences for a vector-matrix product (a form
// GoMLX's gradient does not cover).
func TestDotVJP(t *testing.T) {
	rng := newRng(22)
	defer func() { graph.VJPRegistration[graph.NodeTypeDot] = single(dotVJP) }()
	for ci, dims := range [][2][]int{{{7}, {7}}, {{5, 7}, {7}}, {{5, 7}, {7, 3}}, {{33, 65}, {65, 17}}} {
		l := randTensor(rng, dtypes.Float64, dims[0]...)
		r := randTensor(rng, dtypes.Float64, dims[1]...)
		fn := func(xs []*graph.Node) []*graph.Node {
			loss := weightedSum(graph.Dot(xs[0], xs[1]))
			return graph.Gradient(loss, xs[0], xs[1])
		}
		graph.VJPRegistration[graph.NodeTypeDot] = single(dotVJP)
		got, _ := runGraph(t, testCPU(), fn, l, r)
		graph.VJPRegistration[graph.NodeTypeDot] = gomlxDotVJP
		want, _ := runGraph(t, testCPU(), fn, l, r)
		assertClose(t, got[0], want[0], 1e-12, "case %d: d lhs", ci)
		assertClose(t, got[1], want[1], 1e-12, "case %d: d rhs", ci)
	}
	graph.VJPRegistration[graph.NodeTypeDot] = single(dotVJP)
	if reflect.ValueOf(gomlxDotVJP).Pointer() == reflect.ValueOf(graph.VJPRegistration[graph.NodeTypeDot]).Pointer() {
		t.Fatal("the oracle is the registered gradient itself")
	}
	m := randTensor(rng, dtypes.Float64, 4, 3)
	mc, _ := m.LocalClone()
	gradCheck(t, func(v *graph.Node) *graph.Node { return graph.Dot(v, graph.ConstCachedTensor(v.Graph(), mc)) },
		randTensor(rng, dtypes.Float64, 4), 1e-6)
}

// TestMaxMinVJP compares the registered Max and Min gradients with GoMLX's own, with ties and a
// scalar operand (ReLU's Max(x, 0)).
func TestMaxMinVJP(t *testing.T) {
	rng := newRng(23)
	defer func() {
		graph.VJPRegistration[graph.NodeTypeMax] = single(maxMinVJP)
		graph.VJPRegistration[graph.NodeTypeMin] = single(maxMinVJP)
	}()
	a := randTensor(rng, dtypes.Float64, 4, 5)
	b := randTensor(rng, dtypes.Float64, 4, 5)
	// Ties: make some elements equal, and some equal to zero.
	b.MutableFlatData(func(flat any) {
		bf := flat.([]float64)
		a.ConstFlatData(func(af any) {
			for i := 0; i < len(bf); i += 3 {
				bf[i] = af.([]float64)[i]
			}
		})
	})
	a.MutableFlatData(func(flat any) { flat.([]float64)[1] = 0 })
	for _, op := range []func(x, y *graph.Node) *graph.Node{graph.Max, graph.Min} {
		for _, scalar := range []bool{false, true} {
			fn := func(xs []*graph.Node) []*graph.Node {
				y := xs[1]
				if scalar {
					y = graph.Mul(graph.ReduceAllSum(y), graph.Const(y.Graph(), 0.0))
				}
				loss := weightedSum(graph.Add(op(xs[0], y), graph.MulScalar(op(y, xs[0]), 2)))
				return graph.Gradient(loss, xs[0], xs[1])
			}
			got, _ := runGraph(t, testCPU(), fn, a, b)
			graph.VJPRegistration[graph.NodeTypeMax], graph.VJPRegistration[graph.NodeTypeMin] = gomlxMaxVJP, gomlxMinVJP
			want, _ := runGraph(t, testCPU(), fn, a, b)
			graph.VJPRegistration[graph.NodeTypeMax] = single(maxMinVJP)
			graph.VJPRegistration[graph.NodeTypeMin] = single(maxMinVJP)
			assertClose(t, got[0], want[0], 1e-12, "scalar %v: d lhs", scalar)
			assertClose(t, got[1], want[1], 1e-12, "scalar %v: d rhs", scalar)
		}
	}
}

type convCase struct {
	in, kernel           []int
	axes                 backends.ConvolveAxesConfig
	strides, inDil, kDil []int
	pads                 [][2]int
	groups, batchGroups  int
}

var nhwc = backends.ConvolveAxesConfig{InputBatch: 0, InputChannels: 3, InputSpatial: []int{1, 2},
	KernelInputChannels: 2, KernelOutputChannels: 3, KernelSpatial: []int{0, 1},
	OutputBatch: 0, OutputChannels: 3, OutputSpatial: []int{1, 2}}

var convCases = []convCase{
	{in: []int{2, 7, 6, 3}, kernel: []int{3, 3, 3, 4}, axes: nhwc, pads: [][2]int{{1, 1}, {1, 1}}},
	{in: []int{2, 7, 6, 3}, kernel: []int{3, 2, 3, 5}, axes: nhwc, strides: []int{2, 3}, pads: [][2]int{{0, 2}, {1, 0}}},
	{in: []int{1, 5, 5, 4}, kernel: []int{1, 1, 4, 6}, axes: nhwc}, // pointwise
	{in: []int{2, 4, 5, 3}, kernel: []int{3, 3, 3, 2}, axes: nhwc, inDil: []int{2, 1}, kDil: []int{1, 2}, pads: [][2]int{{2, 2}, {2, 1}}},
	{in: []int{2, 6, 6, 4}, kernel: []int{3, 3, 2, 6}, axes: nhwc, pads: [][2]int{{1, 1}, {1, 1}}, groups: 2},
	{in: []int{4, 5, 5, 2}, kernel: []int{2, 2, 2, 6}, axes: nhwc, batchGroups: 2},
	// Channels-first input, kernel [O, I, H, W], output [B, H, W, C].
	{in: []int{2, 3, 6, 5}, kernel: []int{4, 3, 2, 3}, axes: backends.ConvolveAxesConfig{InputBatch: 0, InputChannels: 1,
		InputSpatial: []int{2, 3}, KernelInputChannels: 1, KernelOutputChannels: 0, KernelSpatial: []int{2, 3},
		OutputBatch: 0, OutputChannels: 3, OutputSpatial: []int{1, 2}}, strides: []int{1, 2}},
	// Kernel-gradient form: input [N, H, W, C] read with batch (C) last, "kernel" [N, OH, OW, Cout].
	{in: []int{2, 7, 6, 3}, kernel: []int{2, 3, 3, 4}, axes: backends.ConvolveAxesConfig{InputBatch: 3, InputChannels: 0,
		InputSpatial: []int{1, 2}, KernelInputChannels: 0, KernelOutputChannels: 3, KernelSpatial: []int{1, 2},
		OutputBatch: 2, OutputChannels: 3, OutputSpatial: []int{0, 1}}, strides: []int{1, 2}, kDil: []int{2, 1},
		pads: [][2]int{{1, 0}, {1, 1}}},
	{in: []int{2, 5, 5, 3}, kernel: []int{2, 3, 3, 4}, axes: backends.ConvolveAxesConfig{InputBatch: 3, InputChannels: 0,
		InputSpatial: []int{1, 2}, KernelInputChannels: 0, KernelOutputChannels: 3, KernelSpatial: []int{1, 2},
		OutputBatch: 0, OutputChannels: 1, OutputSpatial: []int{2, 3}}, pads: [][2]int{{1, 1}, {1, 1}}},
	// Input-dilated (col2im path): the input gradients of stride-2 3×3 and 1×1 convolutions (kernel
	// [KH, KW, O, I] as the gradient passes it), asymmetric and negative padding, 1-D and 3-D.
	{in: []int{2, 4, 4, 5}, kernel: []int{3, 3, 3, 5}, axes: backends.ConvolveAxesConfig{InputBatch: 0, InputChannels: 3,
		InputSpatial: []int{1, 2}, KernelInputChannels: 3, KernelOutputChannels: 2, KernelSpatial: []int{0, 1},
		OutputBatch: 0, OutputChannels: 3, OutputSpatial: []int{1, 2}}, inDil: []int{2, 2}, pads: [][2]int{{1, 2}, {1, 2}}},
	{in: []int{2, 4, 4, 5}, kernel: []int{1, 1, 3, 5}, axes: backends.ConvolveAxesConfig{InputBatch: 0, InputChannels: 3,
		InputSpatial: []int{1, 2}, KernelInputChannels: 3, KernelOutputChannels: 2, KernelSpatial: []int{0, 1},
		OutputBatch: 0, OutputChannels: 3, OutputSpatial: []int{1, 2}}, inDil: []int{2, 2}, pads: [][2]int{{0, 1}, {0, 1}}},
	{in: []int{1, 5, 4, 2}, kernel: []int{2, 2, 2, 3}, axes: nhwc, inDil: []int{3, 1}, kDil: []int{2, 1}, pads: [][2]int{{-1, 2}, {0, -1}}},
	{in: []int{2, 6, 3}, kernel: []int{3, 3, 4}, axes: backends.ConvolveAxesConfig{InputBatch: 0, InputChannels: 2,
		InputSpatial: []int{1}, KernelInputChannels: 1, KernelOutputChannels: 2, KernelSpatial: []int{0},
		OutputBatch: 0, OutputChannels: 2, OutputSpatial: []int{1}}, inDil: []int{2}, pads: [][2]int{{2, 1}}},
	{in: []int{1, 3, 2, 3, 2}, kernel: []int{2, 2, 3, 2, 3}, axes: backends.ConvolveAxesConfig{InputBatch: 0, InputChannels: 4,
		InputSpatial: []int{1, 2, 3}, KernelInputChannels: 3, KernelOutputChannels: 4, KernelSpatial: []int{0, 1, 2},
		OutputBatch: 0, OutputChannels: 4, OutputSpatial: []int{1, 2, 3}}, inDil: []int{2, 3, 1}, pads: [][2]int{{1, 1}, {1, 0}, {0, 2}}},
	// 1-D and 3-D.
	{in: []int{3, 9, 2}, kernel: []int{4, 2, 3}, axes: backends.ConvolveAxesConfig{InputBatch: 0, InputChannels: 2,
		InputSpatial: []int{1}, KernelInputChannels: 1, KernelOutputChannels: 2, KernelSpatial: []int{0},
		OutputBatch: 0, OutputChannels: 2, OutputSpatial: []int{1}}, pads: [][2]int{{2, 1}}},
	{in: []int{1, 4, 3, 5, 2}, kernel: []int{2, 2, 3, 2, 3}, axes: backends.ConvolveAxesConfig{InputBatch: 0, InputChannels: 4,
		InputSpatial: []int{1, 2, 3}, KernelInputChannels: 3, KernelOutputChannels: 4, KernelSpatial: []int{0, 1, 2},
		OutputBatch: 0, OutputChannels: 4, OutputSpatial: []int{1, 2, 3}}},
}

func (c convCase) build(xs []*graph.Node) []*graph.Node {
	sd := len(c.in) - 2
	// Explicit values: simplego fails on nil dilations.
	return []*graph.Node{graph.ConvGeneral(xs[0], xs[1], c.axes, orOnes(c.strides, sd), orZeroPads(c.pads, sd),
		orOnes(c.inDil, sd), orOnes(c.kDil, sd),
		max(1, c.groups), max(1, c.batchGroups))}
}

// TestConvFastVsNaive checks the GEMM path against the direct definition, and both against
// simplego.
func TestConvFastVsNaive(t *testing.T) {
	rng := newRng(22)
	for ci, c := range convCases {
		x := randTensor(rng, dtypes.Float64, c.in...)
		k := randTensor(rng, dtypes.Float64, c.kernel...)
		got, ss := runGraph(t, testCPU(), c.build, x, k)
		sd := len(c.in) - 2
		p := convParams{axes: c.axes, strides: orOnes(c.strides, sd), inputDil: orOnes(c.inDil, sd), kernelDil: orOnes(c.kDil, sd),
			paddings: orZeroPads(c.pads, sd), featureGroups: max(1, c.groups), batchGroups: max(1, c.batchGroups)}
		g := newConvGeom(p, c.in, c.kernel, ss[0].Dimensions)
		want := make([]float64, ss[0].Size())
		convNaive(g, want, tensorFloats(t, x), tensorFloats(t, k))
		assertClose(t, got[0], want, 1e-12, "case %d vs naive", ci)
		if c.batchGroups <= 1 {
			// The fast path must agree with the naive one for float32 too.
			x32 := randTensor(rng, dtypes.Float32, c.in...)
			k32 := randTensor(rng, dtypes.Float32, c.kernel...)
			got32, _ := runGraph(t, testCPU(), c.build, x32, k32)
			want32 := make([]float64, ss[0].Size())
			convNaive(g, want32, tensorFloats(t, x32), tensorFloats(t, k32))
			assertClose(t, got32[0], want32, 1e-5, "case %d float32 vs naive", ci)
		}
		if c.inDil == nil && c.batchGroups <= 1 { // simplego crashes on batch groups
			compareBackends(t, 1e-12, c.build, x, k)
		}
	}
}

// TestConvDirectReference checks the naive definition itself on a hand-written NHWC loop.
func TestConvDirectReference(t *testing.T) {
	rng := newRng(23)
	x := randTensor(rng, dtypes.Float64, 2, 5, 4, 3)
	k := randTensor(rng, dtypes.Float64, 3, 3, 3, 2)
	xf, kf := tensorFloats(t, x), tensorFloats(t, k)
	got, _ := runGraph(t, testCPU(), func(xs []*graph.Node) []*graph.Node {
		return []*graph.Node{graph.Convolve(xs[0], xs[1]).Strides(2).PaddingPerDim([][2]int{{1, 1}, {0, 1}}).Done()}
	}, x, k)
	// Output 3×2.
	var want []float64
	for b := 0; b < 2; b++ {
		for oh := 0; oh < 3; oh++ {
			for ow := 0; ow < 2; ow++ {
				for o := 0; o < 2; o++ {
					s := 0.0
					for kh := 0; kh < 3; kh++ {
						for kw := 0; kw < 3; kw++ {
							ih, iw := oh*2-1+kh, ow*2+kw
							if ih < 0 || ih >= 5 || iw < 0 || iw >= 4 {
								continue
							}
							for c := 0; c < 3; c++ {
								s += xf[((b*5+ih)*4+iw)*3+c] * kf[((kh*3+kw)*3+c)*2+o]
							}
						}
					}
					want = append(want, s)
				}
			}
		}
	}
	assertClose(t, got[0], want, 1e-12, "conv")
}

func TestReduceWindowVsSimpleGo(t *testing.T) {
	rng := newRng(24)
	x := randTensor(rng, dtypes.Float32, 2, 7, 6, 3)
	compareBackends(t, 1e-6, func(xs []*graph.Node) []*graph.Node {
		x := xs[0]
		return []*graph.Node{
			graph.MaxPool(x).Window(2).Done(),
			graph.MaxPool(x).Window(3).Strides(2).PadSame().Done(),
			graph.MeanPool(x).Window(3).Strides(1).Done(),
			graph.MinPool(x).WindowPerAxis(2, 3).StridePerAxis(1, 2).Done(),
			graph.BackendReduceWindow(x, backends.ReduceOpSum, []int{1, 2, 2, 2}, []int{1, 1, 2, 1}, nil, nil,
				[][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}}),
		}
	}, x)
	// Dilations, against a direct loop: window 2 over a base-dilated (×2) axis with window dilation 2.
	v := tensors.FromValue([]float64{1, 2, 3, 4, 5})
	got, _ := runGraph(t, testCPU(), func(xs []*graph.Node) []*graph.Node {
		return []*graph.Node{graph.BackendReduceWindow(xs[0], backends.ReduceOpSum, []int{2}, []int{1}, []int{2}, []int{2},
			[][2]int{{1, 1}})}
	}, v)
	// Dilated, padded input: [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0]; windows {i, i+2}.
	assertClose(t, got[0], []float64{0, 3, 0, 5, 0, 7, 0, 9, 0}, 0, "dilated window")
}

func TestBatchNormOps(t *testing.T) {
	rng := newRng(25)
	x := randTensor(rng, dtypes.Float64, 4, 3, 5)
	scale := randTensor(rng, dtypes.Float64, 3)
	offset := randTensor(rng, dtypes.Float64, 3)
	gout := randTensor(rng, dtypes.Float64, 4, 3, 5)
	got, _ := runGraph(t, testCPU(), func(xs []*graph.Node) []*graph.Node {
		n, m, v := graph.InternalBatchNormForTraining(xs[0], xs[1], xs[2], 1e-3, 1)
		inf := graph.InternalBatchNormForInference(xs[0], xs[1], xs[2], m, v, 1e-3, 1)
		return []*graph.Node{n, m, v, inf}
	}, x, scale, offset)
	// Reference from the formula.
	xf := tensorFloats(t, x)
	sf, of := tensorFloats(t, scale), tensorFloats(t, offset)
	for c := 0; c < 3; c++ {
		mean, sq := 0.0, 0.0
		for b := 0; b < 4; b++ {
			for i := 0; i < 5; i++ {
				mean += xf[(b*3+c)*5+i] / 20
			}
		}
		for b := 0; b < 4; b++ {
			for i := 0; i < 5; i++ {
				d := xf[(b*3+c)*5+i] - mean
				sq += d * d / 20
			}
		}
		assertClose(t, got[1][c:c+1], []float64{mean}, 1e-12, "mean %d", c)
		assertClose(t, got[2][c:c+1], []float64{sq}, 1e-12, "variance %d", c)
		y := (xf[(1*3+c)*5+2]-mean)/sqrtF(sq+1e-3)*sf[c] + of[c]
		assertClose(t, got[0][(1*3+c)*5+2:(1*3+c)*5+3], []float64{y}, 1e-8, "normalized %d", c)
	}
	// Gradient op: against the gradient of the composed formula.
	gradOp, _ := runGraph(t, testCPU(), func(xs []*graph.Node) []*graph.Node {
		_, m, v := graph.InternalBatchNormForTraining(xs[0], xs[1], xs[2], 1e-3, 1)
		gx, gs, gb := graph.InternalBatchNormGradient(xs[0], xs[1], m, v, xs[3], 1e-3, 1)
		return []*graph.Node{gx, gs, gb}
	}, x, scale, offset, gout)
	composed, _ := runGraph(t, testCPU(), func(xs []*graph.Node) []*graph.Node {
		x, s, b := xs[0], xs[1], xs[2]
		mean := graph.ReduceAndKeep(x, graph.ReduceMean, 0, 2)
		c := graph.Sub(x, mean)
		v := graph.ReduceAndKeep(graph.Square(c), graph.ReduceMean, 0, 2)
		y := graph.Add(graph.Mul(graph.Div(c, graph.Sqrt(graph.AddScalar(v, 1e-3))), graph.Reshape(s, 1, 3, 1)), graph.Reshape(b, 1, 3, 1))
		loss := graph.ReduceAllSum(graph.Mul(y, xs[3]))
		return graph.Gradient(loss, x, s, b)
	}, x, scale, offset, gout)
	for i := range 3 {
		assertClose(t, gradOp[i], composed[i], 1e-9, "batch norm gradient output %d", i)
	}
}
