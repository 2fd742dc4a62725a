package cpu

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/backends"
)

func (b *Builder) Equal(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeEqual, l, r)
}

func (b *Builder) NotEqual(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeNotEqual, l, r)
}

func (b *Builder) GreaterOrEqual(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeGreaterOrEqual, l, r)
}

func (b *Builder) GreaterThan(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeGreaterThan, l, r)
}

func (b *Builder) LessOrEqual(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLessOrEqual, l, r)
}

func (b *Builder) LessThan(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLessThan, l, r)
}

func (b *Builder) EqualTotalOrder(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeEqualTotalOrder, l, r)
}

func (b *Builder) NotEqualTotalOrder(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeNotEqualTotalOrder, l, r)
}

func (b *Builder) GreaterOrEqualTotalOrder(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeGreaterOrEqualTotalOrder, l, r)
}

func (b *Builder) GreaterThanTotalOrder(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeGreaterThanTotalOrder, l, r)
}

func (b *Builder) LessOrEqualTotalOrder(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLessOrEqualTotalOrder, l, r)
}

func (b *Builder) LessThanTotalOrder(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLessThanTotalOrder, l, r)
}

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
