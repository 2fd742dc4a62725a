package cpu

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// Iota implements backends.Builder.
func (b *Builder) Iota(shape shapes.Shape, iotaAxis int) (backends.Op, error) {
	if err := checkDType(shape.DType); err != nil {
		return nil, fmt.Errorf("cpu: Iota(%s): %w", shape, err)
	}
	if iotaAxis < 0 || iotaAxis >= shape.Rank() {
		return nil, fmt.Errorf("cpu: Iota(%s, axis=%d): axis out of range", shape, iotaAxis)
	}
	return b.add(backends.OpTypeIota, shape, iotaAxis), nil
}

// Reshape implements backends.Builder.
func (b *Builder) Reshape(x backends.Op, dims ...int) (backends.Op, error) {
	ns, err := b.nodes2("Reshape", x)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.ReshapeOp(ns[0].shape, dims)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	return b.add(backends.OpTypeReshape, shape, nil, ns[0]), nil
}

// Transpose implements backends.Builder.
func (b *Builder) Transpose(x backends.Op, permutation ...int) (backends.Op, error) {
	ns, err := b.nodes2("Transpose", x)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.TransposeOp(ns[0].shape, permutation)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	return b.add(backends.OpTypeTranspose, shape, slices.Clone(permutation), ns[0]), nil
}

// BroadcastInDim implements backends.Builder.
func (b *Builder) BroadcastInDim(x backends.Op, outputShape shapes.Shape, broadcastAxes []int) (backends.Op, error) {
	ns, err := b.nodes2("BroadcastInDim", x)
	if err != nil {
		return nil, err
	}
	if err := shapeinference.BroadcastInDimOp(ns[0].shape, outputShape, broadcastAxes); err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	if outputShape.DType != ns[0].shape.DType {
		return nil, fmt.Errorf("cpu: BroadcastInDim(%s -> %s): dtypes differ", ns[0].shape, outputShape)
	}
	return b.add(backends.OpTypeBroadcastInDim, outputShape.Clone(), slices.Clone(broadcastAxes), ns[0]), nil
}

// Concatenate implements backends.Builder.
func (b *Builder) Concatenate(axis int, operands ...backends.Op) (backends.Op, error) {
	ns, err := b.nodes2("Concatenate", operands...)
	if err != nil {
		return nil, err
	}
	if len(ns) == 0 {
		return nil, fmt.Errorf("cpu: Concatenate: no operands")
	}
	inShapes := make([]shapes.Shape, len(ns))
	for i, n := range ns {
		inShapes[i] = n.shape
	}
	shape, err := shapeinference.ConcatenateOp(inShapes, axis)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	if len(ns) == 1 {
		return ns[0], nil
	}
	return b.add(backends.OpTypeConcatenate, shape, axis, ns...), nil
}

// stridesOf returns the row-major strides of dims.
func stridesOf(dims []int) []int {
	st := make([]int, len(dims))
	s := 1
	for a := len(dims) - 1; a >= 0; a-- {
		st[a] = s
		s *= dims[a]
	}
	return st
}

// unravelInto writes into idx the row-major multi-index of flat position i in dims (len(idx) =
// len(dims)).
func unravelInto(idx []int, i int, dims []int) {
	for a := len(dims) - 1; a >= 0; a-- {
		idx[a] = i % dims[a]
		i /= dims[a]
	}
}

// box is a strided copy: for every index i over dims, dst[dOff+Σ i·dStr] = src[sOff+Σ i·sStr].
type box struct {
	dims       []int
	dOff, sOff int
	dStr, sStr []int
}

// simplify drops unit axes and merges axes that are contiguous on both sides.
func (b box) simplify() box {
	var dims, ds, ss []int
	for a, d := range b.dims {
		if d == 1 {
			continue
		}
		if k := len(dims) - 1; k >= 0 && ds[k] == b.dStr[a]*d && ss[k] == b.sStr[a]*d {
			dims[k] *= d
			ds[k], ss[k] = b.dStr[a], b.sStr[a]
			continue
		}
		dims = append(dims, d)
		ds = append(ds, b.dStr[a])
		ss = append(ss, b.sStr[a])
	}
	if len(dims) == 0 {
		dims, ds, ss = []int{1}, []int{1}, []int{1}
	}
	return box{dims: dims, dOff: b.dOff, sOff: b.sOff, dStr: ds, sStr: ss}
}

// tileOrder moves the source-contiguous axis next to the destination-contiguous innermost axis,
// so a transposing copy runs as cache-friendly 2-D tiles.
func (b box) tileOrder() box {
	r := len(b.dims)
	if r < 3 || b.dStr[r-1] != 1 || b.sStr[r-1] == 1 {
		return b
	}
	k := -1
	for a := 0; a < r-1; a++ {
		if b.sStr[a] == 1 {
			k = a
		}
	}
	if k < 0 || k == r-2 {
		return b
	}
	move := func(s []int) []int {
		out := make([]int, 0, r)
		for a := 0; a < r-1; a++ {
			if a != k {
				out = append(out, s[a])
			}
		}
		return append(out, s[k], s[r-1])
	}
	return box{dims: move(b.dims), dOff: b.dOff, sOff: b.sOff, dStr: move(b.dStr), sStr: move(b.sStr)}
}

func (b box) size() int {
	n := 1
	for _, d := range b.dims {
		n *= d
	}
	return n
}

// copyBox runs the strided copy b from src to dst, split over goroutines along its first axis
// when large.
func copyBox[T any](dst, src []T, b box) {
	for _, d := range b.dims {
		if d <= 0 {
			return
		}
	}
	b = b.simplify().tileOrder()
	total := b.size()
	if total < elemGrain || b.dims[0] == 1 {
		copyBoxRec(dst, src, b.dims, b.dOff, b.dStr, b.sOff, b.sStr)
		return
	}
	parallelFor(b.dims[0], max(1, elemGrain*b.dims[0]/total), func(s, e int) {
		dims := append([]int{e - s}, b.dims[1:]...)
		copyBoxRec(dst, src, dims, b.dOff+s*b.dStr[0], b.dStr, b.sOff+s*b.sStr[0], b.sStr)
	})
}

func copyBoxRec[T any](dst, src []T, dims []int, dOff int, dStr []int, sOff int, sStr []int) {
	if r := len(dims); r >= 2 && dStr[r-1] == 1 && sStr[r-1] == 1 {
		copyRuns(dst, src, dims, dOff, dStr, sOff, sStr)
		return
	}
	if len(dims) == 1 {
		n, ds, ss := dims[0], dStr[0], sStr[0]
		switch {
		case ds == 1 && ss == 1:
			copy(dst[dOff:dOff+n], src[sOff:sOff+n])
		case ds == 1 && ss == 0:
			v := src[sOff]
			d := dst[dOff : dOff+n]
			for i := range d {
				d[i] = v
			}
		case ds == 1:
			d := dst[dOff : dOff+n]
			for i := range d {
				d[i] = src[sOff+i*ss]
			}
		default:
			for i := 0; i < n; i++ {
				dst[dOff+i*ds] = src[sOff+i*ss]
			}
		}
		return
	}
	if len(dims) == 2 && dStr[1] == 1 && sStr[0] == 1 && dims[0] >= 8 && dims[1] >= 8 {
		// A 2-D transpose-like copy: go in tiles for cache locality.
		transposeTile(dst, src, dims[0], dims[1], dOff, dStr[0], sOff, sStr[1])
		return
	}
	if len(dims) == 2 && dStr[1] == 1 {
		// Short rows of dst gathered from strided src (a transpose with a small axis, such as
		// a channel shuffle's [C, 2] → [2, C]): one loop per row instead of a call per element run.
		n, ss := dims[1], sStr[1]
		if n < 8 && dims[0] > n {
			// Rows too short for a loop each: walk the long axis innermost.
			for j := 0; j < n; j++ {
				d, s := dOff+j, sOff+j*ss
				for i := 0; i < dims[0]; i++ {
					dst[d+i*dStr[0]] = src[s+i*sStr[0]]
				}
			}
			return
		}
		for i := 0; i < dims[0]; i++ {
			d := dst[dOff+i*dStr[0] : dOff+i*dStr[0]+n]
			s := sOff + i*sStr[0]
			for j := range d {
				d[j] = src[s+j*ss]
			}
		}
		return
	}
	for i := 0; i < dims[0]; i++ {
		copyBoxRec(dst, src, dims[1:], dOff+i*dStr[0], dStr[1:], sOff+i*sStr[0], sStr[1:])
	}
}

// copyRuns is copyBoxRec for a box whose innermost axis is contiguous on both sides (rank ≥ 2):
// one copy per run, the outer indices stepped as an odometer.
func copyRuns[T any](dst, src []T, dims []int, dOff int, dStr []int, sOff int, sStr []int) {
	r := len(dims)
	n := dims[r-1]
	outer := r - 1
	if outer == 1 { // the common case: a plain loop
		d, s := dOff, sOff
		for i := 0; i < dims[0]; i++ {
			copy(dst[d:d+n], src[s:s+n])
			d += dStr[0]
			s += sStr[0]
		}
		return
	}
	var idxBuf [8]int
	idx := idxBuf[:0]
	if outer > len(idxBuf) {
		idx = make([]int, 0, outer)
	}
	idx = idx[:outer]
	d, s := dOff, sOff
	for {
		// The innermost outer axis as a loop, the others as an odometer.
		k := outer - 1
		dk, sk := d, s
		for i := 0; i < dims[k]; i++ {
			copy(dst[dk:dk+n], src[sk:sk+n])
			dk += dStr[k]
			sk += sStr[k]
		}
		a := k - 1
		for ; a >= 0; a-- {
			idx[a]++
			d += dStr[a]
			s += sStr[a]
			if idx[a] < dims[a] {
				break
			}
			d -= idx[a] * dStr[a]
			s -= idx[a] * sStr[a]
			idx[a] = 0
		}
		if a < 0 {
			return
		}
	}
}

// transposeTile copies dst[dOff + i·dRow + j] = src[sOff + i + j·sCol] for i < n0, j < n1.
func transposeTile[T any](dst, src []T, n0, n1, dOff, dRow, sOff, sCol int) {
	const tile = 32
	for i0 := 0; i0 < n0; i0 += tile {
		i1 := min(i0+tile, n0)
		for j0 := 0; j0 < n1; j0 += tile {
			j1 := min(j0+tile, n1)
			for i := i0; i < i1; i++ {
				d := dOff + i*dRow
				s := sOff + i
				for j := j0; j < j1; j++ {
					dst[d+j] = src[s+j*sCol]
				}
			}
		}
	}
}

// copyBoxAny dispatches copyBox on the flat slices' type.
func copyBoxAny(dst, src any, b box) error {
	switch d := dst.(type) {
	case []float32:
		copyBox(d, src.([]float32), b)
	case []float64:
		copyBox(d, src.([]float64), b)
	case []bool:
		copyBox(d, src.([]bool), b)
	case []int8:
		copyBox(d, src.([]int8), b)
	case []int16:
		copyBox(d, src.([]int16), b)
	case []int32:
		copyBox(d, src.([]int32), b)
	case []int64:
		copyBox(d, src.([]int64), b)
	case []uint8:
		copyBox(d, src.([]uint8), b)
	case []uint16:
		copyBox(d, src.([]uint16), b)
	case []uint32:
		copyBox(d, src.([]uint32), b)
	case []uint64:
		copyBox(d, src.([]uint64), b)
	default:
		return fmt.Errorf("unsupported flat type %T", dst)
	}
	return nil
}

// fillFromScalar fills dst with element 0 of the scalar flat src.
func fillFromScalar(dst, src any) error {
	n := flatLen(dst)
	return copyBoxAny(dst, src, box{dims: []int{n}, dStr: []int{1}, sStr: []int{0}})
}

// transposeFlat writes into dst the transposition of src (dims) by perm: dst axis a is src axis perm[a].
func transposeFlat(dst, src any, dims, perm []int) error {
	inStr := stridesOf(dims)
	outDims := make([]int, len(perm))
	sStr := make([]int, len(perm))
	for a, p := range perm {
		outDims[a] = dims[p]
		sStr[a] = inStr[p]
	}
	return copyBoxAny(dst, src, box{dims: outDims, dStr: stridesOf(outDims), sStr: sStr})
}

func execTranspose(ex *execState, n *node, ins []*value, _ []bool) (*Buffer, error) {
	out := ex.b.newBuffer(n.shape)
	if err := transposeFlat(out.flat, ins[0].buf.flat, ins[0].buf.shape.Dimensions, n.params.([]int)); err != nil {
		return nil, err
	}
	return out, nil
}

func execBroadcastInDim(ex *execState, n *node, ins []*value, _ []bool) (*Buffer, error) {
	in := ins[0].buf.shape
	axes := n.params.([]int)
	inStr := stridesOf(in.Dimensions)
	sStr := make([]int, n.shape.Rank())
	for i, a := range axes {
		if in.Dimensions[i] != 1 {
			sStr[a] = inStr[i]
		}
	}
	out := ex.b.newBuffer(n.shape)
	err := copyBoxAny(out.flat, ins[0].buf.flat, box{dims: n.shape.Dimensions, dStr: stridesOf(n.shape.Dimensions), sStr: sStr})
	return out, err
}

func execConcatenate(ex *execState, n *node, ins []*value, _ []bool) (*Buffer, error) {
	axis := n.params.(int)
	out := ex.b.newBuffer(n.shape)
	outStr := stridesOf(n.shape.Dimensions)
	pos := 0
	for _, in := range ins {
		s := in.buf.shape
		if err := copyBoxAny(out.flat, in.buf.flat, box{dims: s.Dimensions, dOff: pos * outStr[axis], dStr: outStr,
			sStr: stridesOf(s.Dimensions)}); err != nil {
			return nil, err
		}
		pos += s.Dimensions[axis]
	}
	return out, nil
}

// sameStorage reports whether two flat slices start at the same element.
func sameStorage(a, b any) bool {
	switch x := a.(type) {
	case []float32:
		y := b.([]float32)
		return len(x) > 0 && len(y) > 0 && &x[0] == &y[0]
	case []float64:
		y := b.([]float64)
		return len(x) > 0 && len(y) > 0 && &x[0] == &y[0]
	case []int32:
		y := b.([]int32)
		return len(x) > 0 && len(y) > 0 && &x[0] == &y[0]
	case []int64:
		y := b.([]int64)
		return len(x) > 0 && len(y) > 0 && &x[0] == &y[0]
	}
	return false
}

// shapeWithDims returns a copy of s with new dimensions.
func shapeWithDims(s shapes.Shape, dims ...int) shapes.Shape {
	return shapes.Make(s.DType, dims...)
}

func execIota(ex *execState, n *node, _ []*value, _ []bool) (*Buffer, error) {
	out := ex.b.newBuffer(n.shape)
	axis := n.params.(int)
	dims := n.shape.Dimensions
	inner := 1
	for a := axis + 1; a < len(dims); a++ {
		inner *= dims[a]
	}
	d := dims[axis]
	iotaAt := func(i int) int { return (i / inner) % d }
	switch o := out.flat.(type) {
	case []float32:
		for i := range o {
			o[i] = float32(iotaAt(i))
		}
	case []float64:
		for i := range o {
			o[i] = float64(iotaAt(i))
		}
	case []int8:
		fillIota(o, iotaAt)
	case []int16:
		fillIota(o, iotaAt)
	case []int32:
		fillIota(o, iotaAt)
	case []int64:
		fillIota(o, iotaAt)
	case []uint8:
		fillIota(o, iotaAt)
	case []uint16:
		fillIota(o, iotaAt)
	case []uint32:
		fillIota(o, iotaAt)
	case []uint64:
		fillIota(o, iotaAt)
	default:
		return nil, fmt.Errorf("iota of %s not supported", n.shape)
	}
	return out, nil
}

func fillIota[T intT](o []T, at func(int) int) {
	for i := range o {
		o[i] = T(at(i))
	}
}
