package cpu

import (
	"fmt"
	"math"
	"math/bits"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// unary adds an elementwise unary op.
func (b *Builder) unary(op backends.OpType, x backends.Op) (backends.Op, error) {
	ns, err := b.nodes2(op.String(), x)
	if err != nil {
		return nil, err
	}
	var shape shapes.Shape
	switch op {
	case backends.OpTypeIsFinite, backends.OpTypeIsNaN:
		if !ns[0].shape.DType.IsFloat() {
			return nil, fmt.Errorf("cpu: %s(%s): needs a float operand", op, ns[0].shape)
		}
		shape = ns[0].shape.Clone()
		shape.DType = dtypes.Bool
	default:
		shape, err = shapeinference.UnaryOp(op, ns[0].shape)
		if err != nil {
			return nil, fmt.Errorf("cpu: %w", err)
		}
	}
	return b.add(op, shape, nil, ns[0]), nil
}

func (b *Builder) Abs(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeAbs, x) }

func (b *Builder) Neg(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeNeg, x) }

func (b *Builder) Sign(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeSign, x) }

func (b *Builder) Exp(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeExp, x) }

func (b *Builder) Expm1(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeExpm1, x) }

func (b *Builder) Log(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeLog, x) }

func (b *Builder) Log1p(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeLog1p, x) }

func (b *Builder) Logistic(x backends.Op) (backends.Op, error) {
	return b.unary(backends.OpTypeLogistic, x)
}

func (b *Builder) Sqrt(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeSqrt, x) }

func (b *Builder) Rsqrt(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeRsqrt, x) }

func (b *Builder) Tanh(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeTanh, x) }

func (b *Builder) Erf(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeErf, x) }

func (b *Builder) Cos(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeCos, x) }

func (b *Builder) Sin(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeSin, x) }

func (b *Builder) Floor(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeFloor, x) }

func (b *Builder) Ceil(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeCeil, x) }

func (b *Builder) Round(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeRound, x) }

func (b *Builder) IsFinite(x backends.Op) (backends.Op, error) {
	return b.unary(backends.OpTypeIsFinite, x)
}

func (b *Builder) IsNaN(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeIsNaN, x) }

func (b *Builder) LogicalNot(x backends.Op) (backends.Op, error) {
	return b.unary(backends.OpTypeLogicalNot, x)
}

func (b *Builder) BitwiseNot(x backends.Op) (backends.Op, error) {
	return b.unary(backends.OpTypeBitwiseNot, x)
}

func (b *Builder) BitCount(x backends.Op) (backends.Op, error) {
	return b.unary(backends.OpTypeBitCount, x)
}

func (b *Builder) Clz(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeClz, x) }

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
