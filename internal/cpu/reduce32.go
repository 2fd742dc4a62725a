package cpu

import (
	"math"

	"github.com/gomlx/gomlx/backends"
)

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
	}
	return false
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
