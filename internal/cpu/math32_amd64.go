//go:build amd64 && !purego

package cpu

// exp32v writes e^x of every src element to dst, 16 lanes at a time with AVX-512 or 8 with AVX2
// and FMA (the same reduction and polynomial as exp32s, with fused multiply-adds); lanes outside
// the normal range, and the last few elements (through a padded block), give the same values
// wherever they fall in a slice, and on either path.
func exp32v(dst, src []float32) {
	switch {
	case vec16():
		expLanes(dst, src, 16, expBlocksAVX512)
	case vec8():
		expLanes(dst, src, 8, expBlocksAVX2)
	default:
		exp32s(dst, src)
	}
}

// expLanes runs exp32v with the vector loop blocks of the given number of lanes (8 or 16).
func expLanes(dst, src []float32, lanes int, blocks func(dst, src *float32, n int, check bool) int) {
	dst = dst[:len(src)]
	i := 0
	for i+lanes <= len(src) {
		i += blocks(&dst[i], &src[i], (len(src)-i)/lanes*lanes, true)
		if i+lanes > len(src) {
			break
		}
		// The block at i holds a lane outside the normal range: the vector result for the others,
		// exp32 for those.
		var xv, y [16]float32 // src may be dst
		copy(xv[:], src[i:i+lanes])
		blocks(&y[0], &xv[0], lanes, false)
		for j, v := range xv[:lanes] {
			if !(v > expNormLo32 && v < expNormHi32) {
				y[j] = exp32(v)
			}
		}
		copy(dst[i:], y[:lanes])
		i += lanes
	}
	if i < len(src) {
		var t [16]float32
		copy(t[:], src[i:])
		blocks(&t[0], &t[0], lanes, false)
		for j, v := range src[i:] {
			if !(v > expNormLo32 && v < expNormHi32) {
				t[j] = exp32(v)
			}
		}
		copy(dst[i:], t[:len(src)-i])
	}
}

// erf32v writes the error function of every src element to dst, 16 lanes at a time with
// AVX-512 or 8 with AVX2 and FMA: both polynomials of erf32s are evaluated and blended.
func erf32v(dst, src []float32) {
	switch {
	case vec16():
		erfLanes(dst, src, 16, erfBlocksAVX512)
	case vec8():
		erfLanes(dst, src, 8, erfBlocksAVX2)
	default:
		erf32s(dst, src)
	}
}

// erfLanes runs erf32v with the vector loop of the given number of lanes (8 or 16).
func erfLanes(dst, src []float32, lanes int, blocks func(dst, src *float32, n int)) {
	dst = dst[:len(src)]
	n := len(src) / lanes * lanes
	if n > 0 {
		blocks(&dst[0], &src[0], n)
	}
	if n < len(src) {
		var t [16]float32
		copy(t[:], src[n:])
		blocks(&t[0], &t[0], lanes)
		copy(dst[n:], t[:len(src)-n])
	}
}
