package cpu

import (
	"fmt"
	"math"
)

// bnLayout views an operand as [outer, C, inner] around the feature axis.
func bnLayout(dims []int, axis int) (outer, c, inner int) {
	outer, inner = 1, 1
	for a := 0; a < axis; a++ {
		outer *= dims[a]
	}
	for a := axis + 1; a < len(dims); a++ {
		inner *= dims[a]
	}
	return outer, dims[axis], inner
}

// bnForEach calls fn(c, x) for every contiguous run x of feature c in a [outer, C, inner] tensor.
func bnForEach[T any](x []T, outer, c, inner int, fn func(ch, off int, run []T)) {
	for o := 0; o < outer; o++ {
		if inner == 1 {
			base := o * c
			for ch := 0; ch < c; ch++ {
				fn(ch, base+ch, x[base+ch:base+ch+1])
			}
			continue
		}
		for ch := 0; ch < c; ch++ {
			off := (o*c + ch) * inner
			fn(ch, off, x[off:off+inner])
		}
	}
}

// bnMoments returns the per-feature mean and biased variance of x (two passes, in float64).
func bnMoments[T floatT](x []T, outer, c, inner int) (mean, variance []float64) {
	n := float64(outer * inner)
	sum := make([]float64, c)
	bnForEach(x, outer, c, inner, func(ch, _ int, run []T) {
		s := 0.0
		for _, v := range run {
			s += float64(v)
		}
		sum[ch] += s
	})
	mean = make([]float64, c)
	for i := range sum {
		mean[i] = sum[i] / n
	}
	sq := make([]float64, c)
	bnForEach(x, outer, c, inner, func(ch, _ int, run []T) {
		s, m := 0.0, mean[ch]
		for _, v := range run {
			d := float64(v) - m
			s += d * d
		}
		sq[ch] += s
	})
	variance = make([]float64, c)
	for i := range sq {
		variance[i] = sq[i] / n
	}
	return mean, variance
}

// bnNormalize writes out = (x - mean)·scale/√(var+ε) + offset.
func bnNormalize[T floatT](out, x, scale, offset []T, mean, variance []float64, eps float64, outer, c, inner int) {
	a := make([]T, c)
	b := make([]T, c)
	for i := 0; i < c; i++ {
		inv := 1 / math.Sqrt(variance[i]+eps)
		a[i] = T(float64(scale[i]) * inv)
		b[i] = T(float64(offset[i]) - mean[i]*float64(scale[i])*inv)
	}
	bnForEach(x, outer, c, inner, func(ch, off int, run []T) {
		o := out[off : off+len(run)]
		ac, bc := a[ch], b[ch]
		for j, v := range run {
			o[j] = v*ac + bc
		}
	})
}

func toFloat64s[T floatT](x []T) []float64 {
	r := make([]float64, len(x))
	for i, v := range x {
		r[i] = float64(v)
	}
	return r
}

func fromFloat64s[T floatT](dst []T, x []float64) {
	for i, v := range x {
		dst[i] = T(v)
	}
}

func execBatchNormInference(ex *execState, n *node, ins []*value, lastUse []bool) (*Buffer, error) {
	p := n.params.(batchNormParams)
	outer, c, inner := bnLayout(n.shape.Dimensions, p.axis)
	xFlat := ins[0].buf.flat
	out := outputLike(ex, n.shape, ins, lastUse, 0) // elementwise: may overwrite x
	switch x := xFlat.(type) {
	case []float32:
		if inner == 1 {
			bnInferLastAxis(out.flat.([]float32), x, ins[1].buf.flat.([]float32), ins[2].buf.flat.([]float32),
				ins[3].buf.flat.([]float32), ins[4].buf.flat.([]float32), float64(p.epsilon), outer, c)
			break
		}
		bnNormalize(out.flat.([]float32), x, ins[1].buf.flat.([]float32), ins[2].buf.flat.([]float32),
			toFloat64s(ins[3].buf.flat.([]float32)), toFloat64s(ins[4].buf.flat.([]float32)), float64(p.epsilon), outer, c, inner)
	case []float64:
		bnNormalize(out.flat.([]float64), x, ins[1].buf.flat.([]float64), ins[2].buf.flat.([]float64),
			ins[3].buf.flat.([]float64), ins[4].buf.flat.([]float64), float64(p.epsilon), outer, c, inner)
	default:
		return nil, fmt.Errorf("BatchNormForInference of %T not supported", x)
	}
	return out, nil
}

func execBatchNormTraining(ex *execState, n *node, ins []*value, lastUse []bool) ([]*Buffer, error) {
	p := n.params.(batchNormParams)
	outer, c, inner := bnLayout(n.multiShapes[0].Dimensions, p.axis)
	xFlat := ins[0].buf.flat
	// x is read fully (statistics) before the normalisation writes out elementwise.
	out := outputLike(ex, n.multiShapes[0], ins, lastUse, 0)
	meanB := ex.b.newBuffer(n.multiShapes[1])
	varB := ex.b.newBuffer(n.multiShapes[2])
	switch x := xFlat.(type) {
	case []float32:
		if inner == 1 {
			bnTrainLastAxis(out.flat.([]float32), meanB.flat.([]float32), varB.flat.([]float32), x,
				ins[1].buf.flat.([]float32), ins[2].buf.flat.([]float32), float64(p.epsilon), outer, c)
			break
		}
		bnTrain(out.flat.([]float32), meanB.flat.([]float32), varB.flat.([]float32), x, ins[1].buf.flat.([]float32),
			ins[2].buf.flat.([]float32), float64(p.epsilon), outer, c, inner)
	case []float64:
		bnTrain(out.flat.([]float64), meanB.flat.([]float64), varB.flat.([]float64), x, ins[1].buf.flat.([]float64),
			ins[2].buf.flat.([]float64), float64(p.epsilon), outer, c, inner)
	default:
		return nil, fmt.Errorf("BatchNormForTraining of %T not supported", x)
	}
	return []*Buffer{out, meanB, varB}, nil
}

func bnTrain[T floatT](out, meanOut, varOut, x, scale, offset []T, eps float64, outer, c, inner int) {
	mean, variance := bnMoments(x, outer, c, inner)
	bnNormalize(out, x, scale, offset, mean, variance, eps, outer, c, inner)
	fromFloat64s(meanOut, mean)
	fromFloat64s(varOut, variance)
}

func execBatchNormGradient(ex *execState, n *node, ins []*value, lastUse []bool) ([]*Buffer, error) {
	p := n.params.(batchNormParams)
	outer, c, inner := bnLayout(n.multiShapes[0].Dimensions, p.axis)
	xFlat, gFlat := ins[0].buf.flat, ins[4].buf.flat
	// ∂x[i] depends on ∂y[i] and x[i] only, once the sums are taken: it may overwrite either.
	gx := outputLike(ex, n.multiShapes[0], ins, lastUse, 4, 0)
	gs := ex.b.newBuffer(n.multiShapes[1])
	gb := ex.b.newBuffer(n.multiShapes[2])
	switch x := xFlat.(type) {
	case []float32:
		if inner == 1 {
			bnGradLastAxis(gx.flat.([]float32), gs.flat.([]float32), gb.flat.([]float32), x, ins[1].buf.flat.([]float32),
				ins[2].buf.flat.([]float32), ins[3].buf.flat.([]float32), gFlat.([]float32),
				float64(p.epsilon), outer, c)
			break
		}
		bnGrad(gx.flat.([]float32), gs.flat.([]float32), gb.flat.([]float32), x, ins[1].buf.flat.([]float32),
			ins[2].buf.flat.([]float32), ins[3].buf.flat.([]float32), gFlat.([]float32),
			float64(p.epsilon), outer, c, inner)
	case []float64:
		bnGrad(gx.flat.([]float64), gs.flat.([]float64), gb.flat.([]float64), x, ins[1].buf.flat.([]float64),
			ins[2].buf.flat.([]float64), ins[3].buf.flat.([]float64), gFlat.([]float64),
			float64(p.epsilon), outer, c, inner)
	default:
		return nil, fmt.Errorf("BatchNormGradient of %T not supported", x)
	}
	return []*Buffer{gx, gs, gb}, nil
}

// bnGrad computes, with x̂ = (x-μ)/√(σ²+ε) and N the count per feature:
// ∂offset = Σg, ∂scale = Σ g·x̂, ∂x = scale/√(σ²+ε) · (g - ∂offset/N - x̂·∂scale/N).
func bnGrad[T floatT](gx, gScale, gOffset, x, scale, mean, variance, g []T, eps float64, outer, c, inner int) {
	n := float64(outer * inner)
	rstd := make([]float64, c)
	for i := range rstd {
		rstd[i] = 1 / math.Sqrt(float64(variance[i])+eps)
	}
	sumG := make([]float64, c)
	sumGX := make([]float64, c)
	bnForEach(x, outer, c, inner, func(ch, off int, run []T) {
		m, r := float64(mean[ch]), rstd[ch]
		gr := g[off : off+len(run)]
		s, sx := 0.0, 0.0
		for j, v := range run {
			gv := float64(gr[j])
			s += gv
			sx += gv * (float64(v) - m) * r
		}
		sumG[ch] += s
		sumGX[ch] += sx
	})
	bnForEach(x, outer, c, inner, func(ch, off int, run []T) {
		m, r := float64(mean[ch]), rstd[ch]
		k := float64(scale[ch]) * r
		mg, mgx := sumG[ch]/n, sumGX[ch]/n
		gr := g[off : off+len(run)]
		o := gx[off : off+len(run)]
		for j, v := range run {
			xh := (float64(v) - m) * r
			o[j] = T(k * (float64(gr[j]) - mg - xh*mgx))
		}
	})
	fromFloat64s(gScale, sumGX)
	fromFloat64s(gOffset, sumG)
}
