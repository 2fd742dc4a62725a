package cpu

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// binary adds an elementwise binary op (standard broadcasting: equal shapes, a scalar, or dims of 1).
func (b *Builder) binary(op backends.OpType, lhs, rhs backends.Op) (backends.Op, error) {
	ns, err := b.nodes2(op.String(), lhs, rhs)
	if err != nil {
		return nil, err
	}
	var shape shapes.Shape
	switch {
	case shapeinference.ComparisonOperations.Has(op):
		shape, err = shapeinference.ComparisonOp(op, ns[0].shape, ns[1].shape)
	case op == backends.OpTypeShiftLeft || op == backends.OpTypeShiftRightArithmetic || op == backends.OpTypeShiftRightLogical:
		if !ns[0].shape.DType.IsInt() || ns[0].shape.DType != ns[1].shape.DType {
			return nil, fmt.Errorf("cpu: %s(%s, %s): needs matching integer operands", op, ns[0].shape, ns[1].shape)
		}
		shape, err = shapeinference.BinaryOp(backends.OpTypeBitwiseAnd, ns[0].shape, ns[1].shape)
	default:
		shape, err = shapeinference.BinaryOp(op, ns[0].shape, ns[1].shape)
	}
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	return b.add(op, shape, nil, ns[0], ns[1]), nil
}

func (b *Builder) Add(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeAdd, l, r)
}

func (b *Builder) Sub(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeSub, l, r)
}

func (b *Builder) Mul(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeMul, l, r)
}

func (b *Builder) Div(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeDiv, l, r)
}

func (b *Builder) Rem(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeRem, l, r)
}

func (b *Builder) Pow(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypePow, l, r)
}

func (b *Builder) Max(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeMax, l, r)
}

func (b *Builder) Min(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeMin, l, r)
}

func (b *Builder) LogicalAnd(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLogicalAnd, l, r)
}

func (b *Builder) LogicalOr(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLogicalOr, l, r)
}

func (b *Builder) LogicalXor(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLogicalXor, l, r)
}

func (b *Builder) BitwiseAnd(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeBitwiseAnd, l, r)
}

func (b *Builder) BitwiseOr(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeBitwiseOr, l, r)
}

func (b *Builder) BitwiseXor(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeBitwiseXor, l, r)
}

func (b *Builder) ShiftLeft(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeShiftLeft, l, r)
}

func (b *Builder) ShiftRightArithmetic(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeShiftRightArithmetic, l, r)
}

func (b *Builder) ShiftRightLogical(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeShiftRightLogical, l, r)
}

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
		unravelInto(idx, s, p.outDims[:rank-1]) // row s as the outer index
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
