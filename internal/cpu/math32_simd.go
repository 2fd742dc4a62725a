//go:build goexperiment.simd && amd64

package cpu

import "simd/archsimd"

// exp32v writes e^x of every src element to dst, 8 lanes at a time with AVX2 and FMA (the same
// reduction and polynomial as exp32s); lanes outside the normal range, and the last few
// elements (through a padded block), give the same values wherever they fall in a slice.
func exp32v(dst, src []float32) {
	if !vec8() {
		exp32s(dst, src)
		return
	}
	dst = dst[:len(src)]
	lo, hi := archsimd.BroadcastFloat32x8(expNormLo32), archsimd.BroadcastFloat32x8(expNormHi32)
	i := 0
	for ; i+8 <= len(src); i += 8 {
		x := archsimd.LoadFloat32x8Slice(src[i:])
		y := exp8(x)
		ok := x.Greater(lo).And(x.Less(hi)).ToBits()
		if ok == 0xff {
			y.StoreSlice(dst[i:])
			continue
		}
		var xv [8]float32 // src may be dst
		x.Store(&xv)
		y.StoreSlice(dst[i:])
		for j, v := range xv {
			if ok>>j&1 == 0 {
				dst[i+j] = exp32(v)
			}
		}
	}
	if i < len(src) {
		var t [8]float32
		copy(t[:], src[i:])
		exp32v(t[:], t[:])
		copy(dst[i:], t[:])
	}
}

// exp8 is e^x for lanes in (expNormLo32, expNormHi32).
func exp8(x archsimd.Float32x8) archsimd.Float32x8 {
	c := &expPoly32
	n := x.Mul(archsimd.BroadcastFloat32x8(log2E32)).RoundToEven()
	r := n.MulAdd(archsimd.BroadcastFloat32x8(-ln2Hi32), x)
	r = n.MulAdd(archsimd.BroadcastFloat32x8(-ln2Lo32), r)
	q := r.MulAdd(archsimd.BroadcastFloat32x8(c[4]), archsimd.BroadcastFloat32x8(c[3]))
	q = q.MulAdd(r, archsimd.BroadcastFloat32x8(c[2]))
	q = q.MulAdd(r, archsimd.BroadcastFloat32x8(c[1]))
	q = q.MulAdd(r, archsimd.BroadcastFloat32x8(c[0]))
	p := r.Mul(r).MulAdd(q, r).Add(archsimd.BroadcastFloat32x8(1))
	scale := n.ConvertToInt32().Add(archsimd.BroadcastInt32x8(127)).ShiftAllLeft(23).AsFloat32x8()
	return p.Mul(scale)
}

// erf32v writes the error function of every src element to dst, 8 lanes at a time with AVX2 and
// FMA: both polynomials of erf32s are evaluated and blended.
func erf32v(dst, src []float32) {
	if !vec8() {
		erf32s(dst, src)
		return
	}
	dst = dst[:len(src)]
	i := 0
	for ; i+8 <= len(src); i += 8 {
		erf8(archsimd.LoadFloat32x8Slice(src[i:])).StoreSlice(dst[i:])
	}
	if i < len(src) {
		var t [8]float32
		copy(t[:], src[i:])
		erf8(archsimd.LoadFloat32x8Slice(t[:])).StoreSlice(t[:])
		copy(dst[i:], t[:])
	}
}

// erf8 is erf x on 8 lanes (NaN stays NaN).
func erf8(x archsimd.Float32x8) archsimd.Float32x8 {
	bc := archsimd.BroadcastFloat32x8
	signBit := archsimd.BroadcastUint32x8(0x80000000)
	xb := x.AsUint32x8()
	sign := xb.And(signBit)
	a := xb.AndNot(signBit).AsFloat32x8()
	// |x| < 1: x·P(x²).
	cs := &erfSmallPoly32
	t := x.Mul(x)
	ps := t.MulAdd(bc(cs[5]), bc(cs[4]))
	ps = ps.MulAdd(t, bc(cs[3]))
	ps = ps.MulAdd(t, bc(cs[2]))
	ps = ps.MulAdd(t, bc(cs[1]))
	ps = ps.MulAdd(t, bc(cs[0]))
	small := x.Mul(ps)
	// 1 ≤ |x| < erfOne32: Q(|x| - erfMid32) with x's sign; 1 with x's sign beyond.
	cl := &erfLargePoly32
	s := a.Min(bc(erfOne32)).Sub(bc(erfMid32))
	pl := s.MulAdd(bc(cl[12]), bc(cl[11]))
	for k := 10; k >= 0; k-- {
		pl = pl.MulAdd(s, bc(cl[k]))
	}
	pl = bc(1).Merge(pl, a.GreaterEqual(bc(erfOne32)))
	large := pl.AsUint32x8().Or(sign).AsFloat32x8()
	y := large.Merge(small, a.GreaterEqual(bc(1)))
	return y.Merge(x, x.Equal(x))
}
