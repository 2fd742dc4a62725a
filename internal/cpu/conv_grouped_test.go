package cpu

import (
	"fmt"
	"math"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// groupedCase is a 2-D convolution with channel groups: x [N, H, W, C] (or [N, C, H, W] when
// channelsFirst), kernel [KH, KW, C/groups, Cout] (or [Cout, C/groups, KH, KW]).
type groupedCase struct {
	n, h, w, c, cout, groups int
	kh, kw                   int
	stride, dil              [2]int
	pads                     [2][2]int
	channelsFirst            bool
}

func (c groupedCase) String() string {
	layout := "NHWC"
	if c.channelsFirst {
		layout = "NCHW"
	}
	return fmt.Sprintf("%s_n%d_%dx%dx%d_to%d_g%d_k%dx%d_s%v_d%v_p%v", layout, c.n, c.h, c.w, c.c, c.cout, c.groups,
		c.kh, c.kw, c.stride, c.dil, c.pads)
}

func (c groupedCase) outSize() (int, int) {
	o := func(i, k, s, d int, p [2]int) int { return (i+p[0]+p[1]-d*(k-1)-1)/s + 1 }
	return o(c.h, c.kh, c.stride[0], c.dil[0], c.pads[0]), o(c.w, c.kw, c.stride[1], c.dil[1], c.pads[1])
}

// groupedRef computes from the definition, in float64, the output y [N, OH, OW, Cout] of the
// grouped convolution and the gradients dx [N, H, W, C] and dw [KH, KW, C/G, Cout] of Σ y ⊙ r.
func groupedRef(c groupedCase, x, w, r []float64) (y, dx, dw []float64) {
	oh, ow := c.outSize()
	cinG, coutG := c.c/c.groups, c.cout/c.groups
	y = make([]float64, c.n*oh*ow*c.cout)
	dx = make([]float64, len(x))
	dw = make([]float64, len(w))
	for n := 0; n < c.n; n++ {
		for i := 0; i < oh; i++ {
			for j := 0; j < ow; j++ {
				for co := 0; co < c.cout; co++ {
					g := co / coutG
					yi := ((n*oh+i)*ow+j)*c.cout + co
					for ki := 0; ki < c.kh; ki++ {
						for kj := 0; kj < c.kw; kj++ {
							hi := i*c.stride[0] - c.pads[0][0] + ki*c.dil[0]
							wj := j*c.stride[1] - c.pads[1][0] + kj*c.dil[1]
							if hi < 0 || hi >= c.h || wj < 0 || wj >= c.w {
								continue
							}
							for ci := 0; ci < cinG; ci++ {
								xi := ((n*c.h+hi)*c.w+wj)*c.c + g*cinG + ci
								wi := ((ki*c.kw+kj)*cinG+ci)*c.cout + co
								y[yi] += x[xi] * w[wi]
								dx[xi] += r[yi] * w[wi]
								dw[wi] += r[yi] * x[xi]
							}
						}
					}
				}
			}
		}
	}
	return y, dx, dw
}

// permute returns the [d0, d1, d2, d3] array a with its axes reordered: out axis i is a's axis p[i].
func permute(a []float64, dims [4]int, p [4]int) []float64 {
	out := make([]float64, len(a))
	var od [4]int
	for i := range od {
		od[i] = dims[p[i]]
	}
	var idx [4]int
	for i0 := 0; i0 < od[0]; i0++ {
		for i1 := 0; i1 < od[1]; i1++ {
			for i2 := 0; i2 < od[2]; i2++ {
				for i3 := 0; i3 < od[3]; i3++ {
					o := [4]int{i0, i1, i2, i3}
					for i := range o {
						idx[p[i]] = o[i]
					}
					src := ((idx[0]*dims[1]+idx[1])*dims[2]+idx[2])*dims[3] + idx[3]
					out[((i0*od[1]+i1)*od[2]+i2)*od[3]+i3] = a[src]
				}
			}
		}
	}
	return out
}

// groupedGraph returns y, dx and dw of Σ conv(x, w) ⊙ r for case c (in c's layout).
func groupedGraph(c groupedCase) func(xs []*graph.Node) []*graph.Node {
	return func(xs []*graph.Node) []*graph.Node {
		axes := backends.ConvolveAxesConfig{InputBatch: 0, InputChannels: 3, InputSpatial: []int{1, 2},
			KernelSpatial: []int{0, 1}, KernelInputChannels: 2, KernelOutputChannels: 3,
			OutputBatch: 0, OutputChannels: 3, OutputSpatial: []int{1, 2}}
		if c.channelsFirst {
			axes = backends.ConvolveAxesConfig{InputBatch: 0, InputChannels: 1, InputSpatial: []int{2, 3},
				KernelOutputChannels: 0, KernelInputChannels: 1, KernelSpatial: []int{2, 3},
				OutputBatch: 0, OutputChannels: 1, OutputSpatial: []int{2, 3}}
		}
		y := graph.ConvGeneral(xs[0], xs[1], axes, c.stride[:], [][2]int{c.pads[0], c.pads[1]}, nil, c.dil[:], c.groups, 1)
		grads := graph.Gradient(graph.ReduceAllSum(graph.Mul(y, xs[2])), xs[0], xs[1])
		return []*graph.Node{y, grads[0], grads[1]}
	}
}

var groupedCases = []groupedCase{
	// Depthwise, 3×3, stride 1 and 2, asymmetric padding, non-square images.
	{n: 2, h: 7, w: 5, c: 6, cout: 6, groups: 6, kh: 3, kw: 3, stride: [2]int{1, 1}, dil: [2]int{1, 1}, pads: [2][2]int{{1, 1}, {1, 1}}},
	{n: 3, h: 8, w: 7, c: 5, cout: 5, groups: 5, kh: 3, kw: 3, stride: [2]int{2, 2}, dil: [2]int{1, 1}, pads: [2][2]int{{1, 1}, {0, 1}}},
	// Depthwise with two output channels per group, kernel dilation, and 1×1 depthwise stride 2.
	{n: 2, h: 9, w: 6, c: 4, cout: 8, groups: 4, kh: 3, kw: 2, stride: [2]int{2, 1}, dil: [2]int{2, 1}, pads: [2][2]int{{2, 1}, {1, 0}}},
	{n: 2, h: 5, w: 6, c: 3, cout: 3, groups: 3, kh: 1, kw: 1, stride: [2]int{2, 2}, dil: [2]int{1, 1}},
	// Groups of several channels: 2, 3 and 4 groups.
	{n: 3, h: 5, w: 6, c: 6, cout: 4, groups: 2, kh: 3, kw: 3, stride: [2]int{1, 1}, dil: [2]int{1, 1}, pads: [2][2]int{{1, 1}, {1, 1}}},
	{n: 2, h: 6, w: 5, c: 6, cout: 12, groups: 3, kh: 1, kw: 1, stride: [2]int{2, 2}, dil: [2]int{1, 1}},
	{n: 2, h: 7, w: 8, c: 8, cout: 12, groups: 4, kh: 2, kw: 3, stride: [2]int{2, 1}, dil: [2]int{1, 2}, pads: [2][2]int{{1, 0}, {1, 1}}},
	{n: 2, h: 6, w: 6, c: 9, cout: 6, groups: 3, kh: 3, kw: 3, stride: [2]int{2, 2}, dil: [2]int{1, 1}, pads: [2][2]int{{1, 1}, {1, 1}}},
	// Channels-first layouts.
	{n: 2, h: 6, w: 5, c: 4, cout: 4, groups: 4, kh: 3, kw: 3, stride: [2]int{2, 2}, dil: [2]int{1, 1}, pads: [2][2]int{{1, 1}, {1, 1}}, channelsFirst: true},
	{n: 2, h: 5, w: 7, c: 6, cout: 9, groups: 3, kh: 3, kw: 2, stride: [2]int{1, 2}, dil: [2]int{1, 1}, pads: [2][2]int{{1, 1}, {0, 1}}, channelsFirst: true},
}

// TestGroupedConvGradientsMatchReference: the forward of grouped and depthwise convolutions and
// both gradients (input and kernel), in float64 and float32, against the definition in float64.
func TestGroupedConvGradientsMatchReference(t *testing.T) {
	for _, c := range groupedCases {
		for _, dt := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
			t.Run(c.String()+"_"+dt.String(), func(t *testing.T) {
				rng := newRng(91)
				oh, ow := c.outSize()
				xt := randTensor(rng, dt, c.n, c.h, c.w, c.c)
				wt := randTensor(rng, dt, c.kh, c.kw, c.c/c.groups, c.cout)
				rt := randTensor(rng, dt, c.n, oh, ow, c.cout)
				x, w, r := tensorFloats(t, xt), tensorFloats(t, wt), tensorFloats(t, rt)
				wantY, wantDX, wantDW := groupedRef(c, x, w, r)
				xDims, wDims, yDims := [4]int{c.n, c.h, c.w, c.c}, [4]int{c.kh, c.kw, c.c / c.groups, c.cout}, [4]int{c.n, oh, ow, c.cout}
				in := []*tensors.Tensor{xt, wt, rt}
				if c.channelsFirst {
					toNCHW, toOIHW := [4]int{0, 3, 1, 2}, [4]int{3, 2, 0, 1}
					in = []*tensors.Tensor{
						floatTensor(dt, permute(x, xDims, toNCHW), c.n, c.c, c.h, c.w),
						floatTensor(dt, permute(w, wDims, toOIHW), c.cout, c.c/c.groups, c.kh, c.kw),
						floatTensor(dt, permute(r, yDims, toNCHW), c.n, c.cout, oh, ow)}
				}
				exec, err := graph.NewExec(testCPU(), groupedGraph(c))
				if err != nil {
					t.Fatal(err)
				}
				defer exec.Finalize()
				outs, err := exec.Exec(in[0], in[1], in[2])
				if err != nil {
					t.Fatal(err)
				}
				got := [3][]float64{tensorFloats(t, outs[0]), tensorFloats(t, outs[1]), tensorFloats(t, outs[2])}
				if c.channelsFirst {
					fromNCHW, fromOIHW := [4]int{0, 2, 3, 1}, [4]int{2, 3, 1, 0}
					got[0] = permute(got[0], [4]int{c.n, c.cout, oh, ow}, fromNCHW)
					got[1] = permute(got[1], [4]int{c.n, c.c, c.h, c.w}, fromNCHW)
					got[2] = permute(got[2], [4]int{c.cout, c.c / c.groups, c.kh, c.kw}, fromOIHW)
				}
				tol := 1e-12
				if dt == dtypes.Float32 {
					tol = 2e-5
				}
				for i, want := range [3][]float64{wantY, wantDX, wantDW} {
					name := [3]string{"output", "input gradient", "kernel gradient"}[i]
					if len(got[i]) != len(want) {
						t.Fatalf("%s: %d elements, want %d", name, len(got[i]), len(want))
					}
					scale := 0.0
					for _, v := range want {
						scale = math.Max(scale, math.Abs(v))
					}
					for j := range want {
						if math.Abs(got[i][j]-want[j]) > tol*(1+scale) {
							t.Fatalf("%s element %d: %.9g, the definition gives %.9g", name, j, got[i][j], want[j])
						}
					}
				}
			})
		}
	}
}

// TestGroupedConvKernelGradPerGroup: the kernel gradient computed one group at a time (the form
// other backends get for groups of several input channels) matches the definition, and the
// graph then has one kernel-gradient convolution per group.
func TestGroupedConvKernelGradPerGroup(t *testing.T) {
	defer func(f func(*graph.Graph) bool) { kernelGradPerGroup = f }(kernelGradPerGroup)
	kernelGradPerGroup = func(*graph.Graph) bool { return true }
	for _, c := range groupedCases {
		if c.c == c.groups {
			continue // depthwise: batch groups on every backend
		}
		t.Run(c.String(), func(t *testing.T) {
			rng := newRng(92)
			oh, ow := c.outSize()
			xt := randTensor(rng, dtypes.Float64, c.n, c.h, c.w, c.c)
			wt := randTensor(rng, dtypes.Float64, c.kh, c.kw, c.c/c.groups, c.cout)
			rt := randTensor(rng, dtypes.Float64, c.n, oh, ow, c.cout)
			x, w, r := tensorFloats(t, xt), tensorFloats(t, wt), tensorFloats(t, rt)
			_, _, wantDW := groupedRef(c, x, w, r)
			in := []*tensors.Tensor{xt, wt, rt}
			if c.channelsFirst {
				in = []*tensors.Tensor{
					floatTensor(dtypes.Float64, permute(x, [4]int{c.n, c.h, c.w, c.c}, [4]int{0, 3, 1, 2}), c.n, c.c, c.h, c.w),
					floatTensor(dtypes.Float64, permute(w, [4]int{c.kh, c.kw, c.c / c.groups, c.cout}, [4]int{3, 2, 0, 1}),
						c.cout, c.c/c.groups, c.kh, c.kw),
					floatTensor(dtypes.Float64, permute(r, [4]int{c.n, oh, ow, c.cout}, [4]int{0, 3, 1, 2}), c.n, c.cout, oh, ow)}
			}
			convs := 0
			got, _ := runGraph(t, testCPU(), func(xs []*graph.Node) []*graph.Node {
				outs := groupedGraph(c)(xs)
				for _, n := range xs[0].Graph().Nodes() {
					if n.Type() == graph.NodeTypeConvGeneral {
						convs++
					}
				}
				return outs[2:]
			}, in...)
			dw := got[0]
			if c.channelsFirst {
				dw = permute(dw, [4]int{c.cout, c.c / c.groups, c.kh, c.kw}, [4]int{2, 3, 1, 0})
			}
			assertClose(t, dw, wantDW, 1e-12, "kernel gradient")
			if convs != 2+c.groups {
				t.Errorf("%d convolutions, want the forward, the input gradient and %d kernel gradients", convs, c.groups)
			}
		})
	}
}

// floatTensor returns a tensor of dtype (float32 or float64) with the values v.
func floatTensor(dt dtypes.DType, v []float64, dims ...int) *tensors.Tensor {
	if dt == dtypes.Float64 {
		return tensors.FromFlatDataAndDimensions(v, dims...)
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return tensors.FromFlatDataAndDimensions(f, dims...)
}

// TestGroupedConvGradientOpCount: the gradient of a grouped convolution is one convolution for the
// input and one for the kernel whatever the number of groups, with no per-group slices.
func TestGroupedConvGradientOpCount(t *testing.T) {
	for _, groups := range []int{1, 4, 16} {
		c := groupedCase{n: 2, h: 8, w: 8, c: 16, cout: 16, groups: groups, kh: 3, kw: 3, stride: [2]int{2, 2},
			dil: [2]int{1, 1}, pads: [2][2]int{{1, 1}, {1, 1}}}
		g := graph.NewGraph(testCPU(), "grouped")
		oh, ow := c.outSize()
		x := graph.Parameter(g, "x", shapes.Make(dtypes.Float32, c.n, c.h, c.w, c.c))
		w := graph.Parameter(g, "w", shapes.Make(dtypes.Float32, c.kh, c.kw, c.c/c.groups, c.cout))
		r := graph.Parameter(g, "r", shapes.Make(dtypes.Float32, c.n, oh, ow, c.cout))
		groupedGraph(c)([]*graph.Node{x, w, r})
		counts := map[graph.NodeType]int{}
		for _, n := range g.Nodes() {
			counts[n.Type()]++
		}
		if counts[graph.NodeTypeConvGeneral] != 3 || counts[graph.NodeTypeSlice] != 0 || counts[graph.NodeTypeConcatenate] != 0 {
			t.Errorf("%d groups: %d ConvGeneral, %d Slice, %d Concatenate nodes; want 3, 0, 0", groups,
				counts[graph.NodeTypeConvGeneral], counts[graph.NodeTypeSlice], counts[graph.NodeTypeConcatenate])
		}
		g.Finalize()
	}
}

// TestGroupedConvSameBitsAnyProcs: the depthwise and grouped forward and both gradients give the
// same float32 bits for GOMAXPROCS 1, 2, 3 and 5.
func TestGroupedConvSameBitsAnyProcs(t *testing.T) {
	for _, c := range []groupedCase{
		{n: 16, h: 16, w: 16, c: 116, cout: 116, groups: 116, kh: 3, kw: 3, stride: [2]int{2, 2}, dil: [2]int{1, 1}, pads: [2][2]int{{1, 1}, {1, 1}}},
		{n: 16, h: 8, w: 8, c: 58, cout: 58, groups: 58, kh: 3, kw: 3, stride: [2]int{1, 1}, dil: [2]int{1, 1}, pads: [2][2]int{{1, 1}, {1, 1}}},
		{n: 16, h: 8, w: 8, c: 48, cout: 60, groups: 3, kh: 1, kw: 1, stride: [2]int{1, 1}, dil: [2]int{1, 1}},
	} {
		rng := newRng(93)
		oh, ow := c.outSize()
		xt := randTensor(rng, dtypes.Float32, c.n, c.h, c.w, c.c)
		wt := randTensor(rng, dtypes.Float32, c.kh, c.kw, c.c/c.groups, c.cout)
		rt := randTensor(rng, dtypes.Float32, c.n, oh, ow, c.cout)
		exec, err := graph.NewExec(testCPU(), groupedGraph(c))
		if err != nil {
			t.Fatal(err)
		}
		acrossProcs(t, c.String(), func() []float32 {
			outs, err := exec.Exec(xt, wt, rt)
			if err != nil {
				t.Fatal(err)
			}
			var all []float32
			for _, o := range outs {
				o.ConstFlatData(func(flat any) { all = append(all, flat.([]float32)...) })
			}
			return all
		})
		exec.Finalize()
	}
}

// TestDepthwiseSameBitsEveryPath: the depthwise forward and both gradients give the same float32
// bits on every kernel path (the 8-lane rows add the same rounded products as the portable loop),
// with channel counts that leave partial blocks of 8.
func TestDepthwiseSameBitsEveryPath(t *testing.T) {
	for _, c := range []groupedCase{
		{n: 4, h: 9, w: 7, c: 58, cout: 58, groups: 58, kh: 3, kw: 3, stride: [2]int{2, 2}, dil: [2]int{1, 1}, pads: [2][2]int{{1, 1}, {1, 1}}},
		{n: 3, h: 6, w: 6, c: 21, cout: 21, groups: 21, kh: 3, kw: 3, stride: [2]int{1, 1}, dil: [2]int{1, 1}, pads: [2][2]int{{1, 1}, {1, 1}}},
	} {
		rng := newRng(96)
		oh, ow := c.outSize()
		xt := randTensor(rng, dtypes.Float32, c.n, c.h, c.w, c.c)
		wt := randTensor(rng, dtypes.Float32, c.kh, c.kw, 1, c.cout)
		rt := randTensor(rng, dtypes.Float32, c.n, oh, ow, c.cout)
		var want [][]float64
		forEachISA(t, func(t *testing.T) {
			got, _ := runGraph(t, testCPU(), groupedGraph(c), xt, wt, rt)
			if want == nil {
				want = got
				return
			}
			for i := range want {
				for j := range want[i] {
					if math.Float64bits(got[i][j]) != math.Float64bits(want[i][j]) {
						t.Fatalf("%s: output %d element %d: %v, the first path gives %v", c, i, j, got[i][j], want[i][j])
					}
				}
			}
		})
	}
}

// BenchmarkDepthwise times ShuffleNetV2's depthwise 3×3 convolution on [64, 16, 16, 58] (stride 1,
// padding 1): the forward, and the forward with both gradients, in GFLOP/s of the direct
// products (2·outputs·9 flops each).
func BenchmarkDepthwise(b *testing.B) {
	c := groupedCase{n: 64, h: 16, w: 16, c: 58, cout: 58, groups: 58, kh: 3, kw: 3, stride: [2]int{1, 1},
		dil: [2]int{1, 1}, pads: [2][2]int{{1, 1}, {1, 1}}}
	rng := newRng(99)
	x := randTensor(rng, dtypes.Float32, c.n, c.h, c.w, c.c)
	w := randTensor(rng, dtypes.Float32, c.kh, c.kw, 1, c.cout)
	r := randTensor(rng, dtypes.Float32, c.n, c.h, c.w, c.cout)
	flops := 2 * 9 * float64(c.n*c.h*c.w*c.cout)
	b.Run("forward", func(b *testing.B) {
		benchExec(b, testCPU(), flops, "GFLOP/s", func(xs []*graph.Node) []*graph.Node {
			return groupedGraph(c)(xs)[:1]
		}, x, w, r)
	})
	b.Run("forward+gradients", func(b *testing.B) {
		benchExec(b, testCPU(), 3*flops, "GFLOP/s", groupedGraph(c), x, w, r)
	})
}
