package torchio

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// DType is the element type of a tensor, named as safetensors names it.
type DType string

// The element types torchio reads and writes.
const (
	F64  DType = "F64"
	F32  DType = "F32"
	F16  DType = "F16"
	BF16 DType = "BF16"
	I64  DType = "I64"
	I32  DType = "I32"
	I16  DType = "I16"
	I8   DType = "I8"
	U8   DType = "U8"
	Bool DType = "BOOL"
)

// Size is the size of one element in bytes (0 for an unknown dtype).
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case F16, BF16, I16:
		return 2
	case I8, U8, Bool:
		return 1
	}
	return 0
}

// Tensor is a dense, row-major, little-endian tensor.
type Tensor struct {
	DType DType
	Shape []int
	// Data holds Numel()·DType.Size() bytes.
	Data []byte
}

// Numel is the number of elements (1 for a scalar).
func (t *Tensor) Numel() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// ShapeString formats the shape as PyTorch prints it: [2, 3].
func ShapeString(shape []int) string {
	return fmt.Sprint(shapeList(shape))
}

type shapeList []int

func (s shapeList) String() string {
	out := "["
	for i, d := range s {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprint(d)
	}
	return out + "]"
}

// Float32s returns the values as float32 (converting F64, F16 and BF16), or an error for an
// integer or boolean tensor.
func (t *Tensor) Float32s() ([]float32, error) {
	n := t.Numel()
	out := make([]float32, n)
	b := t.Data
	switch t.DType {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	case BF16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16)
		}
	case F16:
		for i := range out {
			out[i] = halfToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	default:
		return nil, fmt.Errorf("dtype %s is not floating point", t.DType)
	}
	return out, nil
}

// Int64s returns the values of an integer tensor as int64.
func (t *Tensor) Int64s() ([]int64, error) {
	n := t.Numel()
	out := make([]int64, n)
	b := t.Data
	switch t.DType {
	case I64:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
	case I32:
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		}
	case I16:
		for i := range out {
			out[i] = int64(int16(binary.LittleEndian.Uint16(b[2*i:])))
		}
	case I8:
		for i := range out {
			out[i] = int64(int8(b[i]))
		}
	case U8, Bool:
		for i := range out {
			out[i] = int64(b[i])
		}
	default:
		return nil, fmt.Errorf("dtype %s is not an integer type", t.DType)
	}
	return out, nil
}

// FromFloat32s is an F32 tensor of the given shape holding vals (len(vals) must be the shape's
// element count).
func FromFloat32s(shape []int, vals []float32) *Tensor {
	t := &Tensor{DType: F32, Shape: slices.Clone(shape), Data: make([]byte, 4*len(vals))}
	if t.Numel() != len(vals) {
		panic(fmt.Errorf("torchio: %d values for shape %v", len(vals), shape))
	}
	for i, v := range vals {
		binary.LittleEndian.PutUint32(t.Data[4*i:], math.Float32bits(v))
	}
	return t
}

// ScalarInt64 is a 0-d I64 tensor (e.g. a BatchNorm's num_batches_tracked).
func ScalarInt64(v int64) *Tensor {
	t := &Tensor{DType: I64, Shape: []int{}, Data: make([]byte, 8)}
	binary.LittleEndian.PutUint64(t.Data, uint64(v))
	return t
}

// halfToFloat32 converts an IEEE 754 binary16 value.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := int(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		v := float32(mant) / 1024 / 16384 // 2^-14 · mant/1024
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | uint32(exp-15+127)<<23 | mant<<13)
}

// StateDict is an ordered mapping from names to tensors.
type StateDict struct {
	// Keys in file order (safetensors: sorted by name).
	Keys    []string
	Tensors map[string]*Tensor
	// Metadata is safetensors' __metadata__ (nil for torch files).
	Metadata map[string]string
}

// NewStateDict is an empty state dict.
func NewStateDict() *StateDict { return &StateDict{Tensors: map[string]*Tensor{}} }

// Set adds or replaces a tensor, keeping the first position of a replaced key.
func (s *StateDict) Set(key string, t *Tensor) {
	if _, ok := s.Tensors[key]; !ok {
		s.Keys = append(s.Keys, key)
	}
	s.Tensors[key] = t
}

// checkedMul multiplies non-negative ints, reporting overflow.
func checkedMul(a, b int64) (int64, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	if a == 0 || b == 0 {
		return 0, true
	}
	if a > math.MaxInt64/b {
		return 0, false
	}
	return a * b, true
}

// checkedAdd adds non-negative ints, reporting overflow.
func checkedAdd(a, b int64) (int64, bool) {
	if a < 0 || b < 0 || a > math.MaxInt64-b {
		return 0, false
	}
	return a + b, true
}
