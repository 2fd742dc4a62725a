package cpu

import (
	"fmt"
	"reflect"
	"slices"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Gradient registrations (graph.VJPRegistration), installed in GoMLX's gradient table by
// RegisterGradients (New calls it; so does the ifa command before creating any backend). They
// apply to every backend: each is the exact gradient of its op.
//
//   - DotGeneral and Dot (graph.MatMul and graph.Dot of rank ≤ 2 operands): both gradients as
//     DotGeneral products (dA = g·Bᵀ, dB = Aᵀ·g generalised to batch and contracting axes) instead of
//     GoMLX's broadcast-multiply and reduce, which materialises [batch, M, N, K] (for Dot [M, K, N])
//     tensors.
//   - Max and Min (ReLU is Max(x, 0)): the gradient goes to one side through one comparison and a
//     Where, with GoMLX's tie rule (Max: to the first operand when a ≥ b; Min: to the first operand
//     when a < b), instead of GoMLX's chain of Sub, Sign, Add, Sign, Sub and Mul passes.
//   - ConvGeneral: GoMLX v0.26's input gradient is off by one position for even kernel sizes (and
//     asymmetric paddings); this one is derived for any size, stride, padding and kernel dilation.
//     With channel groups both gradients stay one convolution each (GoMLX's make one per group,
//     with a Slice per operand and group and a Concatenate).
//   - Rsqrt, Expm1, Clamp, Pad, Reverse, Floor, Ceil, Round: GoMLX v0.26 defines no gradient for them.

// gomlxDotGeneralVJP is GoMLX's own DotGeneral gradient, kept as the fallback (and test oracle).
var gomlxDotGeneralVJP = graph.VJPRegistration[graph.NodeTypeDotGeneral]

// gomlxDotVJP is GoMLX's own Dot gradient (the test oracle).
var gomlxDotVJP = graph.VJPRegistration[graph.NodeTypeDot]

// gomlxMaxVJP and gomlxMinVJP are GoMLX's own Max and Min gradients (the test oracles).
var gomlxMaxVJP, gomlxMinVJP = graph.VJPRegistration[graph.NodeTypeMax], graph.VJPRegistration[graph.NodeTypeMin]

// gomlxConvGeneralVJP is GoMLX's own ConvGeneral gradient, used for grouped convolutions.
var gomlxConvGeneralVJP = graph.VJPRegistration[graph.NodeTypeConvGeneral]

var registerOnce sync.Once

// RegisterGradients installs ifa's gradients (listed above) in GoMLX's global gradient table,
// for graphs of every backend built from then on. It is idempotent and safe for concurrent use.
// Graphs built before it keep GoMLX's gradients, some of which are wrong (ConvGeneral with even
// kernels) or missing (Rsqrt, Pad, Reverse, ...).
func RegisterGradients() { registerOnce.Do(registerGradients) }

func registerGradients() {
	graph.VJPRegistration[graph.NodeTypeDotGeneral] = dotGeneralVJP
	graph.VJPRegistration[graph.NodeTypeDot] = single(dotVJP)
	graph.VJPRegistration[graph.NodeTypeMax] = single(maxMinVJP)
	graph.VJPRegistration[graph.NodeTypeMin] = single(maxMinVJP)
	graph.VJPRegistration[graph.NodeTypeConvGeneral] = convGeneralVJP
	graph.VJPRegistration[graph.NodeTypeRsqrt] = single(rsqrtVJP)
	graph.VJPRegistration[graph.NodeTypeExpm1] = single(expm1VJP)
	graph.VJPRegistration[graph.NodeTypeClamp] = single(clampVJP)
	graph.VJPRegistration[graph.NodeTypePad] = single(padVJP)
	graph.VJPRegistration[graph.NodeTypeReverse] = single(reverseVJP)
	for _, t := range []graph.NodeType{graph.NodeTypeFloor, graph.NodeTypeCeil, graph.NodeTypeRound} {
		graph.VJPRegistration[t] = single(zeroGradVJP)
	}
}

func single(fn func(node, v *graph.Node) []*graph.Node) graph.VJP {
	return func(node *graph.Node, vjpOutputs []*graph.Node, _ shapes.Shape) []*graph.Node {
		return fn(node, vjpOutputs[0])
	}
}

// nodeField reads an unexported field of a node's recorded inputs (GoMLX keeps op parameters, such
// as DotGeneral's axes, only there). ok is false if the field does not exist.
func nodeField(node *graph.Node, name string) (reflect.Value, bool) {
	v := reflect.ValueOf(node)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return reflect.Value{}, false
	}
	inputs := v.Elem().FieldByName("inputs")
	if !inputs.IsValid() || inputs.Kind() != reflect.Interface || inputs.IsNil() {
		return reflect.Value{}, false
	}
	p := inputs.Elem()
	if p.Kind() == reflect.Pointer {
		p = p.Elem()
	}
	if p.Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	f := p.FieldByName(name)
	return f, f.IsValid()
}

// nodeInts reads an unexported []int field of a node's recorded inputs.
func nodeInts(node *graph.Node, name string) ([]int, bool) {
	f, ok := nodeField(node, name)
	if !ok || f.Kind() != reflect.Slice || f.Type().Elem().Kind() != reflect.Int {
		return nil, false
	}
	out := make([]int, f.Len())
	for i := range out {
		out[i] = int(f.Index(i).Int())
	}
	return out, true
}

func dotGeneralVJP(node *graph.Node, vjpOutputs []*graph.Node, outputShape shapes.Shape) []*graph.Node {
	lc, ok1 := nodeInts(node, "lhsContractingAxes")
	lb, ok2 := nodeInts(node, "lhsBatchAxes")
	rc, ok3 := nodeInts(node, "rhsContractingAxes")
	rb, ok4 := nodeInts(node, "rhsBatchAxes")
	if !(ok1 && ok2 && ok3 && ok4) {
		return gomlxDotGeneralVJP(node, vjpOutputs, outputShape)
	}
	a, b := node.Inputs()[0], node.Inputs()[1]
	g := vjpOutputs[0]
	return []*graph.Node{
		dotGeneralGrad(g, a, lb, lc, b, rb, rc, true),
		dotGeneralGrad(g, b, rb, rc, a, lb, lc, false),
	}
}

// dotVJP is the gradient of Dot(a, b) (ranks 1 or 2, a's last axis contracted with b's first): the
// DotGeneral gradient with those contracting axes and no batch axes.
func dotVJP(node, v *graph.Node) []*graph.Node {
	a, b := node.Inputs()[0], node.Inputs()[1]
	lc, rc := []int{a.Rank() - 1}, []int{0}
	return []*graph.Node{
		dotGeneralGrad(v, a, nil, lc, b, nil, rc, true),
		dotGeneralGrad(v, b, nil, rc, a, nil, lc, false),
	}
}

// dotGeneralGrad returns the gradient with respect to this (one DotGeneral operand) given the
// output gradient g, whose axes are [batch..., lhs cross..., rhs cross...]; thisIsLhs tells which
// group of g's cross axes belongs to this operand.
func dotGeneralGrad(g, this *graph.Node, thisBatch, thisContracting []int, other *graph.Node, otherBatch,
	otherContracting []int, thisIsLhs bool) *graph.Node {
	nb := len(thisBatch)
	thisCross := crossAxes(this.Rank(), thisContracting, thisBatch)
	otherCross := crossAxes(other.Rank(), otherContracting, otherBatch)
	// Axes of g holding the other operand's cross axes, and this operand's.
	gOther := make([]int, len(otherCross))
	gThis := make([]int, len(thisCross))
	for j := range gOther {
		if thisIsLhs {
			gOther[j] = nb + len(thisCross) + j
		} else {
			gOther[j] = nb + j
		}
	}
	for j := range gThis {
		if thisIsLhs {
			gThis[j] = nb + j
		} else {
			gThis[j] = nb + len(otherCross) + j
		}
	}
	gBatch := make([]int, nb)
	for i := range gBatch {
		gBatch[i] = i
	}
	// grad[batch, thisCross, rest of other (= other's contracting axes, sorted)] for this = lhs;
	// for this = rhs the products come as [batch, other's contracting (sorted), thisCross].
	var prod *graph.Node
	sortedOtherContracting := slices.Sorted(slices.Values(otherContracting))
	perm := make([]int, this.Rank())
	if thisIsLhs {
		prod = graph.DotGeneral(g, gOther, gBatch, other, otherCross, otherBatch)
		for i, a := range thisBatch {
			perm[a] = i
		}
		for j, a := range thisCross {
			perm[a] = nb + j
		}
		for k, a := range thisContracting {
			perm[a] = nb + len(thisCross) + slices.Index(sortedOtherContracting, otherContracting[k])
		}
	} else {
		prod = graph.DotGeneral(other, otherCross, otherBatch, g, gOther, gBatch)
		for i, a := range thisBatch {
			perm[a] = i
		}
		for k, a := range thisContracting {
			perm[a] = nb + slices.Index(sortedOtherContracting, otherContracting[k])
		}
		for j, a := range thisCross {
			perm[a] = nb + len(otherContracting) + j
		}
	}
	if isIdentity(perm) {
		return prod
	}
	return graph.TransposeAllAxes(prod, perm...)
}

// maxMinVJP is the gradient of Max(a, b) and Min(a, b).
func maxMinVJP(node, v *graph.Node) []*graph.Node {
	a, b := node.Inputs()[0], node.Inputs()[1]
	var toA *graph.Node
	if node.Type() == graph.NodeTypeMax {
		toA = graph.GreaterOrEqual(a, b)
	} else {
		toA = graph.LessThan(a, b)
	}
	zero := graph.ScalarZero(v.Graph(), v.DType())
	return []*graph.Node{
		unbroadcastGrad(graph.Where(toA, v, zero), a.Shape()),
		unbroadcastGrad(graph.Where(toA, zero, v), b.Shape()),
	}
}

// unbroadcastGrad sums the gradient g of a binary op's output over the axes along which an operand
// of shape in was broadcast (a scalar, or axes of dimension 1), giving the operand's gradient.
func unbroadcastGrad(g *graph.Node, in shapes.Shape) *graph.Node {
	switch {
	case in.Equal(g.Shape()):
		return g
	case in.IsScalar():
		return graph.ReduceAllSum(g)
	}
	var axes []int
	for a, d := range in.Dimensions {
		if d == 1 && g.Shape().Dimensions[a] > 1 {
			axes = append(axes, a)
		}
	}
	return graph.Reshape(graph.ReduceSum(g, axes...), in.Dimensions...)
}

func rsqrtVJP(node, v *graph.Node) []*graph.Node {
	// d/dx x^(-1/2) = -½·y³.
	y := node
	return []*graph.Node{graph.Mul(v, graph.MulScalar(graph.Mul(y, graph.Mul(y, y)), -0.5))}
}

func expm1VJP(node, v *graph.Node) []*graph.Node {
	return []*graph.Node{graph.Mul(v, graph.Exp(node.Inputs()[0]))}
}

func zeroGradVJP(node, v *graph.Node) []*graph.Node {
	return []*graph.Node{graph.ZerosLike(node.Inputs()[0])}
}

// clampVJP passes the gradient to x where min ≤ x ≤ max, and to min (max) where x is below (above)
// it, summed when min (max) is a scalar.
func clampVJP(node, v *graph.Node) []*graph.Node {
	lo, x, hi := node.Inputs()[0], node.Inputs()[1], node.Inputs()[2]
	if !x.DType().IsFloat() {
		return []*graph.Node{nil, nil, nil}
	}
	zeros := graph.ZerosLike(v)
	below := graph.LessThan(x, lo)
	above := graph.GreaterThan(x, hi)
	inside := graph.LogicalNot(graph.LogicalOr(below, above))
	toBound := func(mask, bound *graph.Node) *graph.Node {
		gb := graph.Where(mask, v, zeros)
		if bound.IsScalar() {
			return graph.ReduceAllSum(gb)
		}
		return gb
	}
	return []*graph.Node{toBound(below, lo), graph.Where(inside, v, zeros), toBound(above, hi)}
}

func reverseVJP(node, v *graph.Node) []*graph.Node {
	axes, ok := nodeInts(node, "axes")
	if !ok {
		panic(fmt.Errorf("cpu: gradient of Reverse: cannot read its axes from %s", node))
	}
	return []*graph.Node{graph.Reverse(v, axes...)}
}

// padVJP takes back, for every x element, the gradient at its padded position; the fill value gets
// the sum over the positions it filled.
func padVJP(node, v *graph.Node) []*graph.Node {
	f, ok := nodeField(node, "axesConfig")
	if !ok || f.Kind() != reflect.Slice {
		panic(fmt.Errorf("cpu: gradient of Pad: cannot read its configuration from %s", node))
	}
	x, fill := node.Inputs()[0], node.Inputs()[1]
	cfg := make([]backends.PadAxis, x.Rank())
	for i := 0; i < f.Len(); i++ {
		e := f.Index(i)
		cfg[i] = backends.PadAxis{Start: int(e.FieldByName("Start").Int()), End: int(e.FieldByName("End").Int()),
			Interior: int(e.FieldByName("Interior").Int())}
	}
	// Restore the parts of x cut by negative padding (as zeros), then take x's positions.
	restore := make([]backends.PadAxis, x.Rank())
	needRestore := false
	starts := make([]int, x.Rank())
	limits := make([]int, x.Rank())
	strides := make([]int, x.Rank())
	for a, c := range cfg {
		restore[a] = backends.PadAxis{Start: max(0, -c.Start), End: max(0, -c.End)}
		needRestore = needRestore || restore[a] != backends.PadAxis{}
		step := c.Interior + 1
		d := x.Shape().Dimensions[a]
		starts[a] = max(c.Start, 0)
		limits[a] = starts[a] + (d-1)*step + 1
		strides[a] = step
	}
	g := v
	if needRestore {
		g = graph.Pad(g, graph.ScalarZero(v.Graph(), v.DType()), restore...)
	}
	dx := graph.Slice(g, sliceSpecs(starts, limits, strides)...)
	var dFill *graph.Node
	if fill.DType().IsFloat() {
		dFill = graph.Sub(graph.ReduceAllSum(v), graph.ReduceAllSum(dx))
	}
	return []*graph.Node{dx, dFill}
}

func sliceSpecs(starts, limits, strides []int) []graph.SliceAxisSpec {
	specs := make([]graph.SliceAxisSpec, len(starts))
	for a := range starts {
		specs[a] = graph.AxisRange(starts[a], limits[a]).Stride(strides[a])
	}
	return specs
}

// convGeneralVJP: for out[o] = Σ_k x[o·s − p₀ + k·d]·w[k] (per spatial axis),
//   - ∂x is the convolution of the output gradient, input-dilated by s, with the spatially reversed
//     kernel (input and output channels swapped), kernel dilation d and padding
//     ((K−1)·d − p₀, I − 1 − (O−1)·s + p₀);
//   - ∂w is the convolution of x (its channels as batch, its batch as channels) with the output
//     gradient as kernel, stride d, kernel dilation s and padding (p₀, (K−1)·d + (O−1)·s + 1 − I − p₀).
//
// With G channel groups (kernel [.., Cin/G, Cout], group g mapping input channels
// [g·Cin/G, (g+1)·Cin/G) to output channels [g·Cout/G, (g+1)·Cout/G)), both stay one convolution
// whatever G, instead of GoMLX's one pair of convolutions per group:
//   - ∂x is the same transposed convolution with G channel groups; its kernel
//     w′[k, co, g·Cin/G + ci] = w[reversed k, ci, g·Cout/G + co] ([KS..., Cout/G, Cin]) is w with
//     its output channels split into (G, Cout/G) and transposed;
//   - ∂w is the same convolution with G batch groups: x's channels, read as batch, split into G
//     groups, and output channel g·Cout/G + co of ∂w reads batch group g. On backends other than
//     this one, groups of several input channels get one kernel gradient per group instead (XLA
//     reads batch groups of more than one element in its own order); depthwise ones stay one.
//
// Batch-grouped and input-dilated convolutions fall back to GoMLX's gradient.
func convGeneralVJP(node *graph.Node, vjpOutputs []*graph.Node, outputShape shapes.Shape) []*graph.Node {
	fallback := func() []*graph.Node { return gomlxConvGeneralVJP(node, vjpOutputs, outputShape) }
	axesV, ok1 := nodeField(node, "axes")
	strides, ok2 := nodeInts(node, "strides")
	inDil, ok3 := nodeInts(node, "inputDilations")
	kDil, ok4 := nodeInts(node, "kernelDilations")
	padsV, ok5 := nodeField(node, "paddings")
	fg, ok6 := nodeField(node, "channelGroupCount")
	bg, ok7 := nodeField(node, "batchGroupCount")
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || bg.Int() > 1 {
		return fallback()
	}
	groups := max(1, int(fg.Int()))
	for _, d := range inDil {
		if d != 1 {
			return fallback()
		}
	}
	ints := func(v reflect.Value) []int {
		out := make([]int, v.Len())
		for i := range out {
			out[i] = int(v.Index(i).Int())
		}
		return out
	}
	ax := backends.ConvolveAxesConfig{
		InputBatch: int(axesV.FieldByName("InputBatch").Int()), InputChannels: int(axesV.FieldByName("InputChannels").Int()),
		InputSpatial:         ints(axesV.FieldByName("InputSpatial")),
		KernelInputChannels:  int(axesV.FieldByName("KernelInputChannels").Int()),
		KernelOutputChannels: int(axesV.FieldByName("KernelOutputChannels").Int()),
		KernelSpatial:        ints(axesV.FieldByName("KernelSpatial")),
		OutputBatch:          int(axesV.FieldByName("OutputBatch").Int()), OutputChannels: int(axesV.FieldByName("OutputChannels").Int()),
		OutputSpatial: ints(axesV.FieldByName("OutputSpatial")),
	}
	x, w, v := node.Inputs()[0], node.Inputs()[1], vjpOutputs[0]
	sd := len(ax.InputSpatial)
	strides, kDil = orOnes(strides, sd), orOnes(kDil, sd)
	pads := make([][2]int, sd)
	for i := 0; i < padsV.Len(); i++ {
		pads[i] = [2]int{int(padsV.Index(i).Index(0).Int()), int(padsV.Index(i).Index(1).Int())}
	}
	xPads := make([][2]int, sd)
	wPads := make([][2]int, sd)
	for a := 0; a < sd; a++ {
		I := x.Shape().Dimensions[ax.InputSpatial[a]]
		K := w.Shape().Dimensions[ax.KernelSpatial[a]]
		O := node.Shape().Dimensions[ax.OutputSpatial[a]]
		s, d, p0 := strides[a], kDil[a], pads[a][0]
		xPads[a] = [2]int{(K-1)*d - p0, I - 1 - (O-1)*s + p0}
		wPads[a] = [2]int{p0, (K-1)*d + (O-1)*s + 1 - I - p0}
	}
	// ∂x.
	xAxes := backends.ConvolveAxesConfig{
		InputBatch: ax.OutputBatch, InputChannels: ax.OutputChannels, InputSpatial: ax.OutputSpatial,
		KernelInputChannels: ax.KernelOutputChannels, KernelOutputChannels: ax.KernelInputChannels,
		KernelSpatial: ax.KernelSpatial,
		OutputBatch:   ax.InputBatch, OutputChannels: ax.InputChannels, OutputSpatial: ax.InputSpatial,
	}
	var dx *graph.Node
	if groups == 1 {
		dx = graph.ConvGeneral(v, graph.Reverse(w, ax.KernelSpatial...), xAxes, ones(sd), xPads, strides, kDil, 1, 1)
	} else {
		xAxes.KernelSpatial = make([]int, sd)
		for a := range sd {
			xAxes.KernelSpatial[a] = a
		}
		xAxes.KernelInputChannels, xAxes.KernelOutputChannels = sd, sd+1
		wg := groupedTransposedKernel(w, ax, groups)
		dx = graph.ConvGeneral(v, graph.Reverse(wg, xAxes.KernelSpatial...), xAxes, ones(sd), xPads, strides, kDil, groups, 1)
	}
	// ∂w.
	wAxes := backends.ConvolveAxesConfig{
		InputBatch: ax.InputChannels, InputChannels: ax.InputBatch, InputSpatial: ax.InputSpatial,
		KernelInputChannels: ax.OutputBatch, KernelOutputChannels: ax.OutputChannels, KernelSpatial: ax.OutputSpatial,
		OutputBatch: ax.KernelInputChannels, OutputChannels: ax.KernelOutputChannels, OutputSpatial: ax.KernelSpatial,
	}
	var dw *graph.Node
	if cinG := w.Shape().Dimensions[ax.KernelInputChannels]; groups == 1 || cinG == 1 || !kernelGradPerGroup(node.Graph()) {
		dw = graph.ConvGeneral(x, v, wAxes, kDil, wPads, ones(sd), strides, 1, groups)
	} else {
		// Batch groups of several channels each: backends read the groups of the batch
		// differently (XLA's reference evaluator interleaves them), so other backends get one
		// kernel gradient per group.
		xs := graph.Split(x, ax.InputChannels, groups)
		vs := graph.Split(v, ax.OutputChannels, groups)
		parts := make([]*graph.Node, groups)
		for i := range parts {
			parts[i] = graph.ConvGeneral(xs[i], vs[i], wAxes, kDil, wPads, ones(sd), strides, 1, 1)
		}
		dw = graph.Concatenate(parts, ax.KernelOutputChannels)
	}
	return []*graph.Node{dx, dw}
}

// kernelGradPerGroup reports whether the kernel gradient of a convolution with groups of several
// input channels is computed one group at a time on g's backend: on every backend but this one
// (a variable, so that the tests run that form here too).
var kernelGradPerGroup = func(g *graph.Graph) bool {
	_, onCPU := g.Backend().(*Backend)
	return !onCPU
}

// groupedTransposedKernel returns the kernel of the input gradient of a convolution with the given
// channel groups and kernel w (axes as in ax, [.., Cin/G, Cout]): w′ [KS..., Cout/G, Cin] with
// w′[k, co, g·Cin/G + ci] = w[k, ci, g·Cout/G + co] (not yet reversed).
func groupedTransposedKernel(w *graph.Node, ax backends.ConvolveAxesConfig, groups int) *graph.Node {
	dims := w.Shape().Dimensions
	koc := ax.KernelOutputChannels
	coutG := dims[koc] / groups
	// Split the output channels axis into (G, Cout/G) in place.
	split := make([]int, 0, len(dims)+1)
	for a, d := range dims {
		if a == koc {
			split = append(split, groups, coutG)
		} else {
			split = append(split, d)
		}
	}
	idx := func(a int) int {
		if a > koc {
			return a + 1
		}
		return a
	}
	perm := make([]int, 0, len(split))
	outDims := make([]int, 0, len(dims))
	for _, a := range ax.KernelSpatial {
		perm = append(perm, idx(a))
		outDims = append(outDims, dims[a])
	}
	perm = append(perm, koc+1, koc, idx(ax.KernelInputChannels))
	outDims = append(outDims, coutG, groups*dims[ax.KernelInputChannels])
	t := graph.Reshape(w, split...)
	if !isIdentity(perm) {
		t = graph.TransposeAllAxes(t, perm...)
	}
	return graph.Reshape(t, outDims...)
}
