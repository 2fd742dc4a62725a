package cpu

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

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
