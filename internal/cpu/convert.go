package cpu

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// ConvertDType implements backends.Builder.
func (b *Builder) ConvertDType(x backends.Op, dtype dtypes.DType) (backends.Op, error) {
	ns, err := b.nodes2("ConvertDType", x)
	if err != nil {
		return nil, err
	}
	if err := checkDType(dtype); err != nil {
		return nil, fmt.Errorf("cpu: ConvertDType(%s -> %s): %w", ns[0].shape, dtype, err)
	}
	shape := ns[0].shape.Clone()
	shape.DType = dtype
	return b.add(backends.OpTypeConvertDType, shape, nil, ns[0]), nil
}

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
