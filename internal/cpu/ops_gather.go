package cpu

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
)

// indexBatches enumerates the batch positions of an indices tensor (every axis but indexVectorAxis)
// and calls fn with the batch counter and the flat offset of that position's index vector; k-th
// element of the vector is at off + k*vecStride.
func indexBatches(idxDims []int, indexVectorAxis int, fn func(b, off int)) (vecStride int) {
	str := stridesOf(idxDims)
	var bDims, bStr []int
	for a, d := range idxDims {
		if a == indexVectorAxis {
			vecStride = str[a]
			continue
		}
		bDims = append(bDims, d)
		bStr = append(bStr, str[a])
	}
	total := 1
	for _, d := range bDims {
		total *= d
	}
	idx := make([]int, len(bDims))
	for b := 0; b < total; b++ {
		off := 0
		for j := range idx {
			off += idx[j] * bStr[j]
		}
		fn(b, off)
		for j := len(idx) - 1; j >= 0; j-- {
			idx[j]++
			if idx[j] < bDims[j] {
				break
			}
			idx[j] = 0
		}
	}
	return vecStride
}

func execGather(ex *execState, n *node, ins []*value, _ []bool) (*Buffer, error) {
	p := n.params.(gatherParams)
	opShape := ins[0].buf.shape
	idxBuf := ins[1].buf
	opStr := stridesOf(opShape.Dimensions)
	outDims := n.shape.Dimensions
	outStr := stridesOf(outDims)
	isOffsetOut := make([]bool, len(outDims))
	for _, a := range p.offsetOutputAxes {
		isOffsetOut[a] = true
	}
	var batchOutAxes []int
	for a := range outDims {
		if !isOffsetOut[a] {
			batchOutAxes = append(batchOutAxes, a)
		}
	}
	// The copy box of one gathered slice: non-collapsed operand axes, in order, to offset output axes.
	b := box{}
	oi := 0
	for a := range opShape.Dimensions {
		if slices.Contains(p.collapsedSliceAxes, a) {
			continue
		}
		b.dims = append(b.dims, p.sliceSizes[a])
		b.sStr = append(b.sStr, opStr[a])
		b.dStr = append(b.dStr, outStr[p.offsetOutputAxes[oi]])
		oi++
	}
	if len(b.dims) == 0 {
		b.dims, b.sStr, b.dStr = []int{1}, []int{1}, []int{1}
	}
	// Output strides of the batch axes, in batch order.
	batchOutStr := make([]int, len(batchOutAxes))
	for j, a := range batchOutAxes {
		batchOutStr[j] = outStr[a]
	}
	idxDims := idxBuf.shape.Dimensions
	if p.indexVectorAxis == len(idxDims) {
		idxDims = append(slices.Clone(idxDims), 1)
	}
	var bDims []int
	for a, d := range idxDims {
		if a != p.indexVectorAxis {
			bDims = append(bDims, d)
		}
	}
	out := ex.b.newBuffer(n.shape)
	bIdx := make([]int, len(bDims))
	var err error
	indexBatchesWithStride(idxDims, p.indexVectorAxis, func(bi, off, vecStride int) {
		if err != nil {
			return
		}
		sb := b
		sb.sOff, sb.dOff = 0, 0
		for k, a := range p.startIndexMap {
			s := elemAsInt(idxBuf.flat, off+k*vecStride)
			s = max(0, min(s, opShape.Dimensions[a]-p.sliceSizes[a]))
			sb.sOff += s * opStr[a]
		}
		rem := bi
		for j := len(bDims) - 1; j >= 0; j-- {
			bIdx[j] = rem % bDims[j]
			rem /= bDims[j]
		}
		for j := range bIdx {
			sb.dOff += bIdx[j] * batchOutStr[j]
		}
		err = copyBoxAny(out.flat, ins[0].buf.flat, sb)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func indexBatchesWithStride(idxDims []int, indexVectorAxis int, fn func(b, off, vecStride int)) {
	vs := stridesOf(idxDims)[indexVectorAxis]
	indexBatches(idxDims, indexVectorAxis, func(b, off int) { fn(b, off, vs) })
}

func execScatter(ex *execState, n *node, ins []*value, lastUse []bool) (*Buffer, error) {
	p := n.params.(scatterParams)
	opShape := n.shape
	idxBuf, upd := ins[1].buf, ins[2].buf
	src := ins[0].buf.flat
	out := outputLike(ex, n.shape, ins, lastUse, 0)
	if !sameStorage(out.flat, src) {
		_, _ = copyFlat(out.flat, src)
	}
	opStr := stridesOf(opShape.Dimensions)
	updDims := upd.shape.Dimensions
	updStr := stridesOf(updDims)
	isWindow := make([]bool, len(updDims))
	for _, a := range p.updateWindowAxes {
		isWindow[a] = true
	}
	var scatterUpdAxes []int
	for a := range updDims {
		if !isWindow[a] {
			scatterUpdAxes = append(scatterUpdAxes, a)
		}
	}
	// Window box: update window axes, in order, onto the operand axes that are not inserted.
	b := box{}
	var winOpAxes []int
	wi := 0
	for a := range opShape.Dimensions {
		if slices.Contains(p.insertedWindowAxes, a) {
			continue
		}
		ua := p.updateWindowAxes[wi]
		wi++
		b.dims = append(b.dims, updDims[ua])
		b.dStr = append(b.dStr, opStr[a])
		b.sStr = append(b.sStr, updStr[ua])
		winOpAxes = append(winOpAxes, a)
	}
	if len(b.dims) == 0 {
		b.dims, b.sStr, b.dStr = []int{1}, []int{1}, []int{1}
	}
	winSize := make([]int, opShape.Rank())
	for a := range winSize {
		winSize[a] = 1
	}
	for i, a := range winOpAxes {
		winSize[a] = b.dims[i]
	}
	idxDims := idxBuf.shape.Dimensions
	if p.indexVectorAxis == len(idxDims) {
		idxDims = append(slices.Clone(idxDims), 1)
	}
	var bDims []int
	for a, d := range idxDims {
		if a != p.indexVectorAxis {
			bDims = append(bDims, d)
		}
	}
	bIdx := make([]int, len(bDims))
	var err error
	indexBatchesWithStride(idxDims, p.indexVectorAxis, func(bi, off, vecStride int) {
		if err != nil {
			return
		}
		sb := b
		sb.sOff, sb.dOff = 0, 0
		for k, a := range p.scatterAxesToOperand {
			s := elemAsInt(idxBuf.flat, off+k*vecStride)
			if s < 0 || s+winSize[a] > opShape.Dimensions[a] {
				return // out of bounds: the whole window is skipped.
			}
			sb.dOff += s * opStr[a]
		}
		rem := bi
		for j := len(bDims) - 1; j >= 0; j-- {
			bIdx[j] = rem % bDims[j]
			rem /= bDims[j]
		}
		for j, a := range scatterUpdAxes {
			sb.sOff += bIdx[j] * updStr[a]
		}
		err = combineBoxAny(n.op, out.flat, upd.flat, sb)
	})
	if err != nil {
		return nil, err
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
