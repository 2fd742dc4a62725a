package cpu

import (
	"fmt"
	"math"
	"math/bits"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// ---- Unary ----

func execUnary(ex *execState, n *node, ins []*value, lastUse []bool) (*Buffer, error) {
	src := ins[0].buf.flat
	out := outputLike(ex, n.shape, ins, lastUse, 0)
	var err error
	switch x := src.(type) {
	case []float32:
		o := out.flat.([]float32)
		if k := unaryKernel32(n.op); k != nil {
			parallelFor(len(x), unaryGrain32(n.op), func(s, e int) { k(o[s:e], x[s:e]) })
			break
		}
		err = unaryFloat(n.op, o, x)
	case []float64:
		err = unaryFloat(n.op, out.flat.([]float64), x)
	case []bool:
		if n.op != backends.OpTypeLogicalNot {
			err = fmt.Errorf("op %s not defined for booleans", n.op)
			break
		}
		o := out.flat.([]bool)
		for i, v := range x {
			o[i] = !v
		}
	case []int8:
		err = unaryInt(n.op, out.flat.([]int8), x, 8)
	case []int16:
		err = unaryInt(n.op, out.flat.([]int16), x, 16)
	case []int32:
		err = unaryInt(n.op, out.flat.([]int32), x, 32)
	case []int64:
		err = unaryInt(n.op, out.flat.([]int64), x, 64)
	case []uint8:
		err = unaryInt(n.op, out.flat.([]uint8), x, 8)
	case []uint16:
		err = unaryInt(n.op, out.flat.([]uint16), x, 16)
	case []uint32:
		err = unaryInt(n.op, out.flat.([]uint32), x, 32)
	case []uint64:
		err = unaryInt(n.op, out.flat.([]uint64), x, 64)
	default:
		err = fmt.Errorf("unsupported operand %T", src)
	}
	if err != nil {
		ex.b.recycle(out)
		return nil, err
	}
	return out, nil
}

// unaryGrain32 is the minimum number of elements per goroutine for a float32 unary kernel: the
// transcendental ones cost a few nanoseconds per element, the others about as much as a copy.
func unaryGrain32(op backends.OpType) int {
	switch op {
	case backends.OpTypeAbs, backends.OpTypeNeg, backends.OpTypeSign, backends.OpTypeSqrt:
		return elemGrain
	}
	return elemGrain / 8
}

func unaryFloat[T floatT](op backends.OpType, out, x []T) error {
	var fn func(v T) T
	switch op {
	case backends.OpTypeNeg:
		parallelFor(len(x), elemGrain, func(s, e int) {
			for i := s; i < e; i++ {
				out[i] = -x[i]
			}
		})
		return nil
	case backends.OpTypeAbs:
		fn = func(v T) T { return T(math.Abs(float64(v))) }
	case backends.OpTypeSign:
		parallelFor(len(x), elemGrain, func(s, e int) {
			o, xs := out[s:e], x[s:e]
			xs = xs[:len(o)]
			for i, v := range xs {
				r := v // ±0 and NaN.
				if v > 0 {
					r = 1
				}
				if v < 0 {
					r = -1
				}
				o[i] = r
			}
		})
		return nil
	case backends.OpTypeExp:
		fn = func(v T) T { return T(math.Exp(float64(v))) }
	case backends.OpTypeExpm1:
		fn = func(v T) T { return T(math.Expm1(float64(v))) }
	case backends.OpTypeLog:
		fn = func(v T) T { return T(math.Log(float64(v))) }
	case backends.OpTypeLog1p:
		fn = func(v T) T { return T(math.Log1p(float64(v))) }
	case backends.OpTypeLogistic:
		fn = func(v T) T {
			f := float64(v)
			if f >= 0 {
				return T(1 / (1 + math.Exp(-f)))
			}
			e := math.Exp(f)
			return T(e / (1 + e))
		}
	case backends.OpTypeSqrt:
		fn = func(v T) T { return T(math.Sqrt(float64(v))) }
	case backends.OpTypeRsqrt:
		fn = func(v T) T { return T(1 / math.Sqrt(float64(v))) }
	case backends.OpTypeTanh:
		fn = func(v T) T { return T(math.Tanh(float64(v))) }
	case backends.OpTypeErf:
		fn = func(v T) T { return T(math.Erf(float64(v))) }
	case backends.OpTypeCos:
		fn = func(v T) T { return T(math.Cos(float64(v))) }
	case backends.OpTypeSin:
		fn = func(v T) T { return T(math.Sin(float64(v))) }
	case backends.OpTypeFloor:
		fn = func(v T) T { return T(math.Floor(float64(v))) }
	case backends.OpTypeCeil:
		fn = func(v T) T { return T(math.Ceil(float64(v))) }
	case backends.OpTypeRound:
		fn = func(v T) T { return T(math.RoundToEven(float64(v))) }
	default:
		return fmt.Errorf("op %s not defined for floats", op)
	}
	parallelFor(len(x), elemGrain/8, func(s, e int) {
		for i := s; i < e; i++ {
			out[i] = fn(x[i])
		}
	})
	return nil
}

func unaryInt[T intT](op backends.OpType, out, x []T, nbits int) error {
	var fn func(v T) T
	var zero T
	signed := ^zero < 0
	switch op {
	case backends.OpTypeNeg:
		fn = func(v T) T { return -v }
	case backends.OpTypeAbs:
		fn = func(v T) T {
			if v < 0 {
				return -v
			}
			return v
		}
	case backends.OpTypeSign:
		fn = func(v T) T {
			switch {
			case v > 0:
				return 1
			case v < 0:
				return ^zero // -1 for signed types.
			}
			return 0
		}
	case backends.OpTypeBitwiseNot:
		fn = func(v T) T { return ^v }
	case backends.OpTypeBitCount:
		fn = func(v T) T { return T(bits.OnesCount64(uint64(v) & maskBits(nbits))) }
	case backends.OpTypeClz:
		fn = func(v T) T { return T(bits.LeadingZeros64(uint64(v)&maskBits(nbits)) - (64 - nbits)) }
	default:
		return fmt.Errorf("op %s not defined for integers", op)
	}
	_ = signed
	for i, v := range x {
		out[i] = fn(v)
	}
	return nil
}

func maskBits(n int) uint64 {
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<uint(n) - 1
}

func execIsFiniteNaN(ex *execState, n *node, ins []*value, _ []bool) (*Buffer, error) {
	out := ex.b.newBuffer(n.shape)
	o := out.flat.([]bool)
	isNaN := n.op == backends.OpTypeIsNaN
	switch x := ins[0].buf.flat.(type) {
	case []float32:
		for i, v := range x {
			f := float64(v)
			if isNaN {
				o[i] = math.IsNaN(f)
			} else {
				o[i] = !math.IsNaN(f) && !math.IsInf(f, 0)
			}
		}
	case []float64:
		for i, f := range x {
			if isNaN {
				o[i] = math.IsNaN(f)
			} else {
				o[i] = !math.IsNaN(f) && !math.IsInf(f, 0)
			}
		}
	default:
		return nil, fmt.Errorf("unsupported operand %T", x)
	}
	return out, nil
}

// ---- Binary ----

// broadcastPlan describes how the two operands of a binary op map onto its output.
type broadcastPlan struct {
	n                int // output size
	lScalar, rScalar bool
	general          bool
	rowLen           int   // length of the innermost output axis (general case)
	outDims          []int // output dims (general case)
	lStrides         []int // per-output-axis strides into lhs (0 when broadcast)
	rStrides         []int
}

func planBroadcast(out, l, r shapes.Shape) broadcastPlan {
	p := broadcastPlan{n: out.Size()}
	lSame := l.Size() == p.n && (l.Rank() == out.Rank() || l.IsScalar())
	rSame := r.Size() == p.n && (r.Rank() == out.Rank() || r.IsScalar())
	switch {
	case lSame && rSame:
		return p
	case l.Size() == 1 && rSame:
		p.lScalar = true
		return p
	case r.Size() == 1 && lSame:
		p.rScalar = true
		return p
	case l.Size() == 1 && r.Size() == 1:
		p.lScalar, p.rScalar = true, true
		return p
	}
	p.general = true
	rank := out.Rank()
	p.outDims = out.Dimensions
	p.rowLen = out.Dimensions[rank-1]
	p.lStrides = bcastStrides(l, out)
	p.rStrides = bcastStrides(r, out)
	return p
}

// bcastStrides returns the strides of s (same rank as out, or a scalar) indexed by output axes,
// with 0 on axes of dimension 1 broadcast to a larger output dimension.
func bcastStrides(s, out shapes.Shape) []int {
	strides := make([]int, out.Rank())
	if s.IsScalar() {
		return strides
	}
	st := 1
	for a := out.Rank() - 1; a >= 0; a-- {
		if s.Dimensions[a] != 1 || out.Dimensions[a] == 1 {
			strides[a] = st
		}
		st *= s.Dimensions[a]
	}
	return strides
}

// runBinary drives kernel over the output in contiguous segments; in each call an operand given as
// a 1-element slice with its scalar flag set is broadcast over the segment.
func runBinary[T, O any](p broadcastPlan, out []O, l, r []T, kernel func(out []O, a []T, aS bool, b []T, bS bool)) {
	if !p.general {
		parallelFor(p.n, elemGrain, func(s, e int) {
			a, b := l, r
			if !p.lScalar {
				a = l[s:e]
			}
			if !p.rScalar {
				b = r[s:e]
			}
			kernel(out[s:e], a, p.lScalar, b, p.rScalar)
		})
		return
	}
	rank := len(p.outDims)
	rows := p.n / max(p.rowLen, 1)
	lLast, rLast := p.lStrides[rank-1], p.rStrides[rank-1]
	parallelFor(rows, max(1, elemGrain/max(p.rowLen, 1)), func(s, e int) {
		idx := make([]int, rank-1)
		// Decompose row s into the outer index.
		rem := s
		for a := rank - 2; a >= 0; a-- {
			idx[a] = rem % p.outDims[a]
			rem /= p.outDims[a]
		}
		for row := s; row < e; row++ {
			lo, ro := 0, 0
			for a := 0; a < rank-1; a++ {
				lo += idx[a] * p.lStrides[a]
				ro += idx[a] * p.rStrides[a]
			}
			o := out[row*p.rowLen : (row+1)*p.rowLen]
			var a, b []T
			if lLast == 0 {
				a = l[lo : lo+1]
			} else {
				a = l[lo : lo+p.rowLen]
			}
			if rLast == 0 {
				b = r[ro : ro+1]
			} else {
				b = r[ro : ro+p.rowLen]
			}
			kernel(o, a, lLast == 0, b, rLast == 0)
			for a := rank - 2; a >= 0; a-- {
				idx[a]++
				if idx[a] < p.outDims[a] {
					break
				}
				idx[a] = 0
			}
		}
	})
}

func execBinary(ex *execState, n *node, ins []*value, lastUse []bool) (*Buffer, error) {
	ls, rs := ins[0].buf.shape, ins[1].buf.shape
	plan := planBroadcast(n.shape, ls, rs)
	var cands []int
	if ls.Size() == n.shape.Size() {
		cands = append(cands, 0)
	}
	if rs.Size() == n.shape.Size() {
		cands = append(cands, 1)
	}
	lf, rf := ins[0].buf.flat, ins[1].buf.flat
	out := outputLike(ex, n.shape, ins, lastUse, cands...)
	var err error
	switch l := lf.(type) {
	case []float32:
		if k := binKernel32(n.op); k != nil {
			runBinary(plan, out.flat.([]float32), l, rf.([]float32), k)
			break
		}
		err = binaryFloat(n.op, plan, out.flat.([]float32), l, rf.([]float32))
	case []float64:
		err = binaryFloat(n.op, plan, out.flat.([]float64), l, rf.([]float64))
	case []bool:
		err = binaryBool(n.op, plan, out.flat.([]bool), l, rf.([]bool))
	case []int8:
		err = binaryInt(n.op, plan, out.flat.([]int8), l, rf.([]int8))
	case []int16:
		err = binaryInt(n.op, plan, out.flat.([]int16), l, rf.([]int16))
	case []int32:
		err = binaryInt(n.op, plan, out.flat.([]int32), l, rf.([]int32))
	case []int64:
		err = binaryInt(n.op, plan, out.flat.([]int64), l, rf.([]int64))
	case []uint8:
		err = binaryInt(n.op, plan, out.flat.([]uint8), l, rf.([]uint8))
	case []uint16:
		err = binaryInt(n.op, plan, out.flat.([]uint16), l, rf.([]uint16))
	case []uint32:
		err = binaryInt(n.op, plan, out.flat.([]uint32), l, rf.([]uint32))
	case []uint64:
		err = binaryInt(n.op, plan, out.flat.([]uint64), l, rf.([]uint64))
	default:
		err = fmt.Errorf("unsupported operand %T", lf)
	}
	if err != nil {
		ex.b.recycle(out)
		return nil, err
	}
	return out, nil
}

// floatBinKernel returns the segment kernel for a float binary op, with dedicated loops for the
// common arithmetic ops.
func floatBinKernel[T floatT](op backends.OpType) (func(out, a []T, aS bool, b []T, bS bool), error) {
	var fn func(x, y T) T
	switch op {
	case backends.OpTypeAdd:
		return func(out, a []T, aS bool, b []T, bS bool) {
			switch {
			case !aS && !bS:
				a, b = a[:len(out)], b[:len(out)]
				for i := range out {
					out[i] = a[i] + b[i]
				}
			case aS && !bS:
				s := a[0]
				for i, v := range b[:len(out)] {
					out[i] = s + v
				}
			case !aS && bS:
				s := b[0]
				for i, v := range a[:len(out)] {
					out[i] = v + s
				}
			default:
				for i := range out {
					out[i] = a[0] + b[0]
				}
			}
		}, nil
	case backends.OpTypeSub:
		return func(out, a []T, aS bool, b []T, bS bool) {
			switch {
			case !aS && !bS:
				a, b = a[:len(out)], b[:len(out)]
				for i := range out {
					out[i] = a[i] - b[i]
				}
			case aS && !bS:
				s := a[0]
				for i, v := range b[:len(out)] {
					out[i] = s - v
				}
			case !aS && bS:
				s := b[0]
				for i, v := range a[:len(out)] {
					out[i] = v - s
				}
			default:
				for i := range out {
					out[i] = a[0] - b[0]
				}
			}
		}, nil
	case backends.OpTypeMul:
		return func(out, a []T, aS bool, b []T, bS bool) {
			switch {
			case !aS && !bS:
				a, b = a[:len(out)], b[:len(out)]
				for i := range out {
					out[i] = a[i] * b[i]
				}
			case aS && !bS:
				s := a[0]
				for i, v := range b[:len(out)] {
					out[i] = s * v
				}
			case !aS && bS:
				s := b[0]
				for i, v := range a[:len(out)] {
					out[i] = v * s
				}
			default:
				for i := range out {
					out[i] = a[0] * b[0]
				}
			}
		}, nil
	case backends.OpTypeDiv:
		return func(out, a []T, aS bool, b []T, bS bool) {
			switch {
			case !aS && !bS:
				a, b = a[:len(out)], b[:len(out)]
				for i := range out {
					out[i] = a[i] / b[i]
				}
			case aS && !bS:
				s := a[0]
				for i, v := range b[:len(out)] {
					out[i] = s / v
				}
			case !aS && bS:
				s := b[0]
				for i, v := range a[:len(out)] {
					out[i] = v / s
				}
			default:
				for i := range out {
					out[i] = a[0] / b[0]
				}
			}
		}, nil
	case backends.OpTypeMax:
		return func(out, a []T, aS bool, b []T, bS bool) {
			switch {
			case !aS && !bS:
				a, b = a[:len(out)], b[:len(out)]
				for i := range out {
					out[i] = max(a[i], b[i])
				}
			case aS && !bS:
				s := a[0]
				for i, v := range b[:len(out)] {
					out[i] = max(s, v)
				}
			case !aS && bS:
				s := b[0]
				for i, v := range a[:len(out)] {
					out[i] = max(v, s)
				}
			default:
				for i := range out {
					out[i] = max(a[0], b[0])
				}
			}
		}, nil
	case backends.OpTypeMin:
		fn = func(x, y T) T { return min(x, y) }
	case backends.OpTypeRem:
		fn = func(x, y T) T { return T(math.Mod(float64(x), float64(y))) }
	case backends.OpTypePow:
		fn = func(x, y T) T { return T(math.Pow(float64(x), float64(y))) }
	default:
		return nil, fmt.Errorf("op %s not defined for floats", op)
	}
	return genericBinKernel(fn), nil
}

// float32BinKernel returns the fastest float32 segment kernel of a binary arithmetic op (the
// 8-lane one where there is one), or nil when the op is not defined for floats.
func float32BinKernel(op backends.OpType) func(out, a []float32, aS bool, b []float32, bS bool) {
	if k := binKernel32(op); k != nil {
		return k
	}
	k, _ := floatBinKernel[float32](op)
	return k
}

func genericBinKernel[T, O any](fn func(x, y T) O) func(out []O, a []T, aS bool, b []T, bS bool) {
	return func(out []O, a []T, aS bool, b []T, bS bool) {
		ai, bi := 1, 1
		if aS {
			ai = 0
		}
		if bS {
			bi = 0
		}
		for i := range out {
			out[i] = fn(a[i*ai], b[i*bi])
		}
	}
}

func binaryFloat[T floatT](op backends.OpType, p broadcastPlan, out, l, r []T) error {
	k, err := floatBinKernel[T](op)
	if err != nil {
		return err
	}
	runBinary(p, out, l, r, k)
	return nil
}

func binaryInt[T intT](op backends.OpType, p broadcastPlan, out, l, r []T) error {
	var zero T
	signed := ^zero < 0
	nbits := 8 * int(unsafe.Sizeof(zero))
	var fn func(x, y T) T
	switch op {
	case backends.OpTypeAdd:
		fn = func(x, y T) T { return x + y }
	case backends.OpTypeSub:
		fn = func(x, y T) T { return x - y }
	case backends.OpTypeMul:
		fn = func(x, y T) T { return x * y }
	case backends.OpTypeDiv:
		fn = func(x, y T) T {
			if y == 0 {
				return ^zero // all ones (-1 for signed), as XLA.
			}
			if signed && y == ^zero {
				return -x // avoids the MinInt / -1 trap.
			}
			return x / y
		}
	case backends.OpTypeRem:
		fn = func(x, y T) T {
			if y == 0 {
				return x
			}
			if signed && y == ^zero {
				return 0
			}
			return x % y
		}
	case backends.OpTypePow:
		fn = func(x, y T) T {
			if signed && y < 0 {
				if x == 1 {
					return 1
				}
				if x == ^zero {
					if y%2 == 0 {
						return 1
					}
					return x
				}
				return 0
			}
			result, base := T(1), x
			for e := y; e > 0; e >>= 1 {
				if e&1 == 1 {
					result *= base
				}
				base *= base
			}
			return result
		}
	case backends.OpTypeMax:
		fn = func(x, y T) T { return max(x, y) }
	case backends.OpTypeMin:
		fn = func(x, y T) T { return min(x, y) }
	case backends.OpTypeBitwiseAnd:
		fn = func(x, y T) T { return x & y }
	case backends.OpTypeBitwiseOr:
		fn = func(x, y T) T { return x | y }
	case backends.OpTypeBitwiseXor:
		fn = func(x, y T) T { return x ^ y }
	case backends.OpTypeShiftLeft:
		fn = func(x, y T) T {
			if uint64(y) >= uint64(nbits) {
				return 0
			}
			return x << uint64(y)
		}
	case backends.OpTypeShiftRightArithmetic:
		fn = func(x, y T) T {
			if uint64(y) >= uint64(nbits) {
				if signed && x < 0 {
					return ^zero
				}
				return 0
			}
			if !signed {
				// Arithmetic shift on the bit pattern, as if signed.
				sx := int64(uint64(x) << uint(64-nbits))
				return T(uint64(sx>>(uint64(y)+uint64(64-nbits))) & maskBits(nbits))
			}
			return x >> uint64(y)
		}
	case backends.OpTypeShiftRightLogical:
		fn = func(x, y T) T {
			if uint64(y) >= uint64(nbits) {
				return 0
			}
			return T((uint64(x) & maskBits(nbits)) >> uint64(y))
		}
	default:
		return fmt.Errorf("op %s not defined for integers", op)
	}
	runBinary(p, out, l, r, genericBinKernel(fn))
	return nil
}

func binaryBool(op backends.OpType, p broadcastPlan, out, l, r []bool) error {
	var fn func(x, y bool) bool
	switch op {
	case backends.OpTypeLogicalAnd:
		fn = func(x, y bool) bool { return x && y }
	case backends.OpTypeLogicalOr:
		fn = func(x, y bool) bool { return x || y }
	case backends.OpTypeLogicalXor:
		fn = func(x, y bool) bool { return x != y }
	default:
		return fmt.Errorf("op %s not defined for booleans", op)
	}
	runBinary(p, out, l, r, genericBinKernel(fn))
	return nil
}

// ---- Comparisons ----

func execCompare(ex *execState, n *node, ins []*value, _ []bool) (*Buffer, error) {
	plan := planBroadcast(n.shape, ins[0].buf.shape, ins[1].buf.shape)
	out := ex.b.newBuffer(n.shape)
	o := out.flat.([]bool)
	var err error
	rf := ins[1].buf.flat
	switch l := ins[0].buf.flat.(type) {
	case []float32:
		err = compareTyped(n.op, plan, o, l, rf.([]float32), true)
	case []float64:
		err = compareTyped(n.op, plan, o, l, rf.([]float64), true)
	case []int8:
		err = compareTyped(n.op, plan, o, l, rf.([]int8), false)
	case []int16:
		err = compareTyped(n.op, plan, o, l, rf.([]int16), false)
	case []int32:
		err = compareTyped(n.op, plan, o, l, rf.([]int32), false)
	case []int64:
		err = compareTyped(n.op, plan, o, l, rf.([]int64), false)
	case []uint8:
		err = compareTyped(n.op, plan, o, l, rf.([]uint8), false)
	case []uint16:
		err = compareTyped(n.op, plan, o, l, rf.([]uint16), false)
	case []uint32:
		err = compareTyped(n.op, plan, o, l, rf.([]uint32), false)
	case []uint64:
		err = compareTyped(n.op, plan, o, l, rf.([]uint64), false)
	case []bool:
		r := rf.([]bool)
		switch n.op {
		case backends.OpTypeEqual, backends.OpTypeEqualTotalOrder:
			runBinary(plan, o, l, r, genericBinKernel(func(x, y bool) bool { return x == y }))
		case backends.OpTypeNotEqual, backends.OpTypeNotEqualTotalOrder:
			runBinary(plan, o, l, r, genericBinKernel(func(x, y bool) bool { return x != y }))
		default:
			err = fmt.Errorf("op %s not defined for booleans", n.op)
		}
	default:
		err = fmt.Errorf("unsupported operand %T", l)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// totalOrderKey maps a float to an integer whose order is the IEEE total order
// (-NaN < -Inf < ... < -0 < +0 < ... < +Inf < +NaN).
func totalOrderKey(f float64) int64 {
	b := int64(math.Float64bits(f))
	if b < 0 {
		b ^= math.MaxInt64
	}
	return b
}

func compareTyped[T numT](op backends.OpType, p broadcastPlan, out []bool, l, r []T, isFloat bool) error {
	if k := orderedCompareKernel[T](op); k != nil {
		runBinary(p, out, l, r, k)
		return nil
	}
	var fn func(x, y T) bool
	switch op {
	case backends.OpTypeEqual:
		fn = func(x, y T) bool { return x == y }
	case backends.OpTypeNotEqual:
		fn = func(x, y T) bool { return x != y }
	case backends.OpTypeGreaterOrEqual:
		fn = func(x, y T) bool { return x >= y }
	case backends.OpTypeGreaterThan:
		fn = func(x, y T) bool { return x > y }
	case backends.OpTypeLessOrEqual:
		fn = func(x, y T) bool { return x <= y }
	case backends.OpTypeLessThan:
		fn = func(x, y T) bool { return x < y }
	case backends.OpTypeEqualTotalOrder, backends.OpTypeNotEqualTotalOrder, backends.OpTypeGreaterOrEqualTotalOrder,
		backends.OpTypeGreaterThanTotalOrder, backends.OpTypeLessOrEqualTotalOrder, backends.OpTypeLessThanTotalOrder:
		cmp := func(x, y T) int {
			if isFloat {
				kx, ky := totalOrderKey(float64(x)), totalOrderKey(float64(y))
				switch {
				case kx < ky:
					return -1
				case kx > ky:
					return 1
				}
				return 0
			}
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
		switch op {
		case backends.OpTypeEqualTotalOrder:
			fn = func(x, y T) bool { return cmp(x, y) == 0 }
		case backends.OpTypeNotEqualTotalOrder:
			fn = func(x, y T) bool { return cmp(x, y) != 0 }
		case backends.OpTypeGreaterOrEqualTotalOrder:
			fn = func(x, y T) bool { return cmp(x, y) >= 0 }
		case backends.OpTypeGreaterThanTotalOrder:
			fn = func(x, y T) bool { return cmp(x, y) > 0 }
		case backends.OpTypeLessOrEqualTotalOrder:
			fn = func(x, y T) bool { return cmp(x, y) <= 0 }
		default:
			fn = func(x, y T) bool { return cmp(x, y) < 0 }
		}
	default:
		return fmt.Errorf("op %s is not a comparison", op)
	}
	runBinary(p, out, l, r, genericBinKernel(fn))
	return nil
}

// orderedCompareKernel returns a segment kernel with a dedicated loop per operand layout for the
// plain comparisons (nil for the total-order ones).
func orderedCompareKernel[T numT](op backends.OpType) func(out []bool, a []T, aS bool, b []T, bS bool) {
	mk := func(cmp func(x, y T) bool, full func(o []bool, a, b []T), right func(o []bool, a []T, b T), left func(o []bool, a T, b []T)) func(out []bool, a []T, aS bool, b []T, bS bool) {
		return func(out []bool, a []T, aS bool, b []T, bS bool) {
			switch {
			case !aS && !bS:
				full(out, a[:len(out)], b[:len(out)])
			case !aS && bS:
				right(out, a[:len(out)], b[0])
			case aS && !bS:
				left(out, a[0], b[:len(out)])
			default:
				v := cmp(a[0], b[0])
				for i := range out {
					out[i] = v
				}
			}
		}
	}
	switch op {
	case backends.OpTypeGreaterOrEqual:
		return mk(func(x, y T) bool { return x >= y },
			func(o []bool, a, b []T) {
				for i := range o {
					o[i] = a[i] >= b[i]
				}
			},
			func(o []bool, a []T, b T) {
				for i := range o {
					o[i] = a[i] >= b
				}
			},
			func(o []bool, a T, b []T) {
				for i := range o {
					o[i] = a >= b[i]
				}
			})
	case backends.OpTypeGreaterThan:
		return mk(func(x, y T) bool { return x > y },
			func(o []bool, a, b []T) {
				for i := range o {
					o[i] = a[i] > b[i]
				}
			},
			func(o []bool, a []T, b T) {
				for i := range o {
					o[i] = a[i] > b
				}
			},
			func(o []bool, a T, b []T) {
				for i := range o {
					o[i] = a > b[i]
				}
			})
	case backends.OpTypeLessOrEqual:
		return mk(func(x, y T) bool { return x <= y },
			func(o []bool, a, b []T) {
				for i := range o {
					o[i] = a[i] <= b[i]
				}
			},
			func(o []bool, a []T, b T) {
				for i := range o {
					o[i] = a[i] <= b
				}
			},
			func(o []bool, a T, b []T) {
				for i := range o {
					o[i] = a <= b[i]
				}
			})
	case backends.OpTypeLessThan:
		return mk(func(x, y T) bool { return x < y },
			func(o []bool, a, b []T) {
				for i := range o {
					o[i] = a[i] < b[i]
				}
			},
			func(o []bool, a []T, b T) {
				for i := range o {
					o[i] = a[i] < b
				}
			},
			func(o []bool, a T, b []T) {
				for i := range o {
					o[i] = a < b[i]
				}
			})
	}
	return nil
}

// ---- Clamp, Where ----

func execClamp(ex *execState, n *node, ins []*value, lastUse []bool) (*Buffer, error) {
	lo, x, hi := ins[0].buf.flat, ins[1].buf.flat, ins[2].buf.flat
	loS, hiS := ins[0].buf.shape.IsScalar(), ins[2].buf.shape.IsScalar()
	out := outputLike(ex, n.shape, ins, lastUse, 1)
	switch xv := x.(type) {
	case []float32:
		clampTyped(out.flat.([]float32), lo.([]float32), xv, hi.([]float32), loS, hiS)
	case []float64:
		clampTyped(out.flat.([]float64), lo.([]float64), xv, hi.([]float64), loS, hiS)
	case []int8:
		clampTyped(out.flat.([]int8), lo.([]int8), xv, hi.([]int8), loS, hiS)
	case []int16:
		clampTyped(out.flat.([]int16), lo.([]int16), xv, hi.([]int16), loS, hiS)
	case []int32:
		clampTyped(out.flat.([]int32), lo.([]int32), xv, hi.([]int32), loS, hiS)
	case []int64:
		clampTyped(out.flat.([]int64), lo.([]int64), xv, hi.([]int64), loS, hiS)
	case []uint8:
		clampTyped(out.flat.([]uint8), lo.([]uint8), xv, hi.([]uint8), loS, hiS)
	case []uint16:
		clampTyped(out.flat.([]uint16), lo.([]uint16), xv, hi.([]uint16), loS, hiS)
	case []uint32:
		clampTyped(out.flat.([]uint32), lo.([]uint32), xv, hi.([]uint32), loS, hiS)
	case []uint64:
		clampTyped(out.flat.([]uint64), lo.([]uint64), xv, hi.([]uint64), loS, hiS)
	default:
		return nil, fmt.Errorf("unsupported operand %T", x)
	}
	return out, nil
}

func clampTyped[T numT](out, lo, x, hi []T, loS, hiS bool) {
	li, hj := 1, 1
	if loS {
		li = 0
	}
	if hiS {
		hj = 0
	}
	parallelFor(len(x), elemGrain, func(s, e int) {
		for i := s; i < e; i++ {
			v := x[i]
			l, h := lo[i*li], hi[i*hj]
			if v != v { // NaN stays NaN.
				out[i] = v
				continue
			}
			if v < l {
				v = l
			}
			if v > h {
				v = h
			}
			out[i] = v
		}
	})
}

func execWhere(ex *execState, n *node, ins []*value, lastUse []bool) (*Buffer, error) {
	cond := ins[0].buf.flat.([]bool)
	cS := ins[0].buf.shape.IsScalar()
	tS, fS := ins[1].buf.shape.IsScalar(), ins[2].buf.shape.IsScalar()
	var cands []int
	if !tS {
		cands = append(cands, 1)
	}
	if !fS {
		cands = append(cands, 2)
	}
	tf, ff := ins[1].buf.flat, ins[2].buf.flat
	out := outputLike(ex, n.shape, ins, lastUse, cands...)
	switch t := tf.(type) {
	case []float32:
		if !cS {
			whereF32(out.flat.([]float32), cond, t, ff.([]float32), tS, fS)
			break
		}
		whereTyped(out.flat.([]float32), cond, t, ff.([]float32), cS, tS, fS)
	case []float64:
		whereTyped(out.flat.([]float64), cond, t, ff.([]float64), cS, tS, fS)
	case []bool:
		whereTyped(out.flat.([]bool), cond, t, ff.([]bool), cS, tS, fS)
	case []int8:
		whereTyped(out.flat.([]int8), cond, t, ff.([]int8), cS, tS, fS)
	case []int16:
		whereTyped(out.flat.([]int16), cond, t, ff.([]int16), cS, tS, fS)
	case []int32:
		whereTyped(out.flat.([]int32), cond, t, ff.([]int32), cS, tS, fS)
	case []int64:
		whereTyped(out.flat.([]int64), cond, t, ff.([]int64), cS, tS, fS)
	case []uint8:
		whereTyped(out.flat.([]uint8), cond, t, ff.([]uint8), cS, tS, fS)
	case []uint16:
		whereTyped(out.flat.([]uint16), cond, t, ff.([]uint16), cS, tS, fS)
	case []uint32:
		whereTyped(out.flat.([]uint32), cond, t, ff.([]uint32), cS, tS, fS)
	case []uint64:
		whereTyped(out.flat.([]uint64), cond, t, ff.([]uint64), cS, tS, fS)
	default:
		return nil, fmt.Errorf("unsupported operand %T", tf)
	}
	return out, nil
}

// whereF32 is Where for float32 with a full condition, branch-free: the condition byte (0 or 1)
// becomes a bit mask selecting between the two values' bits, so random conditions cost no
// mispredictions. tS (fS) marks a scalar onTrue (onFalse).
func whereF32(out []float32, cond []bool, t, f []float32, tS, fS bool) {
	parallelFor(len(out), elemGrain, func(s, e int) {
		o := out[s:e]
		c := unsafe.Slice((*uint8)(unsafe.Pointer(unsafe.SliceData(cond[s:e]))), len(o))
		tb := unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(t))), len(t))
		fb := unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(f))), len(f))
		ob := unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(o))), len(o))
		switch {
		case !tS && fS:
			tv, fv := tb[s:e], fb[0]
			tv = tv[:len(ob)]
			for i := range ob {
				m := -uint32(c[i] & 1)
				ob[i] = fv ^ ((tv[i] ^ fv) & m)
			}
		case tS && !fS:
			tv, fv := tb[0], fb[s:e]
			fv = fv[:len(ob)]
			for i := range ob {
				m := -uint32(c[i] & 1)
				ob[i] = fv[i] ^ ((tv ^ fv[i]) & m)
			}
		case !tS && !fS:
			tv, fv := tb[s:e], fb[s:e]
			tv, fv = tv[:len(ob)], fv[:len(ob)]
			for i := range ob {
				m := -uint32(c[i] & 1)
				ob[i] = fv[i] ^ ((tv[i] ^ fv[i]) & m)
			}
		default:
			tv, fv := tb[0], fb[0]
			for i := range ob {
				m := -uint32(c[i] & 1)
				ob[i] = fv ^ ((tv ^ fv) & m)
			}
		}
	})
}

func whereTyped[T any](out []T, cond []bool, t, f []T, cS, tS, fS bool) {
	ci, ti, fi := 1, 1, 1
	if cS {
		ci = 0
	}
	if tS {
		ti = 0
	}
	if fS {
		fi = 0
	}
	parallelFor(len(out), elemGrain, func(s, e int) {
		o := out[s:e]
		switch {
		case !cS && !tS && fS: // Where(mask, v, 0), as in ReLU's gradient.
			c, tv, fv := cond[s:e], t[s:e], f[0]
			c, tv = c[:len(o)], tv[:len(o)]
			for i := range o {
				v := fv
				if c[i] {
					v = tv[i]
				}
				o[i] = v
			}
		case !cS && tS && !fS:
			c, tv, fv := cond[s:e], t[0], f[s:e]
			c, fv = c[:len(o)], fv[:len(o)]
			for i := range o {
				v := fv[i]
				if c[i] {
					v = tv
				}
				o[i] = v
			}
		case !cS && !tS && !fS:
			c, tv, fv := cond[s:e], t[s:e], f[s:e]
			c, tv, fv = c[:len(o)], tv[:len(o)], fv[:len(o)]
			for i := range o {
				v := fv[i]
				if c[i] {
					v = tv[i]
				}
				o[i] = v
			}
		default:
			for i := s; i < e; i++ {
				if cond[i*ci] {
					out[i] = t[i*ti]
				} else {
					out[i] = f[i*fi]
				}
			}
		}
	})
}

// ---- ConvertDType ----

func execConvert(ex *execState, n *node, ins []*value, lastUse []bool) (*Buffer, error) {
	src := ins[0].buf.flat
	if ins[0].buf.shape.DType == n.shape.DType {
		out := outputLike(ex, n.shape, ins, lastUse, 0)
		if out.flat != nil && ins[0].buf != nil {
			_, _ = copyFlat(out.flat, src)
		}
		return out, nil
	}
	out := ex.b.newBuffer(n.shape)
	var err error
	switch s := src.(type) {
	case []bool:
		convertFromBool(out.flat, s)
	case []int8:
		err = convertFrom(out.flat, s)
	case []int16:
		err = convertFrom(out.flat, s)
	case []int32:
		err = convertFrom(out.flat, s)
	case []int64:
		err = convertFrom(out.flat, s)
	case []uint8:
		err = convertFrom(out.flat, s)
	case []uint16:
		err = convertFrom(out.flat, s)
	case []uint32:
		err = convertFrom(out.flat, s)
	case []uint64:
		err = convertFrom(out.flat, s)
	case []float32:
		err = convertFrom(out.flat, s)
	case []float64:
		err = convertFrom(out.flat, s)
	default:
		err = fmt.Errorf("unsupported operand %T", src)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func convertLoop[S, D numT](dst []D, src []S) {
	parallelFor(len(src), elemGrain, func(s, e int) {
		for i := s; i < e; i++ {
			dst[i] = D(src[i])
		}
	})
}

func convertFrom[S numT](dst any, src []S) error {
	switch d := dst.(type) {
	case []bool:
		for i, v := range src {
			d[i] = v != 0
		}
	case []int8:
		convertLoop(d, src)
	case []int16:
		convertLoop(d, src)
	case []int32:
		convertLoop(d, src)
	case []int64:
		convertLoop(d, src)
	case []uint8:
		convertLoop(d, src)
	case []uint16:
		convertLoop(d, src)
	case []uint32:
		convertLoop(d, src)
	case []uint64:
		convertLoop(d, src)
	case []float32:
		convertLoop(d, src)
	case []float64:
		convertLoop(d, src)
	default:
		return fmt.Errorf("unsupported target %T", dst)
	}
	return nil
}

func convertFromBool(dst any, src []bool) {
	u := make([]uint8, len(src))
	for i, v := range src {
		if v {
			u[i] = 1
		}
	}
	if d, ok := dst.([]bool); ok {
		copy(d, src)
		return
	}
	_ = convertFrom(dst, u)
}

// ---- Iota ----

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
