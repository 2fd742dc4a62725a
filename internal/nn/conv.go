package nn

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
)

// ConvOptions configures Conv2D. Zero values mean: stride 1, dilation 1, no padding, one group, no
// bias, PyTorch's initialisation.
type ConvOptions struct {
	// Out is the number of output channels; KernelH × KernelW the kernel size.
	Out, KernelH, KernelW int
	// Stride and Dilation (square); 0 means 1.
	Stride, Dilation int
	// Padding is the zero padding on each side of both spatial axes (PyTorch's padding=p); Pads,
	// when set, gives the padding before and after each spatial axis instead.
	Padding int
	Pads    [2][2]int
	// Groups splits the input and output channels into that many independent groups (PyTorch's
	// groups); 0 means 1.
	Groups int
	// Bias adds a "biases" variable [Out].
	Bias bool
	// WeightInit and BiasInit replace PyTorch's nn.Conv2d default, U(−1/√fanIn, 1/√fanIn) with
	// fanIn = KernelH·KernelW·Cin/Groups, for the weights and the biases.
	WeightInit, BiasInit context.VariableInitializer
}

// Conv2D is a 2-D convolution over a channels-last map x [B, H, W, Cin] returning [B, H', W', Out]
// with PyTorch's Conv2d arithmetic: H' = ⌊(H + pads − Dilation·(KernelH−1) − 1)/Stride⌋ + 1.
//
// Variables in ctx's current scope: "weights" [KernelH, KernelW, Cin/Groups, Out] (HWIO) and, with
// Bias, "biases" [Out], created in that order.
func Conv2D(ctx *context.Context, x *graph.Node, o ConvOptions) *graph.Node {
	if x.Rank() != 4 {
		panic(fmt.Errorf("nn: conv %s: input must be [B, H, W, C], got shape %s", ctx.Scope(), x.Shape()))
	}
	groups := max(o.Groups, 1)
	cin := x.Shape().Dim(-1)
	if o.Out < 1 || o.KernelH < 1 || o.KernelW < 1 || o.Stride < 0 || o.Dilation < 0 || o.Padding < 0 || o.Groups < 0 ||
		cin%groups != 0 || o.Out%groups != 0 {
		panic(fmt.Errorf("nn: conv %s: invalid options %+v for %d input channels", ctx.Scope(), o, cin))
	}
	stride, dilation := max(o.Stride, 1), max(o.Dilation, 1)
	bound := 1 / math.Sqrt(float64(o.KernelH*o.KernelW*cin/groups))
	wInit, bInit := o.WeightInit, o.BiasInit
	if wInit == nil {
		wInit = initializers.RandomUniformFn(ctx, -bound, bound)
	}
	if bInit == nil {
		bInit = initializers.RandomUniformFn(ctx, -bound, bound)
	}
	g := x.Graph()
	kernel := ctx.WithInitializer(wInit).
		VariableWithShape(WeightsName, shapes.Make(x.DType(), o.KernelH, o.KernelW, cin/groups, o.Out)).ValueGraph(g)
	pads := o.Pads
	if pads == ([2][2]int{}) {
		p := o.Padding
		pads = [2][2]int{{p, p}, {p, p}}
	}
	// Strides and dilations are always passed explicitly: the backend needs both set.
	y := graph.Convolve(x, kernel).
		StridePerAxis(stride, stride).
		DilationPerAxis(dilation, dilation).
		PaddingPerDim([][2]int{pads[0], pads[1]}).
		ChannelGroupCount(groups).
		Done()
	if o.Bias {
		b := ctx.WithInitializer(bInit).VariableWithShape(BiasesName, shapes.Make(x.DType(), o.Out)).ValueGraph(g)
		y = graph.Add(y, graph.Reshape(b, 1, 1, 1, o.Out))
	}
	return y
}
