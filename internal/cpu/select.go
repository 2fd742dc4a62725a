package cpu

import (
	"fmt"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
)

// Clamp implements backends.Builder: min and max are scalars or shaped like x.
func (b *Builder) Clamp(minV, x, maxV backends.Op) (backends.Op, error) {
	ns, err := b.nodes2("Clamp", minV, x, maxV)
	if err != nil {
		return nil, err
	}
	for _, i := range []int{0, 2} {
		if ns[i].shape.DType != ns[1].shape.DType || (!ns[i].shape.IsScalar() && !ns[i].shape.Equal(ns[1].shape)) {
			return nil, fmt.Errorf("cpu: Clamp(%s, %s, %s): min and max must be scalars or shaped like x",
				ns[0].shape, ns[1].shape, ns[2].shape)
		}
	}
	if !ns[1].shape.DType.IsFloat() && !ns[1].shape.DType.IsInt() {
		return nil, fmt.Errorf("cpu: Clamp(%s): needs a numeric operand", ns[1].shape)
	}
	return b.add(backends.OpTypeClamp, ns[1].shape, nil, ns...), nil
}

// Where implements backends.Builder.
func (b *Builder) Where(cond, onTrue, onFalse backends.Op) (backends.Op, error) {
	ns, err := b.nodes2("Where", cond, onTrue, onFalse)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.WhereOp(ns[0].shape, ns[1].shape, ns[2].shape)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	if ns[1].shape.DType != ns[2].shape.DType {
		return nil, fmt.Errorf("cpu: Where: onTrue %s and onFalse %s dtypes differ", ns[1].shape, ns[2].shape)
	}
	return b.add(backends.OpTypeWhere, shape, nil, ns...), nil
}

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
