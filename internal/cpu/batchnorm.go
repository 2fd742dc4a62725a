package cpu

import (
	"fmt"
	"math"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

type batchNormParams struct {
	epsilon float32
	axis    int
	// relu makes a training batch norm also output max(y, 0), as a fourth output: set when the
	// executable is compiled, for a ReLU of y that then takes it (see fuseBatchNormReLU).
	relu bool
	// residual (with relu) makes a training batch norm's first output y + s, s its fourth input: set
	// when the executable is compiled, for a ReLU of a residual sum y + s that is y's only use.
	residual bool
	// mask (with relu) makes a training batch norm's first output, instead of y (or y + s), the
	// bits of y ≥ 0 (or y + s ≥ 0; bnMaskShape): set when the executable is compiled, for a y read
	// by nothing but its ReLU and ReLU gradients (see fuseReLUMask).
	mask bool
	// coefs makes a training batch norm write, as its first output, its normalisation's
	// per-feature coefficients [hi, lo, a, b] (bnCoefsShape) instead of y, and skip that pass: set
	// when the executable is compiled, for a y whose only use is as the residual s of a batch norm
	// with mask (a shortcut's), which then normalises this one's operand itself (resNorm; see
	// fuseShortcutNorm).
	coefs bool
	// resNorm (with residual) makes a training batch norm take s as the normalisation of a fifth
	// input x_s with the coefficients in its fourth (another batch norm's, with coefs).
	resNorm bool
}

// bnCoefsShape is the shape of the per-feature coefficients [hi, lo, a, b] of a batch norm's
// normalisation ((x − hi) − lo)·a + b over c features.
func bnCoefsShape(c int) shapes.Shape { return shapes.Make(dtypes.Float32, 4*c) }

// bnMaskShape is the shape of the buffer holding the bits of y ≥ 0 for n elements: element i at
// bit i mod 32 of word i/32 (a float32 buffer viewed as uint32 words, see bitsOf).
func bnMaskShape(n int) shapes.Shape { return shapes.Make(dtypes.Float32, (n+31)/32) }

func (b *Builder) checkBatchNorm(ctx string, operand *node, axis int, perFeature ...*node) error {
	s := operand.shape
	if !s.DType.IsFloat() || axis < 0 || axis >= s.Rank() {
		return fmt.Errorf("cpu: %s(%s, axis=%d): needs a float operand and a valid feature axis", ctx, s, axis)
	}
	for _, n := range perFeature {
		if !n.shape.Equal(shapes.Make(s.DType, s.Dimensions[axis])) {
			return fmt.Errorf("cpu: %s(%s, axis=%d): per-feature operand is %s, want [%d]", ctx, s, axis, n.shape,
				s.Dimensions[axis])
		}
	}
	return nil
}

// BatchNormForInference implements backends.Builder.
func (b *Builder) BatchNormForInference(operand, scale, offset, mean, variance backends.Op, epsilon float32,
	featureAxis int) (backends.Op, error) {
	ns, err := b.nodes2("BatchNormForInference", operand, scale, offset, mean, variance)
	if err != nil {
		return nil, err
	}
	if err := b.checkBatchNorm("BatchNormForInference", ns[0], featureAxis, ns[1:]...); err != nil {
		return nil, err
	}
	return b.add(backends.OpTypeBatchNormForInference, ns[0].shape, batchNormParams{epsilon: epsilon, axis: featureAxis}, ns...), nil
}

// BatchNormForTraining implements backends.Builder: it returns the normalised operand, the batch
// mean and the (biased) batch variance.
func (b *Builder) BatchNormForTraining(operand, scale, offset backends.Op, epsilon float32, featureAxis int) (
	backends.Op, backends.Op, backends.Op, error) {
	ns, err := b.nodes2("BatchNormForTraining", operand, scale, offset)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := b.checkBatchNorm("BatchNormForTraining", ns[0], featureAxis, ns[1:]...); err != nil {
		return nil, nil, nil, err
	}
	fs := ns[1].shape
	outs := b.addMulti(backends.OpTypeBatchNormForTraining, []shapes.Shape{ns[0].shape, fs, fs},
		batchNormParams{epsilon: epsilon, axis: featureAxis}, ns...)
	return outs[0], outs[1], outs[2], nil
}

// BatchNormGradient implements backends.Builder.
func (b *Builder) BatchNormGradient(operand, scale, mean, variance, gradOutput backends.Op, epsilon float32,
	featureAxis int) (backends.Op, backends.Op, backends.Op, error) {
	ns, err := b.nodes2("BatchNormGradient", operand, scale, mean, variance, gradOutput)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := b.checkBatchNorm("BatchNormGradient", ns[0], featureAxis, ns[1:4]...); err != nil {
		return nil, nil, nil, err
	}
	if !ns[4].shape.Equal(ns[0].shape) {
		return nil, nil, nil, fmt.Errorf("cpu: BatchNormGradient: gradOutput %s must be shaped like operand %s",
			ns[4].shape, ns[0].shape)
	}
	fs := ns[1].shape
	outs := b.addMulti(backends.OpTypeBatchNormGradient, []shapes.Shape{ns[0].shape, fs, fs},
		batchNormParams{epsilon: epsilon, axis: featureAxis}, ns...)
	return outs[0], outs[1], outs[2], nil
}

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
	var out *Buffer
	switch {
	case p.mask:
		out = ex.b.newBuffer(bnMaskShape(n.multiShapes[0].Size()))
	case p.coefs:
		out = ex.b.newBuffer(bnCoefsShape(c))
	default:
		out = outputLike(ex, n.multiShapes[0], ins, lastUse, 0)
	}
	meanB := ex.b.newBuffer(n.multiShapes[1])
	varB := ex.b.newBuffer(n.multiShapes[2])
	var reluB *Buffer
	if p.relu {
		reluB = ex.b.newBuffer(n.multiShapes[3])
	}
	switch x := xFlat.(type) {
	case []float32:
		if inner == 1 {
			var o bnTrainOut
			if reluB != nil {
				o.relu = reluB.flat.([]float32)
			}
			if p.residual {
				o.res = ins[3].buf.flat.([]float32)
			}
			if p.resNorm {
				o.resX, o.resCoefs, o.res = ins[4].buf.flat.([]float32), o.res, nil
			}
			switch y := out.flat.([]float32); {
			case p.mask:
				o.mask = bitsOf(y)
			case p.coefs:
				o.coefs = y
			default:
				o.y = y
			}
			bnTrainLastAxis(o, meanB.flat.([]float32), varB.flat.([]float32), x, ins[1].buf.flat.([]float32),
				ins[2].buf.flat.([]float32), float64(p.epsilon), outer, c)
			if reluB == nil {
				return []*Buffer{out, meanB, varB}, nil
			}
			return []*Buffer{out, meanB, varB, reluB}, nil
		}
		bnTrain(out.flat.([]float32), meanB.flat.([]float32), varB.flat.([]float32), x, ins[1].buf.flat.([]float32),
			ins[2].buf.flat.([]float32), float64(p.epsilon), outer, c, inner)
	case []float64:
		bnTrain(out.flat.([]float64), meanB.flat.([]float64), varB.flat.([]float64), x, ins[1].buf.flat.([]float64),
			ins[2].buf.flat.([]float64), float64(p.epsilon), outer, c, inner)
	default:
		return nil, fmt.Errorf("BatchNormForTraining of %T not supported", x)
	}
	if reluB == nil {
		return []*Buffer{out, meanB, varB}, nil
	}
	switch y := out.flat.(type) {
	case []float32:
		if p.residual {
			addRowsTo(y, ins[3].buf.flat.([]float32), len(y))
		}
		reluRows(reluB.flat.([]float32), y, len(y))
	case []float64:
		r := reluB.flat.([]float64)
		for i, v := range y {
			if p.residual {
				v += ins[3].buf.flat.([]float64)[i]
				y[i] = v
			}
			r[i] = max(v, 0)
		}
	}
	return []*Buffer{out, meanB, varB, reluB}, nil
}

// addRowsTo adds s to y over the first n elements (one rounded float32 add each, as Add).
func addRowsTo(y, s []float32, n int) {
	y, s = y[:n], s[:n]
	for i, v := range s {
		y[i] += v
	}
}

// reluRows writes relu = max(y, 0) (Go's max: NaN stays NaN, ±0 gives +0) over the first n
// elements.
func reluRows(relu, y []float32, n int) {
	y, relu = y[:n], relu[:n]
	for i, v := range y {
		relu[i] = max(v, 0)
	}
}

// fuseBatchNormReLU finds the ReLUs, Max(y, 0), of the normalised output y of a float32 training
// batch norm over the last axis (a CNN's batch norm and activation), and those, Max(y + s, 0), of
// a residual sum that is y's only use, among the live nodes not in a fused program: each such batch
// norm is set to write max(y, 0), or y + s and max(y + s, 0), in its normalisation pass (saving one
// or three passes over the tensor), the ReLU then takes that output, and the sum takes the batch
// norm's first output, which is then y + s. It returns the batch norm of each such ReLU by the
// ReLU's id, and the sums by their id (with the batch norm's first output, the sum's input they
// take). inputs and the batch norms' parameters are changed accordingly.
func fuseBatchNormReLU(nodes []*node, inputs [][]*node, live, isOutput []bool, fused map[int]*fusedProgram) (
	reluOf, sumOf map[int]*node) {
	reluOf, sumOf = map[int]*node{}, map[int]*node{}
	uses := liveUses(nodes, inputs, live)
	// normalised returns the batch norm whose first output t is, or nil.
	normalised := func(t *node, shape shapes.Shape) *node {
		if t.op != opTupleElement || t.index != 0 || !t.shape.Equal(shape) {
			return nil
		}
		bn := t.inputs[0]
		if bn.op != backends.OpTypeBatchNormForTraining || !live[bn.id] {
			return nil
		}
		if p := bn.params.(batchNormParams); p.relu || p.axis != shape.Rank()-1 {
			return nil
		}
		return bn
	}
	for _, m := range nodes {
		if !live[m.id] || m.op != backends.OpTypeMax || fused[m.id] != nil || m.shape.DType != dtypes.Float32 ||
			len(inputs[m.id]) != 2 {
			continue
		}
		for j := range 2 {
			t, z := inputs[m.id][j], inputs[m.id][1-j]
			if !isPositiveZero32(z) {
				continue
			}
			bn := normalised(t, m.shape)
			var res *node
			if bn == nil && t.op == backends.OpTypeAdd && live[t.id] && fused[t.id] == nil && t.shape.Equal(m.shape) &&
				len(inputs[t.id]) == 2 {
				// A residual sum y + s: y used only here, s computed before the batch norm.
				for k := range 2 {
					y, s := inputs[t.id][k], inputs[t.id][1-k]
					b := normalised(y, m.shape)
					if b != nil && uses[y.id] == 1 && !isOutput[y.id] && s != y && s.shape.Equal(m.shape) && s.id < b.id {
						bn, res = b, s
						sumOf[t.id] = y
						break
					}
				}
			}
			if bn == nil {
				continue
			}
			p := bn.params.(batchNormParams)
			p.relu = true
			if res != nil {
				p.residual = true
				inputs[bn.id] = append(slices.Clone(inputs[bn.id]), res)
			}
			bn.params = p
			bn.multiShapes = append(slices.Clone(bn.multiShapes), m.shape)
			reluOf[m.id] = bn
			break
		}
	}
	return reluOf, sumOf
}

// maskFusionPays reports whether fuseReLUMask (and so fuseShortcutNorm) is applied to a batch norm
// of c features in executables compiled now: on the AVX-512 path with c a multiple of 16, where
// the 16-lane loops write and read the mask. Elsewhere they run as portable Go loops, which took
// about 3× the time of the unfused AVX2 passes they replace (resnet8x4 step with
// IFA_CPU_ISA=avx2: batch norm forward 22 → 70 ms per step). A variable for the tests, which check
// the fused programs on every path.
var maskFusionPays = func(c int) bool { return vec16() && c%16 == 0 }

// fuseReLUMask finds the batch norms that compute their ReLU (see fuseBatchNormReLU) whose ReLU
// input y (the normalised output, or the residual sum) is read by nothing but that ReLU and
// ReLU-gradient programs y ≥ +0 ? t : f (fused.go's reluGrad): such a batch norm then writes, as
// its first output, the bits of y ≥ 0 (bnMaskShape, 1/32 of y's bytes) instead of y, and the
// programs read those bits. y is then neither written by the forward pass nor read back by the
// backward pass.
func fuseReLUMask(nodes []*node, inputs [][]*node, live, isOutput []bool, fused map[int]*fusedProgram,
	reluOf, sumOf map[int]*node) {
	users := liveUsers(nodes, inputs, live)
	sumOfTuple := map[int]*node{} // the residual sum that takes a batch norm's first output
	for id, t := range sumOf {
		sumOfTuple[t.id] = nodes[id]
	}
	for _, t := range nodes {
		if !live[t.id] || t.op != opTupleElement || t.index != 0 {
			continue
		}
		bn := t.inputs[0]
		if bn.op != backends.OpTypeBatchNormForTraining {
			continue
		}
		p := bn.params.(batchNormParams)
		if !p.relu || p.mask || !maskFusionPays(t.shape.Dimensions[p.axis]) {
			continue
		}
		y := t
		if p.residual {
			if y = sumOfTuple[t.id]; y == nil {
				continue
			}
		}
		if isOutput[y.id] {
			continue
		}
		var progs []*reluGrad
		ok := true
		for _, u := range users[y.id] {
			if reluOf[u.id] == bn {
				continue
			}
			prog := fused[u.id]
			if prog == nil || prog.reluGrad == nil {
				ok = false
				break
			}
			m, ls := prog.reluGrad, inputs[u.id]
			if ls[m.y] != y || ls[m.g] == y || (m.g2 >= 0 && ls[m.g2] == y) || !isPositiveZero32(ls[m.z]) {
				ok = false
				break
			}
			progs = append(progs, m)
		}
		if !ok || len(progs) == 0 {
			continue
		}
		p.mask = true
		bn.params = p
		for _, m := range progs {
			m.mask = true
		}
	}
}

// fuseShortcutNorm finds the batch norms with mask and a residual (see fuseReLUMask) whose
// residual s is the normalised output of another float32 training batch norm over the last axis (a
// shortcut's) that nothing else reads but the residual sum: that batch norm then writes only its
// statistics and its normalisation's coefficients (batchNormParams.coefs), and the first one
// normalises the shortcut's operand itself where it adds s (resNorm), so s is never written nor
// read back.
func fuseShortcutNorm(nodes []*node, inputs [][]*node, live, isOutput []bool, sumOf map[int]*node) {
	users := liveUsers(nodes, inputs, live)
	for _, b := range nodes {
		if !live[b.id] || b.op != backends.OpTypeBatchNormForTraining {
			continue
		}
		p := b.params.(batchNormParams)
		if !p.residual || !p.mask || p.resNorm || len(inputs[b.id]) != 4 {
			continue
		}
		res := inputs[b.id][3]
		if res.op != opTupleElement || res.index != 0 || isOutput[res.id] || !res.shape.Equal(inputs[b.id][0].shape) {
			continue
		}
		bs := res.inputs[0]
		if bs.op != backends.OpTypeBatchNormForTraining || !live[bs.id] || len(inputs[bs.id]) != 3 {
			continue
		}
		ps := bs.params.(batchNormParams)
		if ps.relu || ps.coefs || ps.axis != res.shape.Rank()-1 || res.shape.DType != dtypes.Float32 {
			continue
		}
		ok := true
		for _, u := range users[res.id] {
			if t := sumOf[u.id]; u != b && (t == nil || t.inputs[0] != b) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		ps.coefs = true
		bs.params = ps
		p.resNorm = true
		b.params = p
		inputs[b.id] = append(slices.Clone(inputs[b.id]), inputs[bs.id][0])
	}
}

// isPositiveZero32 reports whether n is a float32 constant holding one +0.
func isPositiveZero32(n *node) bool {
	if n.op != backends.OpTypeConstant || n.shape.DType != dtypes.Float32 || n.shape.Size() != 1 {
		return false
	}
	buf, ok := n.params.(*Buffer)
	if !ok {
		return false
	}
	v, ok := buf.flat.([]float32)
	return ok && len(v) == 1 && math.Float32bits(v[0]) == 0
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

// bnBlockRows is the number of rows summed in float32 before the sums are added in float64.
const bnBlockRows = 32

// bnChunkElems is about the number of elements of a chunk of rows (the unit of work of a goroutine).
const bnChunkElems = 1 << 14

// bnShiftSamples is the number of rows sampled to estimate the mean used as the shift.
const bnShiftSamples = 32

// Fast batch norm for float32 operands whose feature axis is the last one (channels-last: rows of
// C features). The training forward pass reads x twice (per-feature sums, then the normalisation),
// the gradient reads x and ∂y twice (Σ∂y and Σ∂y·(x−μ), then ∂x). Sums are taken in float32 over
// blocks of at most bnBlockRows rows and added in float64; rows are cut into fixed chunks whose
// float64 partial sums are merged in chunk order, so results do not depend on how the chunks are
// spread over goroutines. The batch statistics are sums of x − k, with k a per-feature estimate of
// the mean from a few sampled rows, so the variance stays accurate when |μ| ≫ σ.

// bnChunkedSums writes per-feature float64 sums s1, s2 ([c]) over rows [0, rows): block(r0, r1,
// b1, b2) must write into b1, b2 ([c]) the float32 sums of rows [r0, r1) (at most bnBlockRows).
func bnChunkedSums(s1, s2 []float64, rows, c int, block func(r0, r1 int, b1, b2 []float32)) {
	chunkRows := max(bnBlockRows, bnChunkElems/max(c, 1)/bnBlockRows*bnBlockRows)
	nChunks := (rows + chunkRows - 1) / chunkRows
	partP := getScratch[float64](nChunks * 2 * c)
	defer putScratch(partP)
	part := *partP
	clear(part)
	parallelFor(nChunks, 1, func(k0, k1 int) {
		bp := getScratch[float32](2 * c)
		defer putScratch(bp)
		b1, b2 := (*bp)[:c], (*bp)[c:]
		for k := k0; k < k1; k++ {
			p1 := part[k*2*c : k*2*c+c]
			p2 := part[k*2*c+c : (k+1)*2*c]
			end := min(rows, (k+1)*chunkRows)
			for r := k * chunkRows; r < end; r += bnBlockRows {
				block(r, min(end, r+bnBlockRows), b1, b2)
				addRows32(p1, b1, c) // p1[j] += float64(b1[j]), with the vector loops
				addRows32(p2, b2, c)
			}
		}
	})
	s1, s2 = s1[:c], s2[:c]
	clear(s1)
	clear(s2)
	for k := 0; k < nChunks; k++ {
		p1 := part[k*2*c : k*2*c+c]
		p2 := part[k*2*c+c : (k+1)*2*c]
		for j := range s1 {
			s1[j] += p1[j]
			s2[j] += p2[j]
		}
	}
}

// bnShift writes to k ([c]) an estimate of the per-feature mean of x ([rows, c]) from up to
// bnShiftSamples rows spread over it, summed in acc ([c]).
func bnShift(k []float32, acc []float64, x []float32, rows, c int) {
	n := min(rows, bnShiftSamples)
	acc = acc[:c]
	clear(acc)
	for i := 0; i < n; i++ {
		r := i * rows / n
		for j, v := range x[r*c : (r+1)*c] {
			acc[j] += float64(v)
		}
	}
	for j := range k[:c] {
		k[j] = float32(acc[j] / float64(max(n, 1)))
	}
}

// bnTrainOut is what bnTrainLastAxis writes besides the statistics, and the residual it adds.
type bnTrainOut struct {
	y    []float32 // the normalised value (plus s with a residual)
	mask []uint32  // with relu, instead of y: the bits of y ≥ 0 (see bnMaskShape)
	relu []float32 // max(y, 0)
	res  []float32 // the residual s
	// resX and resCoefs, instead of res: s = ((resX − hi) − lo)·a + b with resCoefs = [hi, lo, a, b].
	resX, resCoefs []float32
	// coefs, instead of y: the coefficients [hi, lo, a, b] of the normalisation, which is skipped.
	coefs []float32
}

// bnTrainLastAxis is BatchNormForTraining of x ([rows, c], float32): y = (x−μ)·γ/√(σ²+ε) + β
// with μ, σ² the per-feature mean and biased variance, written to meanOut and varOut ([c]); y and
// what else o asks for go to o.
func bnTrainLastAxis(o bnTrainOut, meanOut, varOut, x, scale, offset []float32, eps float64, rows, c int) {
	out, mask, relu, res := o.y, o.mask, o.relu, o.res
	f32, f64 := getScratch[float32](4*c), getScratch[float64](3*c)
	defer putScratch(f32)
	defer putScratch(f64)
	shift, hi, lo, a := (*f32)[:c], (*f32)[c:2*c], (*f32)[2*c:3*c], (*f32)[3*c:]
	s1, s2 := (*f64)[:c], (*f64)[c:2*c]
	bnShift(shift, (*f64)[2*c:], x, rows, c)
	bnChunkedSums(s1, s2, rows, c, func(r0, r1 int, b1, b2 []float32) {
		bnMomentsBlock(b1, b2, x[r0*c:r1*c], shift)
	})
	n := float64(rows)
	// The normalisation is ((x − μhi) − μlo)·a + β, with μ = μhi + μlo split in two float32s: x − μhi
	// is exact when x is near μ, so the deviation keeps its precision when |μ| ≫ σ.
	for j := range c {
		d := s1[j] / n
		mean := float64(shift[j]) + d
		variance := max(0, s2[j]/n-d*d)
		meanOut[j] = float32(mean)
		varOut[j] = float32(variance)
		hi[j] = float32(mean)
		lo[j] = float32(mean - float64(hi[j]))
		a[j] = float32(float64(scale[j]) / math.Sqrt(variance+eps))
	}
	if o.coefs != nil {
		copy(o.coefs, hi)
		copy(o.coefs[c:], lo)
		copy(o.coefs[2*c:], a)
		copy(o.coefs[3*c:4*c], offset)
		return
	}
	if mask != nil {
		// Chunks of whole rows that start on a mask word: unit rows hold a multiple of 32 elements.
		unit := 32 / gcd(c, 32)
		parallelFor((rows+unit-1)/unit, max(1, elemGrain/max(c*unit, 1)), func(u0, u1 int) {
			r0, r1 := u0*unit, min(rows, u1*unit)
			var s []float32
			switch {
			case o.resX != nil:
				k := o.resCoefs
				bnNormalize2AddReLUMaskRows(mask[r0*c/32:], relu[r0*c:r1*c], x[r0*c:r1*c], o.resX[r0*c:r1*c], hi, lo, a,
					offset, k[:c], k[c:2*c], k[2*c:3*c], k[3*c:4*c])
				return
			case res != nil:
				s = res[r0*c : r1*c]
			}
			bnNormalizeReLUMaskRows(mask[r0*c/32:], relu[r0*c:r1*c], x[r0*c:r1*c], s, hi, lo, a, offset)
		})
		return
	}
	parallelFor(rows, max(1, elemGrain/max(c, 1)), func(r0, r1 int) {
		switch {
		case res != nil:
			bnNormalizeAddReLURows(out[r0*c:r1*c], relu[r0*c:r1*c], x[r0*c:r1*c], res[r0*c:r1*c], hi, lo, a, offset)
			return
		case relu != nil:
			bnNormalizeReLURows(out[r0*c:r1*c], relu[r0*c:r1*c], x[r0*c:r1*c], hi, lo, a, offset)
			return
		}
		bnNormalizeRows(out[r0*c:r1*c], x[r0*c:r1*c], hi, lo, a, offset)
	})
}

// bnInferLastAxis is BatchNormForInference of x ([rows, c], float32): out = (x−μ)·γ/√(σ²+ε) + β
// with the given per-feature μ and σ².
func bnInferLastAxis(out, x, scale, offset, mean, variance []float32, eps float64, rows, c int) {
	f32 := getScratch[float32](2 * c)
	defer putScratch(f32)
	a, zero := (*f32)[:c], (*f32)[c:]
	for j := range c {
		a[j] = float32(float64(scale[j]) / math.Sqrt(float64(variance[j])+eps))
	}
	clear(zero)
	parallelFor(rows, max(1, elemGrain/max(c, 1)), func(r0, r1 int) {
		bnNormalizeRows(out[r0*c:r1*c], x[r0*c:r1*c], mean, zero, a, offset)
	})
}

// bnGradLastAxis is BatchNormGradient of x ([rows, c], float32) given the per-feature γ, μ, σ²
// and ∂y: with x̂ = (x−μ)·r, r = 1/√(σ²+ε) and N = rows, ∂β = Σ∂y, ∂γ = Σ∂y·x̂ and
// ∂x = γ·r·(∂y − ∂β/N − x̂·∂γ/N).
func bnGradLastAxis(gx, gScale, gOffset, x, scale, mean, variance, g []float32, eps float64, rows, c int) {
	f32, f64 := getScratch[float32](3*c), getScratch[float64](2*c)
	defer putScratch(f32)
	defer putScratch(f64)
	ka, kb, kd := (*f32)[:c], (*f32)[c:2*c], (*f32)[2*c:]
	sg, sgx := (*f64)[:c], (*f64)[c:]
	bnChunkedSums(sg, sgx, rows, c, func(r0, r1 int, b1, b2 []float32) {
		bnGradSumsBlock(b1, b2, g[r0*c:r1*c], x[r0*c:r1*c], mean)
	})
	n := float64(rows)
	for j := range c {
		r := 1 / math.Sqrt(float64(variance[j])+eps)
		s := float64(scale[j])
		gOffset[j] = float32(sg[j])
		gScale[j] = float32(sgx[j] * r)
		// ∂x = s·r·∂y − s·r³·Σ∂y(x−μ)/N·(x−μ) − s·r·Σ∂y/N.
		ka[j] = float32(s * r)
		kb[j] = float32(-s * r * r * r * sgx[j] / n)
		kd[j] = float32(-s * r * sg[j] / n)
	}
	parallelFor(rows, max(1, elemGrain/max(c, 1)), func(r0, r1 int) {
		bnGradRows(gx[r0*c:r1*c], g[r0*c:r1*c], x[r0*c:r1*c], mean, ka, kb, kd)
	})
}

// The row kernels below are the portable versions; bnMomentsBlock, bnNormalizeRows, bnGradSumsBlock
// and bnGradRows dispatch to SIMD ones where they exist. k, hi, lo, a, b, m, ka, kb, kd are [c];
// x, g, out are whole rows of c.

// bnMomentsBlockGo writes s1 = Σ(x−k) and s2 = Σ(x−k)² over the rows of x.
func bnMomentsBlockGo(s1, s2, x, k []float32) {
	c := len(k)
	s1, s2 = s1[:c], s2[:c]
	clear(s1)
	clear(s2)
	for off := 0; off+c <= len(x); off += c {
		row := x[off : off+c]
		for j, kv := range k {
			d := row[j] - kv
			s1[j] += d
			s2[j] += d * d
		}
	}
}

// bnNormalizeRowsGo writes out = ((x − hi) − lo)·a + b.
func bnNormalizeRowsGo(out, x, hi, lo, a, b []float32) {
	c := len(a)
	hi, lo, b = hi[:c], lo[:c], b[:c]
	for off := 0; off+c <= len(x); off += c {
		row := x[off : off+c]
		o := out[off : off+c]
		for j, av := range a {
			o[j] = ((row[j]-hi[j])-lo[j])*av + b[j]
		}
	}
}

// bnGradSumsBlockGo writes s1 = Σg and s2 = Σg·(x−m) over the rows of g and x.
func bnGradSumsBlockGo(s1, s2, g, x, m []float32) {
	c := len(m)
	s1, s2 = s1[:c], s2[:c]
	clear(s1)
	clear(s2)
	for off := 0; off+c <= len(x); off += c {
		row := x[off : off+c]
		gr := g[off : off+c]
		for j, mv := range m {
			gv := gr[j]
			s1[j] += gv
			s2[j] += gv * (row[j] - mv)
		}
	}
}

// bnGradRowsGo writes dx = ka·g + kb·(x−m) + kd.
func bnGradRowsGo(dx, g, x, m, ka, kb, kd []float32) {
	c := len(m)
	ka, kb, kd = ka[:c], kb[:c], kd[:c]
	for off := 0; off+c <= len(x); off += c {
		row := x[off : off+c]
		gr := g[off : off+c]
		o := dx[off : off+c]
		for j, mv := range m {
			o[j] = ka[j]*gr[j] + kb[j]*(row[j]-mv) + kd[j]
		}
	}
}

// gcd returns the greatest common divisor of a and b (> 0).
func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// bnNormalize2AddReLUMaskRowsGo is bnNormalizeReLUMaskRowsGo with s = ((xs − hs) − ls)·as + bs
// (bnNormalizeRows's value, the kernel path's), computed a block of rows at a time.
func bnNormalize2AddReLUMaskRowsGo(mask []uint32, relu, x, xs, hi, lo, a, b, hs, ls, as, bs []float32) {
	c := len(a)
	if c == 0 {
		return
	}
	n := len(x) / c * c
	blockRows := max(1, fuseBlock/c) &^ 31
	if blockRows == 0 {
		blockRows = 32 // whole mask words
	}
	tp := getScratch[float32](blockRows * c)
	defer putScratch(tp)
	for off := 0; off < n; off += blockRows * c {
		end := min(n, off+blockRows*c)
		s := (*tp)[:end-off]
		bnNormalizeRows(s, xs[off:end], hs, ls, as, bs)
		bnNormalizeReLUMaskRowsGo(mask[off/32:], relu[off:end], x[off:end], s, hi, lo, a, b)
	}
}

// bnNormalizeReLUMaskRowsGo writes relu = max(v, 0) and the bits of v ≥ 0 to mask (element i at
// bit i mod 32 of mask[i/32]), v = bnNormalizeRows's value (the kernel path's), plus s when s is
// set, a block of rows at a time.
func bnNormalizeReLUMaskRowsGo(mask []uint32, relu, x, s, hi, lo, a, b []float32) {
	c := len(a)
	if c == 0 {
		return
	}
	n := len(x) / c * c
	clear(mask[:(n+31)/32])
	blockRows := max(1, fuseBlock/c)
	tp := getScratch[float32](blockRows * c)
	defer putScratch(tp)
	for off := 0; off < n; off += blockRows * c {
		end := min(n, off+blockRows*c)
		v := (*tp)[:end-off]
		bnNormalizeRows(v, x[off:end], hi, lo, a, b)
		if s != nil {
			addRowsTo(v, s[off:end], len(v))
		}
		r := relu[off:end]
		for j, t := range v {
			r[j] = max(t, 0)
			if t >= 0 {
				i := off + j
				mask[i>>5] |= 1 << (i & 31)
			}
		}
	}
}
