package cpu

import (
	"fmt"
	"iter"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

type gatherParams struct {
	indexVectorAxis                                                 int
	offsetOutputAxes, collapsedSliceAxes, startIndexMap, sliceSizes []int
}

// Gather implements backends.Builder (XLA semantics, indices clamped into range).
func (b *Builder) Gather(operand, startIndices backends.Op, indexVectorAxis int,
	offsetOutputAxes, collapsedSliceAxes, startIndexMap, sliceSizes []int, indicesAreSorted bool) (backends.Op, error) {
	ns, err := b.nodes2("Gather", operand, startIndices)
	if err != nil {
		return nil, err
	}
	if !ns[1].shape.DType.IsInt() {
		return nil, fmt.Errorf("cpu: Gather: indices %s must be integers", ns[1].shape)
	}
	idxShape := ns[1].shape
	if indexVectorAxis == idxShape.Rank() {
		// Implicit trailing axis of size 1.
		idxShape = shapes.Make(idxShape.DType, append(slices.Clone(idxShape.Dimensions), 1)...)
	}
	shape, err := shapeinference.Gather(ns[0].shape, idxShape, indexVectorAxis, offsetOutputAxes, collapsedSliceAxes,
		startIndexMap, sliceSizes, indicesAreSorted)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	p := gatherParams{indexVectorAxis, slices.Clone(offsetOutputAxes), slices.Clone(collapsedSliceAxes),
		slices.Clone(startIndexMap), slices.Clone(sliceSizes)}
	return b.add(backends.OpTypeGather, shape, p, ns...), nil
}

type scatterParams struct {
	indexVectorAxis                                            int
	updateWindowAxes, insertedWindowAxes, scatterAxesToOperand []int
}

func (b *Builder) scatter(op backends.OpType, operand, indices, updates backends.Op, indexVectorAxis int,
	updateWindowAxes, insertedWindowAxes, scatterAxesToOperandAxes []int) (backends.Op, error) {
	ns, err := b.nodes2(op.String(), operand, indices, updates)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.ScatterOp(ns[0].shape, ns[1].shape, ns[2].shape, indexVectorAxis, updateWindowAxes,
		insertedWindowAxes, scatterAxesToOperandAxes)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	p := scatterParams{indexVectorAxis, slices.Clone(updateWindowAxes), slices.Clone(insertedWindowAxes),
		slices.Clone(scatterAxesToOperandAxes)}
	return b.add(op, shape, p, ns...), nil
}

// ScatterSum implements backends.Builder.
func (b *Builder) ScatterSum(operand, indices, updates backends.Op, indexVectorAxis int,
	updateWindowAxes, insertedWindowAxes, scatterAxesToOperandAxes []int, _, _ bool) (backends.Op, error) {
	return b.scatter(backends.OpTypeScatterSum, operand, indices, updates, indexVectorAxis, updateWindowAxes,
		insertedWindowAxes, scatterAxesToOperandAxes)
}

// ScatterMax implements backends.Builder.
func (b *Builder) ScatterMax(operand, indices, updates backends.Op, indexVectorAxis int,
	updateWindowAxes, insertedWindowAxes, scatterAxesToOperandAxes []int, _, _ bool) (backends.Op, error) {
	return b.scatter(backends.OpTypeScatterMax, operand, indices, updates, indexVectorAxis, updateWindowAxes,
		insertedWindowAxes, scatterAxesToOperandAxes)
}

// ScatterMin implements backends.Builder.
func (b *Builder) ScatterMin(operand, indices, updates backends.Op, indexVectorAxis int,
	updateWindowAxes, insertedWindowAxes, scatterAxesToOperandAxes []int, _, _ bool) (backends.Op, error) {
	return b.scatter(backends.OpTypeScatterMin, operand, indices, updates, indexVectorAxis, updateWindowAxes,
		insertedWindowAxes, scatterAxesToOperandAxes)
}

// axesExcept lists the axes 0..rank-1 not in skip, in order.
func axesExcept(rank int, skip []int) []int {
	axes := make([]int, 0, rank)
	for a := range rank {
		if !slices.Contains(skip, a) {
			axes = append(axes, a)
		}
	}
	return axes
}

// valuesExcept is vals (one per axis: sizes, strides) restricted to the axes not in skip, in order.
func valuesExcept(vals []int, skip []int) []int {
	out := make([]int, 0, len(vals))
	for _, a := range axesExcept(len(vals), skip) {
		out = append(out, vals[a])
	}
	return out
}

// indexWalk enumerates the index vectors of a Gather or Scatter indices tensor: one per position of
// its batch axes (every axis but the index-vector axis), in row-major order. The batch axes map, in
// order, onto axes of a second tensor (Gather's output, Scatter's updates), whose offset it tracks.
type indexWalk struct {
	vecStride int   // stride of the index-vector axis in the indices: component k is at off+k·vecStride
	dims      []int // sizes of the batch axes
	idxStr    []int // strides of the batch axes in the indices
	othStr    []int // strides of the batch axes in the second tensor
}

// newIndexWalk walks indices of dimensions idxDims; indexVectorAxis == len(idxDims) is the implicit
// trailing index-vector axis of size 1. otherStr[j] is the stride in the second tensor of the j-th
// batch axis.
func newIndexWalk(idxDims []int, indexVectorAxis int, otherStr []int) indexWalk {
	if indexVectorAxis == len(idxDims) {
		idxDims = append(slices.Clone(idxDims), 1)
	}
	str := stridesOf(idxDims)
	skip := []int{indexVectorAxis}
	return indexWalk{vecStride: str[indexVectorAxis], dims: valuesExcept(idxDims, skip), idxStr: valuesExcept(str, skip),
		othStr: otherStr}
}

// all yields, per batch position, the flat offset of its index vector in the indices and the flat
// offset of the position in the second tensor.
func (w indexWalk) all() iter.Seq2[int, int] {
	return func(yield func(idxOff, othOff int) bool) {
		total := 1
		for _, d := range w.dims {
			total *= d
		}
		pos := make([]int, len(w.dims))
		idxOff, othOff := 0, 0
		for range total {
			if !yield(idxOff, othOff) {
				return
			}
			for j := len(pos) - 1; j >= 0; j-- {
				pos[j]++
				idxOff += w.idxStr[j]
				othOff += w.othStr[j]
				if pos[j] < w.dims[j] {
					break
				}
				idxOff -= pos[j] * w.idxStr[j]
				othOff -= pos[j] * w.othStr[j]
				pos[j] = 0
			}
		}
	}
}

// execGather copies, per index vector, the operand slice of p.sliceSizes starting at the (clamped)
// start indices into the output.
func execGather(ex *execState, n *node, ins []*value, _ []bool) (*Buffer, error) {
	p := n.params.(gatherParams)
	opDims, idx := ins[0].buf.shape.Dimensions, ins[1].buf.flat
	opStr, outStr := stridesOf(opDims), stridesOf(n.shape.Dimensions)
	// The copy box of one slice: the operand axes not collapsed, in order, onto the offset output axes.
	var b box
	for i, a := range axesExcept(len(opDims), p.collapsedSliceAxes) {
		b.dims = append(b.dims, p.sliceSizes[a])
		b.sStr = append(b.sStr, opStr[a])
		b.dStr = append(b.dStr, outStr[p.offsetOutputAxes[i]])
	}
	walk := newIndexWalk(ins[1].buf.shape.Dimensions, p.indexVectorAxis, valuesExcept(outStr, p.offsetOutputAxes))
	out := ex.b.newBuffer(n.shape)
	for off, outOff := range walk.all() {
		b.sOff, b.dOff = 0, outOff
		for k, a := range p.startIndexMap {
			s := elemAsInt(idx, off+k*walk.vecStride)
			b.sOff += max(0, min(s, opDims[a]-p.sliceSizes[a])) * opStr[a]
		}
		if err := copyBoxAny(out.flat, ins[0].buf.flat, b); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// execScatter combines (sum, max or min by n.op), per index vector, the update window into the
// operand at the start indices; a window that does not fit the operand there is skipped whole.
func execScatter(ex *execState, n *node, ins []*value, lastUse []bool) (*Buffer, error) {
	p := n.params.(scatterParams)
	opDims, idx, upd := n.shape.Dimensions, ins[1].buf.flat, ins[2].buf
	src := ins[0].buf.flat
	out := outputLike(ex, n.shape, ins, lastUse, 0)
	if !sameStorage(out.flat, src) {
		_, _ = copyFlat(out.flat, src)
	}
	opStr, updDims := stridesOf(opDims), upd.shape.Dimensions
	updStr := stridesOf(updDims)
	// The window box: the update window axes, in order, onto the operand axes not inserted.
	var b box
	winSize := make([]int, len(opDims))
	for a := range winSize {
		winSize[a] = 1
	}
	for i, a := range axesExcept(len(opDims), p.insertedWindowAxes) {
		ua := p.updateWindowAxes[i]
		b.dims = append(b.dims, updDims[ua])
		b.dStr = append(b.dStr, opStr[a])
		b.sStr = append(b.sStr, updStr[ua])
		winSize[a] = updDims[ua]
	}
	walk := newIndexWalk(ins[1].buf.shape.Dimensions, p.indexVectorAxis, valuesExcept(updStr, p.updateWindowAxes))
next:
	for off, updOff := range walk.all() {
		b.sOff, b.dOff = updOff, 0
		for k, a := range p.scatterAxesToOperand {
			s := elemAsInt(idx, off+k*walk.vecStride)
			if s < 0 || s+winSize[a] > opDims[a] {
				continue next // out of bounds: the whole window is skipped.
			}
			b.dOff += s * opStr[a]
		}
		if err := combineBoxAny(n.op, out.flat, upd.flat, b); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func combineBoxAny(op backends.OpType, dst, src any, b box) error {
	switch d := dst.(type) {
	case []float32:
		combineBox(op, d, src.([]float32), b)
	case []float64:
		combineBox(op, d, src.([]float64), b)
	case []int8:
		combineBox(op, d, src.([]int8), b)
	case []int16:
		combineBox(op, d, src.([]int16), b)
	case []int32:
		combineBox(op, d, src.([]int32), b)
	case []int64:
		combineBox(op, d, src.([]int64), b)
	case []uint8:
		combineBox(op, d, src.([]uint8), b)
	case []uint16:
		combineBox(op, d, src.([]uint16), b)
	case []uint32:
		combineBox(op, d, src.([]uint32), b)
	case []uint64:
		combineBox(op, d, src.([]uint64), b)
	default:
		return fmt.Errorf("unsupported flat type %T", dst)
	}
	return nil
}

// combineBox is copyBox with dst[i] = dst[i] ⊕ src[j], ⊕ being +, max or min by op.
func combineBox[T numT](op backends.OpType, dst, src []T, b box) {
	b = b.simplify()
	combineBoxRec(op, dst, src, b.dims, b.dOff, b.dStr, b.sOff, b.sStr)
}

func combineBoxRec[T numT](op backends.OpType, dst, src []T, dims []int, dOff int, dStr []int, sOff int, sStr []int) {
	if len(dims) == 1 {
		n, ds, ss := dims[0], dStr[0], sStr[0]
		switch op {
		case backends.OpTypeScatterSum:
			for i := 0; i < n; i++ {
				dst[dOff+i*ds] += src[sOff+i*ss]
			}
		case backends.OpTypeScatterMax:
			for i := 0; i < n; i++ {
				dst[dOff+i*ds] = max(dst[dOff+i*ds], src[sOff+i*ss])
			}
		default:
			for i := 0; i < n; i++ {
				dst[dOff+i*ds] = min(dst[dOff+i*ds], src[sOff+i*ss])
			}
		}
		return
	}
	for i := 0; i < dims[0]; i++ {
		combineBoxRec(op, dst, src, dims[1:], dOff+i*dStr[0], dStr[1:], sOff+i*sStr[0], sStr[1:])
	}
}
