package cpu

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// RNGBitGenerator implements backends.Builder with Philox-4x32-10: state[0] is the key, state[1:3]
// the 128-bit counter, advanced by the number of 128-bit blocks drawn.
func (b *Builder) RNGBitGenerator(state backends.Op, shape shapes.Shape) (backends.Op, backends.Op, error) {
	ns, err := b.nodes2("RNGBitGenerator", state)
	if err != nil {
		return nil, nil, err
	}
	if !ns[0].shape.Equal(backends.RNGStateShape) {
		return nil, nil, fmt.Errorf("cpu: RNGBitGenerator: state is %s, want %s", ns[0].shape, backends.RNGStateShape)
	}
	if err := checkDType(shape.DType); err != nil || shape.DType == dtypes.Bool {
		return nil, nil, fmt.Errorf("cpu: RNGBitGenerator(%s): unsupported dtype", shape)
	}
	outs := b.addMulti(backends.OpTypeRNGBitGenerator, []shapes.Shape{ns[0].shape, shape.Clone()}, nil, ns[0])
	return outs[0], outs[1], nil
}

// Philox-4x32-10 constants (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
const (
	philoxM0 = 0xD2511F53
	philoxM1 = 0xCD9E8D57
	philoxW0 = 0x9E3779B9
	philoxW1 = 0xBB67AE85
)

// philoxBlock returns the 4 random words of counter (c0..c3) under key (k0, k1).
func philoxBlock(c0, c1, c2, c3, k0, k1 uint32) (uint32, uint32, uint32, uint32) {
	for r := 0; r < 10; r++ {
		hi0, lo0 := bits.Mul32(philoxM0, c0)
		hi1, lo1 := bits.Mul32(philoxM1, c2)
		c0, c1, c2, c3 = hi1^c1^k0, lo1, hi0^c3^k1, lo0
		k0 += philoxW0
		k1 += philoxW1
	}
	return c0, c1, c2, c3
}

// philoxBytes fills dst with the stream of blocks for counter (ctrLo, ctrHi)+i, i = 0, 1, ...,
// and returns the number of 16-byte blocks used.
func philoxBytes(dst []byte, key, ctrLo, ctrHi uint64) uint64 {
	blocks := (len(dst) + 15) / 16
	k0, k1 := uint32(key), uint32(key>>32)
	parallelFor(blocks, 4096, func(s, e int) {
		var tmp [16]byte
		for i := s; i < e; i++ {
			lo, carry := bits.Add64(ctrLo, uint64(i), 0)
			hi := ctrHi + carry
			w0, w1, w2, w3 := philoxBlock(uint32(lo), uint32(lo>>32), uint32(hi), uint32(hi>>32), k0, k1)
			binary.LittleEndian.PutUint32(tmp[0:], w0)
			binary.LittleEndian.PutUint32(tmp[4:], w1)
			binary.LittleEndian.PutUint32(tmp[8:], w2)
			binary.LittleEndian.PutUint32(tmp[12:], w3)
			copy(dst[i*16:], tmp[:])
		}
	})
	return uint64(blocks)
}

func execRNG(ex *execState, n *node, ins []*value) ([]*Buffer, error) {
	state := ins[0].buf.flat.([]uint64)
	key, ctrLo, ctrHi := state[0], state[1], state[2]
	valShape := n.multiShapes[1]
	size := valShape.Size()
	width := valShape.DType.Size()
	raw := make([]byte, size*width)
	blocks := philoxBytes(raw, key, ctrLo, ctrHi)
	vals := ex.b.newBuffer(valShape)
	le := binary.LittleEndian
	switch v := vals.flat.(type) {
	case []uint8:
		copy(v, raw)
	case []int8:
		for i := range v {
			v[i] = int8(raw[i])
		}
	case []uint16:
		for i := range v {
			v[i] = le.Uint16(raw[2*i:])
		}
	case []int16:
		for i := range v {
			v[i] = int16(le.Uint16(raw[2*i:]))
		}
	case []uint32:
		for i := range v {
			v[i] = le.Uint32(raw[4*i:])
		}
	case []int32:
		for i := range v {
			v[i] = int32(le.Uint32(raw[4*i:]))
		}
	case []float32:
		for i := range v {
			v[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
	case []uint64:
		for i := range v {
			v[i] = le.Uint64(raw[8*i:])
		}
	case []int64:
		for i := range v {
			v[i] = int64(le.Uint64(raw[8*i:]))
		}
	case []float64:
		for i := range v {
			v[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
	default:
		return nil, fmt.Errorf("RNGBitGenerator of %s not supported", valShape)
	}
	newState := ex.b.newBuffer(n.multiShapes[0])
	ns := newState.flat.([]uint64)
	lo, carry := bits.Add64(ctrLo, blocks, 0)
	ns[0], ns[1], ns[2] = key, lo, ctrHi+carry
	return []*Buffer{newState, vals}, nil
}
