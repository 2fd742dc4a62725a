package cpu

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/backends"
)

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

// reduceRun reduces in (dims given as groups) into a new accumulator slice of the output size.
func reduceRun[T, A any](in []T, gs []reduceGroup, k reduceKernel[T, A]) []A {
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
	newAcc := func() []A {
		acc := make([]A, outN)
		for i := range acc {
			acc[i] = k.init
		}
		return acc
	}
	acc := newAcc()
	if total < 4*elemGrain {
		runRows(acc, 0, rows)
		return acc
	}
	if !gs[0].reduced && nG > 0 {
		// Disjoint outputs: split over the first (kept) group. Each output is reduced whole by one
		// goroutine in the serial order, so the split does not change the result.
		per := rows / gs[0].size
		parallelFor(gs[0].size, 1, func(s, e int) { runRows(acc, s*per, e*per) })
		return acc
	}
	parts := reduceParts(rows, total, outN)
	if parts <= 1 {
		runRows(acc, 0, rows)
		return acc
	}
	// Private partial outputs for fixed runs of rows, merged in order at the end.
	partial := make([][]A, parts)
	parallelFor(parts, 1, func(s, e int) {
		for c := s; c < e; c++ {
			partial[c] = newAcc()
			runRows(partial[c], c*rows/parts, (c+1)*rows/parts)
		}
	})
	for _, p := range partial {
		for i := range acc {
			acc[i] = k.combine(acc[i], p[i])
		}
	}
	return acc
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
	switch op {
	case backends.OpTypeReduceSum:
		if len(gs) == 2 && gs[0].reduced && !gs[1].reduced {
			sumLeadingRows(out, in, gs[0].size, gs[1].size)
			return nil
		}
		acc := reduceRun(in, gs, reduceKernel[T, float64]{
			init: 0,
			vec: func(acc []float64, x []T) {
				acc = acc[:len(x)]
				for j, v := range x {
					acc[j] += float64(v)
				}
			},
			scal:    func(acc float64, x []T) float64 { return acc + sumFloat64(x) },
			combine: func(a, b float64) float64 { return a + b },
		})
		for i, v := range acc {
			out[i] = T(v)
		}
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
		acc := reduceRun(in, gs, reduceKernel[T, T]{
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
		})
		copy(out, acc)
		return nil
	case backends.OpTypeReduceProduct:
		acc := reduceRun(in, gs, reduceKernel[T, float64]{
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
		})
		for i, v := range acc {
			out[i] = T(v)
		}
		return nil
	}
	return fmt.Errorf("reduction %s not defined for floats", op)
}

func reduceWith[T any](out, in []T, gs []reduceGroup, init T, fn func(a, b T) T) {
	acc := reduceRun(in, gs, reduceKernel[T, T]{
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
	})
	copy(out, acc)
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
