package distill

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/nn"
)

// Shared building blocks of the distillers: PyTorch-initialised linear and convolution heads,
// adaptive average pooling, L2 normalisation with PyTorch's epsilon, and feature selection.

// uniformInit returns an initializer drawing U(−bound, bound) from ctx's random stream.
func uniformInit(ctx *context.Context, bound float64) context.VariableInitializer {
	return initializers.RandomUniformFn(ctx, -bound, bound)
}

// conv2dSpec configures conv2d.
type conv2dSpec struct {
	kh, kw, out int
	stride      int
	pad         int  // zero padding on each side of both spatial axes
	transposed  bool // a stride-2 transposed convolution (PyTorch ConvTranspose2d(k, 2, pad))
	bias        bool
}

// conv2d applies a 2-D convolution to x: [B, H, W, Cin] → [B, H', W', out] (nn.Conv2D). Variables in
// ctx's scope: "weights" [kh, kw, Cin, out] and optionally "biases" [out], initialised as PyTorch's
// convolutions (U(±1/√fan_in), fan_in = Cin·kh·kw, or out·kh·kw for the transposed one).
//
// The transposed convolution is computed as a convolution over the input dilated by 2 (zeros
// interleaved) and padded (the kernel is learnt, so its spatial flip is immaterial); its output is
// 2·(H−1) − 2·pad + kh, as PyTorch's ConvTranspose2d(kh, stride 2, pad).
func conv2d(ctx *context.Context, x *graph.Node, c conv2dSpec) *graph.Node {
	o := nn.ConvOptions{Out: c.out, KernelH: c.kh, KernelW: c.kw, Stride: c.stride, Padding: c.pad, Bias: c.bias}
	if !c.transposed {
		return nn.Conv2D(ctx, x, o)
	}
	// Interleave zeros (x at even positions of a [B, 2H, 2W, Cin] map) with constant matrices,
	// then convolve with padding (k−1−pad) before and (k−2−pad) after: the transposed convolution,
	// differentiable without input dilation (whose gradient GoMLX does not define).
	g := x.Graph()
	bound := 1 / math.Sqrt(float64(c.out*c.kh*c.kw))
	o.WeightInit, o.BiasInit = uniformInit(ctx, bound), uniformInit(ctx, bound)
	h, wd := x.Shape().Dim(1), x.Shape().Dim(2)
	up := graph.Einsum("ih,bhwc->biwc", graph.ConstAsDType(g, x.DType(), zeroInterleaveMatrix(h)), x)
	up = graph.Einsum("jw,biwc->bijc", graph.ConstAsDType(g, x.DType(), zeroInterleaveMatrix(wd)), up)
	ph, pw := c.kh-1-c.pad, c.kw-1-c.pad
	o.Stride, o.Padding, o.Pads = 1, 0, [2][2]int{{ph, ph - 1}, {pw, pw - 1}}
	return nn.Conv2D(ctx, up, o)
}

// zeroInterleaveMatrix returns the [2n, n] matrix that spreads n positions to the even positions
// of 2n (the odd ones stay zero).
func zeroInterleaveMatrix(n int) [][]float64 {
	m := make([][]float64, 2*n)
	for i := range m {
		m[i] = make([]float64, n)
		if i%2 == 0 {
			m[i][i/2] = 1
		}
	}
	return m
}

// adaptivePoolMatrix returns the [out, in] averaging matrix of PyTorch's adaptive_avg_pool over
// one axis: row i averages input positions ⌊i·in/out⌋ .. ⌈(i+1)·in/out⌉−1.
func adaptivePoolMatrix(in, out int) [][]float64 {
	m := make([][]float64, out)
	for i := range m {
		m[i] = make([]float64, in)
		start := i * in / out
		end := ((i+1)*in + out - 1) / out
		for h := start; h < end; h++ {
			m[i][h] = 1 / float64(end-start)
		}
	}
	return m
}

// AdaptiveAvgPool2D averages a channels-last map x: [B, H, W, C] down (or up) to [B, oh, ow, C]
// exactly as PyTorch's adaptive_avg_pool2d, as two products with constant averaging matrices
// (differentiable with matrix products only).
func AdaptiveAvgPool2D(x *graph.Node, oh, ow int) *graph.Node {
	if x.Rank() != 4 {
		panicf("distill: AdaptiveAvgPool2D wants a [B, H, W, C] map, got %s", x.Shape())
	}
	h, w := x.Shape().Dim(1), x.Shape().Dim(2)
	if h == oh && w == ow {
		return x
	}
	g := x.Graph()
	ph := graph.ConstAsDType(g, x.DType(), adaptivePoolMatrix(h, oh))
	pw := graph.ConstAsDType(g, x.DType(), adaptivePoolMatrix(w, ow))
	y := graph.Einsum("ih,bhwc->biwc", ph, x)
	return graph.Einsum("jw,biwc->bijc", pw, y)
}

// matchSpatial pools the spatially larger of two [B, H, W, C] maps down to the other's size, as
// RepDistiller's AT, NST and VID do (the smaller map's height decides).
func matchSpatial(s, t *graph.Node) (*graph.Node, *graph.Node) {
	sh, th := s.Shape().Dim(1), t.Shape().Dim(1)
	switch {
	case sh > th:
		s = AdaptiveAvgPool2D(s, th, t.Shape().Dim(2))
	case sh < th:
		t = AdaptiveAvgPool2D(t, sh, s.Shape().Dim(2))
	}
	return s, t
}

// normalizeEpsilon is PyTorch F.normalize's default epsilon.
const normalizeEpsilon = 1e-12

// l2Normalize returns x / max(‖x‖₂, eps) along axis (PyTorch F.normalize). The max is taken on the
// squared norm, so an all-zero slice has a zero (not NaN) gradient.
func l2Normalize(x *graph.Node, axis int, eps float64) *graph.Node {
	sq := graph.ReduceAndKeep(graph.Square(x), graph.ReduceSum, axis)
	return graph.Div(x, graph.Sqrt(graph.MaxScalar(sq, eps*eps)))
}

// flatten reshapes [B, ...] to [B, prod(...)].
func flatten(x *graph.Node) *graph.Node {
	b := x.Shape().Dim(0)
	return graph.Reshape(x, b, x.Shape().Size()/b)
}

// intermediate returns RepDistiller's f[1:-1]: the stage maps without the stem f0.
func intermediate(f backbone.Features) []*graph.Node {
	if len(f.Stages) < 2 {
		return nil
	}
	return f.Stages[1:]
}

// intermediateShapes is intermediate for FeatureShapes.
func intermediateShapes(f FeatureShapes) []shapes.Shape {
	if len(f.Stages) < 2 {
		return nil
	}
	return f.Stages[1:]
}

// constants stops the gradient of every node.
func constants(ns []*graph.Node) []*graph.Node {
	out := make([]*graph.Node, len(ns))
	for i, n := range ns {
		out[i] = graph.StopGradient(n)
	}
	return out
}

// mustPair panics unless the student and teacher lists are non-empty and equally long.
func mustPair(method string, s, t []*graph.Node) {
	if len(s) == 0 || len(s) != len(t) {
		panicf("distill: %s: student has %d feature maps and teacher %d; want the same non-zero number", method, len(s), len(t))
	}
}

// panicf panics with a formatted error, the GoMLX way of failing inside graph-building code.
func panicf(format string, args ...any) {
	panic(fmt.Errorf(format, args...))
}
