//go:build amd64 && !purego

package cpu

// exp32v writes e^x of every src element to dst, 8 lanes at a time with AVX2 and FMA (the same
// reduction and polynomial as exp32s, with fused multiply-adds); lanes outside the normal range,
// and the last few elements (through a padded block), give the same values wherever they fall
// in a slice.
func exp32v(dst, src []float32) {
	if !vec8() {
		exp32s(dst, src)
		return
	}
	dst = dst[:len(src)]
	i := 0
	for i+8 <= len(src) {
		i += expBlocksAVX2(&dst[i], &src[i], (len(src)-i)&^7, true)
		if i+8 > len(src) {
			break
		}
		// The block at i holds a lane outside the normal range: the vector result for the others,
		// exp32 for those.
		var xv, y [8]float32 // src may be dst
		copy(xv[:], src[i:i+8])
		expBlocksAVX2(&y[0], &xv[0], 8, false)
		for j, v := range xv {
			if !(v > expNormLo32 && v < expNormHi32) {
				y[j] = exp32(v)
			}
		}
		copy(dst[i:], y[:])
		i += 8
	}
	if i < len(src) {
		var t [8]float32
		copy(t[:], src[i:])
		exp32v(t[:], t[:])
		copy(dst[i:], t[:])
	}
}

// erf32v writes the error function of every src element to dst, 8 lanes at a time with AVX2 and
// FMA: both polynomials of erf32s are evaluated and blended.
func erf32v(dst, src []float32) {
	if !vec8() {
		erf32s(dst, src)
		return
	}
	dst = dst[:len(src)]
	n8 := len(src) &^ 7
	if n8 > 0 {
		erfBlocksAVX2(&dst[0], &src[0], n8)
	}
	if n8 < len(src) {
		var t [8]float32
		copy(t[:], src[n8:])
		erfBlocksAVX2(&t[0], &t[0], 8)
		copy(dst[n8:], t[:])
	}
}
