package cpu

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

type sliceParams struct{ starts, strides []int }

// Slice implements backends.Builder; nil strides mean 1.
func (b *Builder) Slice(x backends.Op, starts, limits, strides []int) (backends.Op, error) {
	ns, err := b.nodes2("Slice", x)
	if err != nil {
		return nil, err
	}
	if strides == nil {
		strides = ones(ns[0].shape.Rank())
	}
	shape, err := shapeinference.SliceOp(ns[0].shape, starts, limits, strides)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	return b.add(backends.OpTypeSlice, shape, sliceParams{slices.Clone(starts), slices.Clone(strides)}, ns[0]), nil
}

// Pad implements backends.Builder: start/end may be negative, interior >= 0.
func (b *Builder) Pad(x, fillValue backends.Op, axesConfig ...backends.PadAxis) (backends.Op, error) {
	ns, err := b.nodes2("Pad", x, fillValue)
	if err != nil {
		return nil, err
	}
	s := ns[0].shape
	if !ns[1].shape.IsScalar() || ns[1].shape.DType != s.DType {
		return nil, fmt.Errorf("cpu: Pad(%s): fill value %s must be a scalar of the same dtype", s, ns[1].shape)
	}
	if len(axesConfig) > s.Rank() {
		return nil, fmt.Errorf("cpu: Pad(%s): %d axes configured, rank is %d", s, len(axesConfig), s.Rank())
	}
	cfg := make([]backends.PadAxis, s.Rank())
	copy(cfg, axesConfig)
	out := s.Clone()
	for a, c := range cfg {
		if c.Interior < 0 {
			return nil, fmt.Errorf("cpu: Pad(%s): negative interior padding %d on axis %d", s, c.Interior, a)
		}
		d := s.Dimensions[a]
		dim := c.Start + c.End
		if d > 0 {
			dim += d + (d-1)*c.Interior
		}
		if dim < 0 {
			return nil, fmt.Errorf("cpu: Pad(%s): axis %d would get negative size %d with %+v", s, a, dim, c)
		}
		out.Dimensions[a] = dim
	}
	return b.add(backends.OpTypePad, out, cfg, ns[0], ns[1]), nil
}

// Reverse implements backends.Builder.
func (b *Builder) Reverse(x backends.Op, axes ...int) (backends.Op, error) {
	ns, err := b.nodes2("Reverse", x)
	if err != nil {
		return nil, err
	}
	rev := make([]bool, ns[0].shape.Rank())
	for _, a := range axes {
		if a < 0 || a >= len(rev) {
			return nil, fmt.Errorf("cpu: Reverse(%s, %v): axis out of range", ns[0].shape, axes)
		}
		rev[a] = true
	}
	return b.add(backends.OpTypeReverse, ns[0].shape, rev, ns[0]), nil
}

type dynSliceParams struct{ sizes []int }

// DynamicSlice implements backends.Builder.
func (b *Builder) DynamicSlice(operand backends.Op, startIndices []backends.Op, sliceDims []int) (backends.Op, error) {
	ns, err := b.nodes2("DynamicSlice", append([]backends.Op{operand}, startIndices...)...)
	if err != nil {
		return nil, err
	}
	s := ns[0].shape
	if len(startIndices) != s.Rank() || len(sliceDims) != s.Rank() {
		return nil, fmt.Errorf("cpu: DynamicSlice(%s): want %d start indices and slice dims, got %d and %d",
			s, s.Rank(), len(startIndices), len(sliceDims))
	}
	for i, n := range ns[1:] {
		if !n.shape.IsScalar() || !n.shape.DType.IsInt() {
			return nil, fmt.Errorf("cpu: DynamicSlice(%s): start index #%d is %s, want an integer scalar", s, i, n.shape)
		}
		if sliceDims[i] < 0 || sliceDims[i] > s.Dimensions[i] {
			return nil, fmt.Errorf("cpu: DynamicSlice(%s): slice dim %d on axis %d out of range", s, sliceDims[i], i)
		}
	}
	return b.add(backends.OpTypeDynamicSlice, shapes.Make(s.DType, sliceDims...), dynSliceParams{slices.Clone(sliceDims)}, ns...), nil
}

// DynamicUpdateSlice implements backends.Builder.
func (b *Builder) DynamicUpdateSlice(operand, update backends.Op, startIndices []backends.Op) (backends.Op, error) {
	ns, err := b.nodes2("DynamicUpdateSlice", append([]backends.Op{operand, update}, startIndices...)...)
	if err != nil {
		return nil, err
	}
	s, u := ns[0].shape, ns[1].shape
	if u.DType != s.DType || u.Rank() != s.Rank() || len(startIndices) != s.Rank() {
		return nil, fmt.Errorf("cpu: DynamicUpdateSlice(%s, update %s, %d indices): mismatched update or indices",
			s, u, len(startIndices))
	}
	for i, n := range ns[2:] {
		if !n.shape.IsScalar() || !n.shape.DType.IsInt() {
			return nil, fmt.Errorf("cpu: DynamicUpdateSlice(%s): start index #%d is %s, want an integer scalar", s, i, n.shape)
		}
		if u.Dimensions[i] > s.Dimensions[i] {
			return nil, fmt.Errorf("cpu: DynamicUpdateSlice(%s): update %s larger on axis %d", s, u, i)
		}
	}
	return b.add(backends.OpTypeDynamicUpdateSlice, s, nil, ns...), nil
}

func execSlice(ex *execState, n *node, ins []*value, _ []bool) (*Buffer, error) {
	p := n.params.(sliceParams)
	inStr := stridesOf(ins[0].buf.shape.Dimensions)
	b := box{dims: n.shape.Dimensions, dStr: stridesOf(n.shape.Dimensions), sStr: make([]int, len(inStr))}
	for a := range inStr {
		b.sOff += p.starts[a] * inStr[a]
		b.sStr[a] = inStr[a] * p.strides[a]
	}
	out := ex.b.newBuffer(n.shape)
	return out, copyBoxAny(out.flat, ins[0].buf.flat, b)
}

func execReverse(ex *execState, n *node, ins []*value, _ []bool) (*Buffer, error) {
	rev := n.params.([]bool)
	dims := n.shape.Dimensions
	inStr := stridesOf(dims)
	b := box{dims: dims, dStr: stridesOf(dims), sStr: make([]int, len(dims))}
	for a := range dims {
		if rev[a] {
			b.sOff += (dims[a] - 1) * inStr[a]
			b.sStr[a] = -inStr[a]
		} else {
			b.sStr[a] = inStr[a]
		}
	}
	out := ex.b.newBuffer(n.shape)
	return out, copyBoxAny(out.flat, ins[0].buf.flat, b)
}

func execPad(ex *execState, n *node, ins []*value, _ []bool) (*Buffer, error) {
	cfg := n.params.([]backends.PadAxis)
	in := ins[0].buf.shape
	out := ex.b.newBuffer(n.shape)
	if err := fillFromScalar(out.flat, ins[1].buf.flat); err != nil {
		return nil, err
	}
	if in.Size() == 0 || n.shape.Size() == 0 {
		return out, nil
	}
	inStr, outStr := stridesOf(in.Dimensions), stridesOf(n.shape.Dimensions)
	b := box{dims: make([]int, in.Rank()), dStr: make([]int, in.Rank()), sStr: make([]int, in.Rank())}
	for a, c := range cfg {
		step := c.Interior + 1
		outDim := n.shape.Dimensions[a]
		// First input index landing at a position >= 0, last one < outDim.
		i0 := 0
		if c.Start < 0 {
			i0 = (-c.Start + step - 1) / step
		}
		last := outDim - 1 - c.Start
		if last < 0 {
			return out, nil
		}
		i1 := min(in.Dimensions[a]-1, last/step)
		if i1 < i0 {
			return out, nil
		}
		b.dims[a] = i1 - i0 + 1
		b.dOff += (c.Start + i0*step) * outStr[a]
		b.dStr[a] = step * outStr[a]
		b.sOff += i0 * inStr[a]
		b.sStr[a] = inStr[a]
	}
	return out, copyBoxAny(out.flat, ins[0].buf.flat, b)
}

// clampedStarts reads the scalar start indices and clamps them so the box of sizes fits in dims.
func clampedStarts(ins []*value, dims, sizes []int) []int {
	starts := make([]int, len(dims))
	for a := range dims {
		s := elemAsInt(ins[a].buf.flat, 0)
		s = max(0, min(s, dims[a]-sizes[a]))
		starts[a] = s
	}
	return starts
}

func execDynamicSlice(ex *execState, n *node, ins []*value, _ []bool) (*Buffer, error) {
	in := ins[0].buf.shape
	starts := clampedStarts(ins[1:], in.Dimensions, n.shape.Dimensions)
	inStr := stridesOf(in.Dimensions)
	b := box{dims: n.shape.Dimensions, dStr: stridesOf(n.shape.Dimensions), sStr: inStr}
	for a := range starts {
		b.sOff += starts[a] * inStr[a]
	}
	out := ex.b.newBuffer(n.shape)
	return out, copyBoxAny(out.flat, ins[0].buf.flat, b)
}

func execDynamicUpdateSlice(ex *execState, n *node, ins []*value, lastUse []bool) (*Buffer, error) {
	upd := ins[1].buf
	starts := clampedStarts(ins[2:], n.shape.Dimensions, upd.shape.Dimensions)
	src := ins[0].buf.flat
	updFlat := upd.flat
	out := outputLike(ex, n.shape, ins, lastUse, 0)
	if out.flat != nil && !sameStorage(out.flat, src) {
		_, _ = copyFlat(out.flat, src)
	}
	outStr := stridesOf(n.shape.Dimensions)
	b := box{dims: upd.shape.Dimensions, dStr: outStr, sStr: stridesOf(upd.shape.Dimensions)}
	for a := range starts {
		b.dOff += starts[a] * outStr[a]
	}
	return out, copyBoxAny(out.flat, updFlat, b)
}
