package cpu

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// reduce adds a reduction over axes (all axes when none are given).
func (b *Builder) reduce(op backends.OpType, x backends.Op, axes []int) (backends.Op, error) {
	ns, err := b.nodes2(op.String(), x)
	if err != nil {
		return nil, err
	}
	s := ns[0].shape
	if len(axes) == 0 {
		axes = make([]int, s.Rank())
		for i := range axes {
			axes[i] = i
		}
	}
	seen := make([]bool, s.Rank())
	for _, a := range axes {
		if a < 0 || a >= s.Rank() || seen[a] {
			return nil, fmt.Errorf("cpu: %s(%s, axes=%v): invalid or repeated axis", op, s, axes)
		}
		seen[a] = true
	}
	switch op {
	case backends.OpTypeReduceLogicalAnd, backends.OpTypeReduceLogicalOr, backends.OpTypeReduceLogicalXor:
		if s.DType != dtypes.Bool {
			return nil, fmt.Errorf("cpu: %s(%s): needs booleans", op, s)
		}
	case backends.OpTypeReduceBitwiseAnd, backends.OpTypeReduceBitwiseOr, backends.OpTypeReduceBitwiseXor:
		if !s.DType.IsInt() {
			return nil, fmt.Errorf("cpu: %s(%s): needs integers", op, s)
		}
	default:
		if s.DType == dtypes.Bool {
			return nil, fmt.Errorf("cpu: %s(%s): needs numbers", op, s)
		}
	}
	shape, err := shapeinference.ReduceOp(s, axes)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	return b.add(op, shape, seen, ns[0]), nil
}

func (b *Builder) ReduceSum(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceSum, x, axes)
}

func (b *Builder) ReduceMax(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceMax, x, axes)
}

func (b *Builder) ReduceMin(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceMin, x, axes)
}

func (b *Builder) ReduceProduct(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceProduct, x, axes)
}

func (b *Builder) ReduceLogicalAnd(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceLogicalAnd, x, axes)
}

func (b *Builder) ReduceLogicalOr(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceLogicalOr, x, axes)
}

func (b *Builder) ReduceLogicalXor(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceLogicalXor, x, axes)
}

func (b *Builder) ReduceBitwiseAnd(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceBitwiseAnd, x, axes)
}

func (b *Builder) ReduceBitwiseOr(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceBitwiseOr, x, axes)
}

func (b *Builder) ReduceBitwiseXor(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceBitwiseXor, x, axes)
}

type argMinMaxParams struct {
	axis  int
	isMin bool
}

// ArgMinMax implements backends.Builder.
func (b *Builder) ArgMinMax(x backends.Op, axis int, outputDType dtypes.DType, isMin bool) (backends.Op, error) {
	ns, err := b.nodes2("ArgMinMax", x)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.ArgMinMaxOp(ns[0].shape, axis, outputDType)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	return b.add(backends.OpTypeArgMinMax, shape, argMinMaxParams{axis, isMin}, ns[0]), nil
}

// reduceGroup is a run of consecutive input axes that are all reduced or all kept.
type reduceGroup struct {
	size    int
	reduced bool
}

func reduceGroups(dims []int, reduced []bool) []reduceGroup {
	var gs []reduceGroup
	for a, d := range dims {
		if d == 1 {
			continue
		}
		if k := len(gs) - 1; k >= 0 && gs[k].reduced == reduced[a] {
			gs[k].size *= d
			continue
		}
		gs = append(gs, reduceGroup{d, reduced[a]})
	}
	if len(gs) == 0 {
		gs = []reduceGroup{{1, false}}
	}
	return gs
}

// reduceKernel holds the inner loops of a reduction from T into accumulator type A.
type reduceKernel[T, A any] struct {
	init    A
	vec     func(acc []A, x []T) // acc[j] ⊕= x[j]
	scal    func(acc A, x []T) A // acc ⊕ x[0] ⊕ x[1] ...
	combine func(a, b A) A       // merges partial results
}

// reduceRun reduces in (dims given as groups) into an accumulator slice of the output size and
// hands it to emit; the accumulators are pooled scratch, not to be kept after emit returns.
func reduceRun[T, A any](in []T, gs []reduceGroup, k reduceKernel[T, A], emit func(acc []A)) {
	outN := 1
	for _, g := range gs {
		if !g.reduced {
			outN *= g.size
		}
	}
	total := len(in)
	last := gs[len(gs)-1]
	rowLen := last.size
	rows := total / rowLen
	// outStr[g] is the output stride of group g (0 for reduced groups); gsize[g] its size.
	nG := len(gs) - 1
	outStr := make([]int, len(gs))
	s := 1
	for g := len(gs) - 1; g >= 0; g-- {
		if !gs[g].reduced {
			outStr[g] = s
			s *= gs[g].size
		}
	}
	runRows := func(acc []A, r0, r1 int) {
		idx := make([]int, nG)
		rem := r0
		for g := nG - 1; g >= 0; g-- {
			idx[g] = rem % gs[g].size
			rem /= gs[g].size
		}
		for r := r0; r < r1; r++ {
			o := 0
			for g := 0; g < nG; g++ {
				o += idx[g] * outStr[g]
			}
			x := in[r*rowLen : (r+1)*rowLen]
			if last.reduced {
				acc[o] = k.scal(acc[o], x)
			} else {
				k.vec(acc[o:o+rowLen], x)
			}
			for g := nG - 1; g >= 0; g-- {
				idx[g]++
				if idx[g] < gs[g].size {
					break
				}
				idx[g] = 0
			}
		}
	}
	newAcc := func() *[]A {
		acc := getScratch[A](outN)
		for i := range *acc {
			(*acc)[i] = k.init
		}
		return acc
	}
	accp := newAcc()
	defer putScratch(accp)
	acc := *accp
	if total < 4*elemGrain {
		runRows(acc, 0, rows)
		emit(acc)
		return
	}
	if !gs[0].reduced && nG > 0 {
		// Disjoint outputs: split over the first (kept) group. Each output is reduced whole by one
		// goroutine in the serial order, so the split does not change the result.
		per := rows / gs[0].size
		parallelFor(gs[0].size, 1, func(s, e int) { runRows(acc, s*per, e*per) })
		emit(acc)
		return
	}
	parts := reduceParts(rows, total, outN)
	if parts <= 1 {
		runRows(acc, 0, rows)
		emit(acc)
		return
	}
	// Private partial outputs for fixed runs of rows, merged in order at the end.
	partial := make([]*[]A, parts)
	parallelFor(parts, 1, func(s, e int) {
		for c := s; c < e; c++ {
			partial[c] = newAcc()
			runRows(*partial[c], c*rows/parts, (c+1)*rows/parts)
		}
	})
	for _, p := range partial {
		for i := range acc {
			acc[i] = k.combine(acc[i], (*p)[i])
		}
		putScratch(p)
	}
	emit(acc)
}

// reduceMaxParts is the most runs of rows a reduction is split into for private partial results.
const reduceMaxParts = 8

// reduceParts is the number of runs of rows a reduction of total elements, rows rows and outN
// outputs is split into, each with its own partial results merged in run order at the end: a
// function of the sizes only, never of the number of cores, so that the sums are the same bits on
// any machine. Merging must stay cheap beside the reduction (outN·parts ≤ total/4).
func reduceParts(rows, total, outN int) int {
	return max(1, min(rows, reduceMaxParts, total/(2*elemGrain), total/(4*max(outN, 1))))
}

func execReduce(ex *execState, n *node, ins []*value, _ []bool) (*Buffer, error) {
	in := ins[0].buf
	gs := reduceGroups(in.shape.Dimensions, n.params.([]bool))
	out := ex.b.newBuffer(n.shape)
	var err error
	switch x := in.flat.(type) {
	case []float32:
		if reduceFast32(n.op, out.flat.([]float32), x, gs) {
			break
		}
		err = reduceFloat(n.op, out.flat.([]float32), x, gs)
	case []float64:
		err = reduceFloat(n.op, out.flat.([]float64), x, gs)
	case []bool:
		err = reduceBool(n.op, out.flat.([]bool), x, gs)
	case []int8:
		err = reduceInt(n.op, out.flat.([]int8), x, gs)
	case []int16:
		err = reduceInt(n.op, out.flat.([]int16), x, gs)
	case []int32:
		err = reduceInt(n.op, out.flat.([]int32), x, gs)
	case []int64:
		err = reduceInt(n.op, out.flat.([]int64), x, gs)
	case []uint8:
		err = reduceInt(n.op, out.flat.([]uint8), x, gs)
	case []uint16:
		err = reduceInt(n.op, out.flat.([]uint16), x, gs)
	case []uint32:
		err = reduceInt(n.op, out.flat.([]uint32), x, gs)
	case []uint64:
		err = reduceInt(n.op, out.flat.([]uint64), x, gs)
	default:
		err = fmt.Errorf("unsupported operand %T", in.flat)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// sumLeadingRows sums the rows of in [rows, cols] into out [cols] (as batch-norm statistics over
// all but the channel axis do), in float64: four rows per pass over the accumulator, the rows cut
// into fixed runs (reduceParts) with private accumulators that are added in order at the end.
func sumLeadingRows[T floatT](out, in []T, rows, cols int) {
	chunks := 1
	if rows*cols >= 4*elemGrain {
		chunks = reduceParts(rows, rows*cols, cols)
	}
	parts := make([][]float64, chunks)
	parallelFor(chunks, 1, func(s, e int) {
		for c := s; c < e; c++ {
			parts[c] = make([]float64, cols)
			addRows(parts[c], in[c*rows/chunks*cols:(c+1)*rows/chunks*cols], cols)
		}
	})
	for j := range out[:cols] {
		var v float64
		for _, p := range parts {
			v += p[j]
		}
		out[j] = T(v)
	}
}

// sumFloat64 is Σ x accumulated in float64 over four independent chains (summed as (s0+s1)+(s2+s3)),
// the order of ReduceSum's contiguous runs and of the portable float32 row sums.
func sumFloat64[T floatT](x []T) float64 {
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(x); j += 4 {
		s0 += float64(x[j])
		s1 += float64(x[j+1])
		s2 += float64(x[j+2])
		s3 += float64(x[j+3])
	}
	for ; j < len(x); j++ {
		s0 += float64(x[j])
	}
	return (s0 + s1) + (s2 + s3)
}

// addRows adds the rows of x [len(x)/cols, cols] to acc [cols] in float64, four rows per pass.
func addRows[T floatT](acc []float64, x []T, cols int) {
	acc = acc[:cols]
	rows := len(x) / cols
	r := 0
	for ; r+4 <= rows; r += 4 {
		x0 := x[r*cols : (r+1)*cols]
		x1 := x[(r+1)*cols : (r+2)*cols]
		x2 := x[(r+2)*cols : (r+3)*cols]
		x3 := x[(r+3)*cols : (r+4)*cols]
		for j := range acc {
			acc[j] += (float64(x0[j]) + float64(x1[j])) + (float64(x2[j]) + float64(x3[j]))
		}
	}
	for ; r < rows; r++ {
		xr := x[r*cols : (r+1)*cols]
		for j := range acc {
			acc[j] += float64(xr[j])
		}
	}
}

// reduceFloat reduces floats; sums accumulate in float64.
func reduceFloat[T floatT](op backends.OpType, out, in []T, gs []reduceGroup) error {
	// narrow writes float64 accumulators (sums, products) to out.
	narrow := func(acc []float64) {
		for i, v := range acc {
			out[i] = T(v)
		}
	}
	switch op {
	case backends.OpTypeReduceSum:
		if len(gs) == 2 && gs[0].reduced && !gs[1].reduced {
			sumLeadingRows(out, in, gs[0].size, gs[1].size)
			return nil
		}
		reduceRun(in, gs, reduceKernel[T, float64]{
			init: 0,
			vec: func(acc []float64, x []T) {
				acc = acc[:len(x)]
				for j, v := range x {
					acc[j] += float64(v)
				}
			},
			scal:    func(acc float64, x []T) float64 { return acc + sumFloat64(x) },
			combine: func(a, b float64) float64 { return a + b },
		}, narrow)
		return nil
	case backends.OpTypeReduceMax, backends.OpTypeReduceMin:
		isMax := op == backends.OpTypeReduceMax
		pick := func(a, b T) T {
			if isMax {
				return max(a, b)
			}
			return min(a, b)
		}
		init := T(math.Inf(-1))
		if !isMax {
			init = T(math.Inf(1))
		}
		reduceRun(in, gs, reduceKernel[T, T]{
			init: init,
			vec: func(acc []T, x []T) {
				acc = acc[:len(x)]
				if isMax {
					for j, v := range x {
						acc[j] = max(acc[j], v)
					}
				} else {
					for j, v := range x {
						acc[j] = min(acc[j], v)
					}
				}
			},
			scal: func(acc T, x []T) T {
				for _, v := range x {
					acc = pick(acc, v)
				}
				return acc
			},
			combine: pick,
		}, func(acc []T) { copy(out, acc) })
		return nil
	case backends.OpTypeReduceProduct:
		reduceRun(in, gs, reduceKernel[T, float64]{
			init: 1,
			vec: func(acc []float64, x []T) {
				for j, v := range x {
					acc[j] *= float64(v)
				}
			},
			scal: func(acc float64, x []T) float64 {
				for _, v := range x {
					acc *= float64(v)
				}
				return acc
			},
			combine: func(a, b float64) float64 { return a * b },
		}, narrow)
		return nil
	}
	return fmt.Errorf("reduction %s not defined for floats", op)
}

func reduceWith[T any](out, in []T, gs []reduceGroup, init T, fn func(a, b T) T) {
	reduceRun(in, gs, reduceKernel[T, T]{
		init: init,
		vec: func(acc []T, x []T) {
			for j, v := range x {
				acc[j] = fn(acc[j], v)
			}
		},
		scal: func(acc T, x []T) T {
			for _, v := range x {
				acc = fn(acc, v)
			}
			return acc
		},
		combine: fn,
	}, func(acc []T) { copy(out, acc) })
}

func reduceInt[T intT](op backends.OpType, out, in []T, gs []reduceGroup) error {
	var zero T
	allOnes := ^zero
	// Extremes of T.
	var minV, maxV T
	if allOnes < 0 { // signed
		maxV = T(uint64(maskBits(8*sizeOf(zero) - 1)))
		minV = -maxV - 1
	} else {
		maxV = allOnes
		minV = 0
	}
	switch op {
	case backends.OpTypeReduceSum:
		reduceWith(out, in, gs, 0, func(a, b T) T { return a + b })
	case backends.OpTypeReduceProduct:
		reduceWith(out, in, gs, 1, func(a, b T) T { return a * b })
	case backends.OpTypeReduceMax:
		reduceWith(out, in, gs, minV, func(a, b T) T { return max(a, b) })
	case backends.OpTypeReduceMin:
		reduceWith(out, in, gs, maxV, func(a, b T) T { return min(a, b) })
	case backends.OpTypeReduceBitwiseAnd:
		reduceWith(out, in, gs, allOnes, func(a, b T) T { return a & b })
	case backends.OpTypeReduceBitwiseOr:
		reduceWith(out, in, gs, 0, func(a, b T) T { return a | b })
	case backends.OpTypeReduceBitwiseXor:
		reduceWith(out, in, gs, 0, func(a, b T) T { return a ^ b })
	default:
		return fmt.Errorf("reduction %s not defined for integers", op)
	}
	return nil
}

func reduceBool(op backends.OpType, out, in []bool, gs []reduceGroup) error {
	switch op {
	case backends.OpTypeReduceLogicalAnd:
		reduceWith(out, in, gs, true, func(a, b bool) bool { return a && b })
	case backends.OpTypeReduceLogicalOr:
		reduceWith(out, in, gs, false, func(a, b bool) bool { return a || b })
	case backends.OpTypeReduceLogicalXor:
		reduceWith(out, in, gs, false, func(a, b bool) bool { return a != b })
	default:
		return fmt.Errorf("reduction %s not defined for booleans", op)
	}
	return nil
}

// ---- ArgMinMax ----

func execArgMinMax(ex *execState, n *node, ins []*value, _ []bool) (*Buffer, error) {
	p := n.params.(argMinMaxParams)
	dims := ins[0].buf.shape.Dimensions
	outer, inner := 1, 1
	for a := 0; a < p.axis; a++ {
		outer *= dims[a]
	}
	for a := p.axis + 1; a < len(dims); a++ {
		inner *= dims[a]
	}
	d := dims[p.axis]
	idx := make([]int, outer*inner)
	switch x := ins[0].buf.flat.(type) {
	case []float32:
		argMinMax(idx, x, outer, d, inner, p.isMin, true)
	case []float64:
		argMinMax(idx, x, outer, d, inner, p.isMin, true)
	case []int8:
		argMinMax(idx, x, outer, d, inner, p.isMin, false)
	case []int16:
		argMinMax(idx, x, outer, d, inner, p.isMin, false)
	case []int32:
		argMinMax(idx, x, outer, d, inner, p.isMin, false)
	case []int64:
		argMinMax(idx, x, outer, d, inner, p.isMin, false)
	case []uint8:
		argMinMax(idx, x, outer, d, inner, p.isMin, false)
	case []uint16:
		argMinMax(idx, x, outer, d, inner, p.isMin, false)
	case []uint32:
		argMinMax(idx, x, outer, d, inner, p.isMin, false)
	case []uint64:
		argMinMax(idx, x, outer, d, inner, p.isMin, false)
	default:
		return nil, fmt.Errorf("unsupported operand %T", x)
	}
	out := ex.b.newBuffer(n.shape)
	if err := convertFrom(out.flat, idx); err != nil {
		return nil, err
	}
	return out, nil
}

// argMinMax picks, along the middle axis of [outer, d, inner], the first extreme; a NaN wins.
func argMinMax[T numT](idx []int, x []T, outer, d, inner int, isMin, isFloat bool) {
	for o := 0; o < outer; o++ {
		for i := 0; i < inner; i++ {
			base := o*d*inner + i
			best, bestV := 0, x[base]
			if isFloat && bestV != bestV {
				idx[o*inner+i] = 0
				continue
			}
			for k := 1; k < d; k++ {
				v := x[base+k*inner]
				if isFloat && v != v {
					best = k
					break
				}
				if (isMin && v < bestV) || (!isMin && v > bestV) {
					best, bestV = k, v
				}
			}
			idx[o*inner+i] = best
		}
	}
}

// reduceFast32 runs the float32 reductions of a training step with dedicated loops and reports
// whether it did: sums, maxima and minima of the rows of [rows, cols] (the last axis reduced, as
// in LayerNorm statistics and the softmax), and sums over the leading axis of [rows, cols] (bias
// gradients, per-channel statistics). Sums accumulate in float64, as reduceFloat's do.
func reduceFast32(op backends.OpType, out, in []float32, gs []reduceGroup) bool {
	switch {
	case len(gs) == 2 && !gs[0].reduced && gs[1].reduced:
		rows, cols := gs[0].size, gs[1].size
		var row func(x []float32) float32
		switch op {
		case backends.OpTypeReduceSum:
			row = func(x []float32) float32 { return float32(sumRow32(x)) }
		case backends.OpTypeReduceMax:
			row = maxRow32
		case backends.OpTypeReduceMin:
			row = minRow32
		default:
			return false
		}
		parallelFor(rows, max(1, elemGrain/max(cols, 1)), func(s, e int) {
			for r := s; r < e; r++ {
				out[r] = row(in[r*cols : (r+1)*cols])
			}
		})
		return true
	case len(gs) == 2 && gs[0].reduced && !gs[1].reduced && op == backends.OpTypeReduceSum:
		sumLeadingRows32(out, in, gs[0].size, gs[1].size)
		return true
	case len(gs) == 1 && gs[0].reduced && op == backends.OpTypeReduceSum:
		sumLeadingRows32(out, in, gs[0].size, 1)
		return true
	case len(gs) == 3 && !gs[0].reduced && gs[1].reduced && !gs[2].reduced && op == backends.OpTypeReduceSum:
		sumMiddleRows32(out, in, gs[0].size, gs[1].size, gs[2].size)
		return true
	}
	return false
}

// sumMiddleRows32 sums in [outer, rows, cols] over its middle axis into out [outer, cols] (as a
// global average pool over the pixels of channels-last images does), each output row summed in
// float64 by one goroutine with addRows32, so the result does not depend on the number of cores.
func sumMiddleRows32(out, in []float32, outer, rows, cols int) {
	parallelFor(outer, max(1, elemGrain/max(rows*cols, 1)), func(s, e int) {
		accp := getScratch[float64](cols)
		defer putScratch(accp)
		acc := *accp
		for b := s; b < e; b++ {
			clear(acc)
			addRows32(acc, in[b*rows*cols:(b+1)*rows*cols], cols)
			for j, v := range acc {
				out[b*cols+j] = float32(v)
			}
		}
	})
}

// sumLeadingRows32 sums the rows of in [rows, cols] into out [cols] in float64: the rows are split
// over the cores into private accumulators that are added at the end.
func sumLeadingRows32(out, in []float32, rows, cols int) {
	if cols == 1 {
		chunks := 1
		if rows >= 4*elemGrain {
			chunks = 2
		}
		parts := make([]float64, chunks)
		per := (rows + chunks - 1) / chunks
		parallelFor(chunks, 1, func(s, e int) {
			for c := s; c < e; c++ {
				parts[c] = sumRow32(in[c*per : min(rows, (c+1)*per)])
			}
		})
		var v float64
		for _, p := range parts {
			v += p
		}
		out[0] = float32(v)
		return
	}
	chunks := 1
	if rows*cols >= 4*elemGrain {
		chunks = min(4, rows)
	}
	parts := make([][]float64, chunks)
	per := (rows + chunks - 1) / chunks
	parallelFor(chunks, 1, func(s, e int) {
		for c := s; c < e; c++ {
			parts[c] = make([]float64, cols)
			r0, r1 := c*per, min(rows, (c+1)*per)
			if r0 < r1 {
				addRows32(parts[c], in[r0*cols:r1*cols], cols)
			}
		}
	})
	for j := range out[:cols] {
		var v float64
		for _, p := range parts {
			v += p[j]
		}
		out[j] = float32(v)
	}
}

// sumRow32s is Σ x in float64 (the portable loop).
func sumRow32s(x []float32) float64 { return sumFloat64(x) }

// maxRow32s is the largest element of x (-Inf when empty; NaN when any is NaN).
func maxRow32s(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	return m
}

// minRow32s is the smallest element of x (+Inf when empty; NaN when any is NaN).
func minRow32s(x []float32) float32 {
	m := float32(math.Inf(1))
	for _, v := range x {
		m = min(m, v)
	}
	return m
}
