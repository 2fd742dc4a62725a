package cnn

import (
	"math"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/nn"
)

// Variable names inside a layer's scope: they are part of the checkpoint format.
const (
	weightsName = "weights"
	biasesName  = "biases"
)

// ConvInit selects the initialisation of Conv2D's weights.
type ConvInit int

const (
	// ConvKaimingFanOut: N(0, 2/(k²·Out)), Kaiming normal in fan-out mode for ReLU (PyTorch's
	// kaiming_normal_(mode='fan_out')), which equals the N(0, √(2/(k²·C_out))) rule of the WRN, VGG and
	// MobileNetV2 references.
	ConvKaimingFanOut ConvInit = iota
	// ConvPyTorch: PyTorch's nn.Conv2d default, U(−1/√fanIn, 1/√fanIn) with fanIn = k²·Cin/Groups
	// (kaiming_uniform_ with a = √5), for references that leave their convolutions uninitialised (the
	// ShuffleNets).
	ConvPyTorch
)

// ConvOptions configures Conv2D. The zero value of every field except Kernel and Out means: stride 1,
// dilation 1, no padding, no bias, ConvKaimingFanOut weights.
type ConvOptions struct {
	// Out is the number of output channels.
	Out int
	// Kernel is the (square) kernel size.
	Kernel int
	// Stride is the (square) stride; 0 means 1.
	Stride int
	// Dilation is the (square) kernel dilation; 0 means 1.
	Dilation int
	// Padding is the zero padding added on each side of both spatial axes (PyTorch's padding=p).
	Padding int
	// Bias adds a "biases" variable [Out], initialised to zero.
	Bias bool
	// Groups splits the input and output channels into that many independent groups (PyTorch's
	// groups; Groups = Cin = Out is a depthwise conv); 0 means 1.
	Groups int
	// Init selects the weights' initialisation.
	Init ConvInit
}

// Conv2D is a 2-D convolution over a channels-last map x [B, H, W, Cin] returning [B, H', W', Out],
// with H' = ⌊(H + 2·Padding − Dilation·(Kernel−1) − 1)/Stride⌋ + 1 (PyTorch's Conv2d arithmetic).
//
// Variables in ctx's current scope: "weights" [Kernel, Kernel, Cin/Groups, Out] (HWIO), drawn as
// Init says (default N(0, 2/(Kernel²·Out))), and, with Bias, "biases" [Out] = 0.
func Conv2D(ctx *context.Context, x *graph.Node, opts ConvOptions) *graph.Node {
	if x.Rank() != 4 {
		panic(errorf("conv %s: input must be [B, H, W, C], got shape %s", ctx.Scope(), x.Shape()))
	}
	groups := max(opts.Groups, 1)
	cin := x.Shape().Dim(-1)
	if opts.Out < 1 || opts.Kernel < 1 || opts.Stride < 0 || opts.Dilation < 0 || opts.Padding < 0 || opts.Groups < 0 ||
		cin%groups != 0 || opts.Out%groups != 0 || (opts.Init != ConvKaimingFanOut && opts.Init != ConvPyTorch) {
		panic(errorf("conv %s: invalid options %+v for %d input channels", ctx.Scope(), opts, cin))
	}
	o := nn.ConvOptions{Out: opts.Out, KernelH: opts.Kernel, KernelW: opts.Kernel, Stride: opts.Stride,
		Dilation: opts.Dilation, Padding: opts.Padding, Groups: opts.Groups, Bias: opts.Bias, BiasInit: initializers.Zero}
	if opts.Init == ConvKaimingFanOut {
		// PyTorch's fan-out (and the references' n = k²·C_out) does not divide by the groups.
		o.WeightInit = nn.NormalInit(ctx, math.Sqrt(2/float64(opts.Kernel*opts.Kernel*opts.Out)))
	}
	return nn.Conv2D(ctx, x, o)
}

// LinearInit selects the initialisation of Linear's weights and biases.
type LinearInit int

const (
	// LinearPyTorch: PyTorch's nn.Linear default, weights and biases ~ U(−1/√in, 1/√in).
	LinearPyTorch LinearInit = iota
	// LinearZeroBias: PyTorch's default weights, zero biases (the WRN reference).
	LinearZeroBias
	// LinearNormal001: weights ~ N(0, 0.01²), zero biases (the VGG reference).
	LinearNormal001
)

// options returns nn.Linear's options for this initialisation.
func (init LinearInit) options(ctx *context.Context) []nn.LinearOption {
	switch init {
	case LinearZeroBias:
		return []nn.LinearOption{nn.BiasInit(initializers.Zero)}
	case LinearNormal001:
		return []nn.LinearOption{nn.WeightInit(nn.NormalInit(ctx, 0.01)), nn.BiasInit(initializers.Zero)}
	}
	return nil
}

// convBN is Conv2D (in scope convName) followed by nn.BatchNorm (in scope bnName).
func convBN(ctx *context.Context, x *graph.Node, convName, bnName string, opts ConvOptions) *graph.Node {
	return nn.BatchNorm(ctx.In(bnName), Conv2D(ctx.In(convName), x, opts))
}

// relu is max(x, 0).
func relu(x *graph.Node) *graph.Node { return activations.Relu(x) }

// withHead completes a model's features f from its final map [B, H, W, C]: Pooled = the map's global
// average, Logits = the "fc" classifier (initialised as init says) when numClasses > 0, and
// TapVectors = the global averages of the taps.
func withHead(ctx *context.Context, f backbone.Features, final *graph.Node, numClasses int, init LinearInit) backbone.Features {
	f.Pooled = backbone.GlobalAvgPool(final)
	if numClasses > 0 {
		f.Logits = nn.Linear(ctx.In("fc"), f.Pooled, numClasses, init.options(ctx)...)
	}
	f.TapVectors = make([]*graph.Node, len(f.Taps))
	for i, t := range f.Taps {
		f.TapVectors[i] = backbone.GlobalAvgPool(t)
	}
	return f
}
