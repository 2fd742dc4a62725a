package cpu

import (
	"fmt"
	"unsafe"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
)

// Type sets used for dtype dispatch.
type (
	floatT interface{ ~float32 | ~float64 }
	sintT  interface {
		~int | ~int8 | ~int16 | ~int32 | ~int64
	}
	uintT interface {
		~uint8 | ~uint16 | ~uint32 | ~uint64
	}
	intT interface{ sintT | uintT }
	numT interface{ intT | floatT }
	anyT interface{ numT | ~bool }
)

func checkDType(dt dtypes.DType) error {
	switch dt {
	case dtypes.Bool, dtypes.Int8, dtypes.Int16, dtypes.Int32, dtypes.Int64,
		dtypes.Uint8, dtypes.Uint16, dtypes.Uint32, dtypes.Uint64, dtypes.Float32, dtypes.Float64:
		return nil
	}
	return fmt.Errorf("dtype %s is not supported by the cpu backend", dt)
}

// makeFlat allocates a zeroed flat slice of n elements of dtype dt.
func makeFlat(dt dtypes.DType, n int) any {
	switch dt {
	case dtypes.Bool:
		return make([]bool, n)
	case dtypes.Int8:
		return make([]int8, n)
	case dtypes.Int16:
		return make([]int16, n)
	case dtypes.Int32:
		return make([]int32, n)
	case dtypes.Int64:
		return make([]int64, n)
	case dtypes.Uint8:
		return make([]uint8, n)
	case dtypes.Uint16:
		return make([]uint16, n)
	case dtypes.Uint32:
		return make([]uint32, n)
	case dtypes.Uint64:
		return make([]uint64, n)
	case dtypes.Float32:
		return make([]float32, n)
	case dtypes.Float64:
		return make([]float64, n)
	}
	panic(fmt.Errorf("cpu: dtype %s not supported", dt))
}

func flatLen(flat any) int {
	switch f := flat.(type) {
	case []bool:
		return len(f)
	case []int8:
		return len(f)
	case []int16:
		return len(f)
	case []int32:
		return len(f)
	case []int64:
		return len(f)
	case []uint8:
		return len(f)
	case []uint16:
		return len(f)
	case []uint32:
		return len(f)
	case []uint64:
		return len(f)
	case []float32:
		return len(f)
	case []float64:
		return len(f)
	}
	return 0
}

func copyTyped[T any](dst []T, src any) (int, error) {
	s, ok := src.([]T)
	if !ok {
		return 0, fmt.Errorf("flat data of type %T does not match %T", src, dst)
	}
	if len(s) != len(dst) {
		return len(s), nil
	}
	copy(dst, s)
	return len(s), nil
}

// copyFlat copies src into dst (same type and length); it returns the length of src.
func copyFlat(dst, src any) (int, error) {
	switch d := dst.(type) {
	case []bool:
		return copyTyped(d, src)
	case []int8:
		return copyTyped(d, src)
	case []int16:
		return copyTyped(d, src)
	case []int32:
		return copyTyped(d, src)
	case []int64:
		return copyTyped(d, src)
	case []uint8:
		return copyTyped(d, src)
	case []uint16:
		return copyTyped(d, src)
	case []uint32:
		return copyTyped(d, src)
	case []uint64:
		return copyTyped(d, src)
	case []float32:
		return copyTyped(d, src)
	case []float64:
		return copyTyped(d, src)
	}
	return 0, fmt.Errorf("unsupported flat type %T", dst)
}

func clearFlat(flat any) {
	switch f := flat.(type) {
	case []bool:
		clear(f)
	case []int8:
		clear(f)
	case []int16:
		clear(f)
	case []int32:
		clear(f)
	case []int64:
		clear(f)
	case []uint8:
		clear(f)
	case []uint16:
		clear(f)
	case []uint32:
		clear(f)
	case []uint64:
		clear(f)
	case []float32:
		clear(f)
	case []float64:
		clear(f)
	}
}

// scalarAsFloat64 reads element i of a numeric flat slice as float64.
func elemAsFloat64(flat any, i int) float64 {
	switch f := flat.(type) {
	case []bool:
		if f[i] {
			return 1
		}
		return 0
	case []int8:
		return float64(f[i])
	case []int16:
		return float64(f[i])
	case []int32:
		return float64(f[i])
	case []int64:
		return float64(f[i])
	case []uint8:
		return float64(f[i])
	case []uint16:
		return float64(f[i])
	case []uint32:
		return float64(f[i])
	case []uint64:
		return float64(f[i])
	case []float32:
		return float64(f[i])
	case []float64:
		return f[i]
	}
	return 0
}

// elemAsInt reads element i of an integer flat slice as int (indices).
func elemAsInt(flat any, i int) int {
	switch f := flat.(type) {
	case []int8:
		return int(f[i])
	case []int16:
		return int(f[i])
	case []int32:
		return int(f[i])
	case []int64:
		return int(f[i])
	case []uint8:
		return int(f[i])
	case []uint16:
		return int(f[i])
	case []uint32:
		return int(f[i])
	case []uint64:
		if f[i] > 1<<62 {
			return 1 << 62
		}
		return int(f[i])
	}
	panic(fmt.Errorf("cpu: index flat of type %T is not an integer", flat))
}

// sizeOf returns the size in bytes of T.
func sizeOf[T any](v T) int { return int(unsafe.Sizeof(v)) }

// dtypeOfFlat returns the dtype of a flat slice.
func dtypeOfFlat(flat any) dtypes.DType {
	switch flat.(type) {
	case []bool:
		return dtypes.Bool
	case []int8:
		return dtypes.Int8
	case []int16:
		return dtypes.Int16
	case []int32:
		return dtypes.Int32
	case []int64:
		return dtypes.Int64
	case []uint8:
		return dtypes.Uint8
	case []uint16:
		return dtypes.Uint16
	case []uint32:
		return dtypes.Uint32
	case []uint64:
		return dtypes.Uint64
	case []float32:
		return dtypes.Float32
	case []float64:
		return dtypes.Float64
	}
	return dtypes.InvalidDType
}
