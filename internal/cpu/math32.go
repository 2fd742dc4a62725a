package cpu

import (
	"math"

	"github.com/gomlx/gomlx/backends"
)

// Float32 transcendental functions evaluated in float32 arithmetic, written as loops over slices
// (dst and src may be the same slice; dst must be at least as long as src). Each reduces its
// argument to a short interval and evaluates a polynomial fitted there (Chebyshev interpolants,
// close to minimax); special values (±Inf, NaN, ±0, overflow, underflow, subnormals) follow the
// float64 functions of package math rounded to float32. TestMath32 measures their errors against
// package math: about 1–2 units in the last place.

const (
	log2E32 = 1.44269504 // 1/ln 2
	// ln2Hi + ln2Lo = ln 2, ln2Hi with its 12 low mantissa bits zero so that n·ln2Hi is exact for
	// |n| < 2^12 (Cody and Waite's argument reduction).
	ln2Hi32 = 0.693145751953125
	ln2Lo32 = 1.42860682e-06
	// roundMagic32 is 1.5·2^23: (v + roundMagic32) - roundMagic32 rounds |v| < 2^22 to an integer.
	roundMagic32 = 12582912
	// expMax32 is the largest float32 whose exp is finite (ln of the largest float32).
	expMax32 = 88.7228394
	// expMin32 is below ln(2^-150): exp rounds to +0 beneath it.
	expMin32 = -103.972084
	// expNormLo32, expNormHi32 bound the arguments whose 2^n scale is a normal float32.
	expNormLo32, expNormHi32 = -87.0, 88.0
	// sqrtHalfBits32 is the bit pattern of float32(√½): log reduces its argument to [√½, √2).
	sqrtHalfBits32 = 0x3f3504f3
	// erfOne32 is where erf rounds to 1 in float32 (erfc(x) < 2^-25).
	erfOne32 = 3.92
	// erfMid32 is the centre of erf's second interval [1, erfOne32].
	erfMid32 = 2.46
	// tanhOne32 is where tanh rounds to 1 in float32.
	tanhOne32 = 9.1
	// expm1MinusOne32 is where expm1 rounds to -1 in float32.
	expm1MinusOne32 = -17.4
)

// Polynomial coefficients, lowest degree first.
var (
	// expPoly32 fits (e^r - 1 - r)/r² on |r| ≤ ln2/2.
	expPoly32 = [5]float32{0.5, 0.166665778, 0.0416665561, 0.00836317334, 0.00139261759}
	// logPoly32 fits (log1p(f) - f + f²/2)/f³ on [√½-1, √2-1].
	logPoly32 = [8]float32{0.333333313, -0.25000307, 0.200010449, -0.166412815, 0.142144963,
		-0.129981846, 0.126223177, -0.0790274069}
	// erfSmallPoly32 fits erf(x)/x as a polynomial in x² on |x| ≤ 1.
	erfSmallPoly32 = [6]float32{1.12837911, -0.376123428, 0.112803169, -0.0267150551, 0.00492176181,
		-0.000564805989}
	// erfLargePoly32 fits erf(x) as a polynomial in x - erfMid32 on [1, erfOne32].
	erfLargePoly32 = [13]float32{0.999496639, 0.00265615713, -0.0065348451, 0.00983330514,
		-0.00990991108, 0.00679691369, -0.00295322388, 0.000462888012, 0.000381728605,
		-0.000301981287, 5.56272862e-05, 2.54673778e-05, -9.75014609e-06}
)

// f32bits and f32from are math.Float32bits and math.Float32frombits.
func f32bits(x float32) uint32        { return math.Float32bits(x) }
func f32from(b uint32) float32        { return math.Float32frombits(b) }
func pow2f32(n int32) float32         { return f32from(uint32(n+127) << 23) } // 2^n, -126 ≤ n ≤ 127
func copySign32(x, s float32) float32 { return f32from(f32bits(x)&0x7fffffff | f32bits(s)&0x80000000) }

// expReduce32 splits x as n·ln2 + r with n an integer and |r| ≤ ln2/2 (|x| < 2^21).
func expReduce32(x float32) (n, r float32) {
	n = float32(x*log2E32+roundMagic32) - roundMagic32
	r = x - n*ln2Hi32
	r -= n * ln2Lo32
	return n, r
}

// expm1Poly32 returns e^r - 1 for |r| ≤ ln2/2.
func expm1Poly32(r float32) float32 {
	c := &expPoly32
	q := c[0] + r*(c[1]+r*(c[2]+r*(c[3]+r*c[4])))
	return r + r*r*q
}

// exp32 is e^x in float32 for any x.
func exp32(x float32) float32 {
	if x > expNormLo32 && x < expNormHi32 {
		n, r := expReduce32(x)
		return (1 + expm1Poly32(r)) * pow2f32(int32(n))
	}
	switch {
	case x != x:
		return x
	case x > expMax32:
		return float32(math.Inf(1))
	case x < expMin32:
		return 0
	}
	n, r := expReduce32(x)
	p := 1 + expm1Poly32(r)
	if n > 0 { // 2^n overflows: scale in two steps.
		return p * pow2f32(int32(n)-1) * 2
	}
	// Subnormal result: one rounding, in the last product.
	return p * pow2f32(int32(n)+64) * pow2f32(-64)
}

// exp32s writes e^x of every src element to dst (the portable loop; see exp32v).
func exp32s(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		if x > expNormLo32 && x < expNormHi32 {
			n, r := expReduce32(x)
			c := &expPoly32
			q := c[0] + r*(c[1]+r*(c[2]+r*(c[3]+r*c[4])))
			dst[i] = (1 + (r + r*r*q)) * pow2f32(int32(n))
			continue
		}
		dst[i] = exp32(x)
	}
}

// expm1_32 is e^x - 1 in float32, accurate for small |x|.
func expm1_32(x float32) float32 {
	if !(x > expm1MinusOne32 && x < expNormHi32) || x == 0 {
		switch {
		case x != x || x == 0:
			return x // NaN, ±0
		case x <= expm1MinusOne32:
			return -1
		}
		return exp32(x) - 1 // ≥ 88: 1 is below its last place.
	}
	n, r := expReduce32(x)
	em := expm1Poly32(r)
	if n == 0 {
		return em
	}
	t := pow2f32(int32(n))
	return t*em + (t - 1)
}

// expm1_32s writes e^x - 1 of every src element to dst.
func expm1_32s(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = expm1_32(x)
	}
}

// logistic32s writes the logistic (sigmoid) 1/(1+e^-x) of every src element to dst, computed
// from e^-|x| ≤ 1 so that neither tail overflows or cancels.
func logistic32s(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		a := -abs32(x)
		var e float32
		if a > expNormLo32 {
			n, r := expReduce32(a)
			c := &expPoly32
			q := c[0] + r*(c[1]+r*(c[2]+r*(c[3]+r*c[4])))
			e = (1 + (r + r*r*q)) * pow2f32(int32(n))
		} else {
			e = exp32(a) // NaN, or a subnormal or zero tail
		}
		// x ≥ 0: 1/(1+e); x < 0: e/(1+e), chosen without a branch.
		m := uint32(int32(f32bits(x)) >> 31)
		num := f32from(f32bits(1) ^ ((f32bits(1) ^ f32bits(e)) & m))
		dst[i] = num / (1 + e)
	}
}

// abs32 is |x|.
func abs32(x float32) float32 { return f32from(f32bits(x) & 0x7fffffff) }

// tanh32s writes tanh x of every src element to dst, as e/(e+2) with e = expm1(2|x|) (no
// cancellation at any |x|) and x's sign.
func tanh32s(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		a := abs32(x)
		if !(a < tanhOne32) {
			if x != x {
				dst[i] = x
			} else {
				dst[i] = copySign32(1, x)
			}
			continue
		}
		n, r := expReduce32(2 * a)
		em := expm1Poly32(r)
		if n != 0 {
			t := pow2f32(int32(n))
			em = t*em + (t - 1)
		}
		dst[i] = copySign32(em/(em+2), x)
	}
}

// logCore32 returns ln x for a positive normal finite float32 with bit pattern b.
func logCore32(b uint32) float32 {
	e := int32(b-sqrtHalfBits32) >> 23 // x = 2^e·m, m ∈ [√½, √2)
	f := f32from(b-uint32(e)<<23) - 1  // exact
	c := &logPoly32
	p := c[0] + f*(c[1]+f*(c[2]+f*(c[3]+f*(c[4]+f*(c[5]+f*(c[6]+f*c[7]))))))
	y := f + (f*f*f*p - 0.5*f*f)
	if e == 0 {
		return y
	}
	ef := float32(e)
	return ef*ln2Hi32 + (y + ef*ln2Lo32)
}

// log32 is ln x in float32 for any x.
func log32(x float32) float32 {
	b := f32bits(x)
	if b-0x00800000 < 0x7f800000-0x00800000 { // positive, normal, finite
		return logCore32(b)
	}
	switch {
	case x != x || x < 0:
		return float32(math.NaN())
	case x == 0:
		return float32(math.Inf(-1))
	case b == 0x7f800000:
		return x
	}
	// Subnormal: scale by 2^23.
	return logCore32(f32bits(x*(1<<23))) - 23*ln2Hi32 - 23*ln2Lo32
}

// log32s writes ln x of every src element to dst.
func log32s(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		b := f32bits(x)
		if b-0x00800000 < 0x7f800000-0x00800000 {
			dst[i] = logCore32(b)
			continue
		}
		dst[i] = log32(x)
	}
}

// log1p32 is ln(1+x) in float32, accurate for small |x|.
func log1p32(x float32) float32 {
	const lo, hi = 0.70710678 - 1, 1.41421356 - 1
	if x >= lo && x < hi { // no reduction needed
		c := &logPoly32
		p := c[0] + x*(c[1]+x*(c[2]+x*(c[3]+x*(c[4]+x*(c[5]+x*(c[6]+x*c[7]))))))
		return x + (x*x*x*p - 0.5*x*x)
	}
	u := 1 + x
	b := f32bits(u)
	if !(b-0x00800000 < 0x7f800000-0x00800000) || x != x {
		return log32(u) // NaN, -1 → -Inf, < -1 → NaN, +Inf
	}
	// u is 1+x rounded: add the first-order correction (x - (u-1))/u.
	return logCore32(b) + (x-(u-1))/u
}

// log1p32s writes ln(1+x) of every src element to dst.
func log1p32s(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = log1p32(x)
	}
}

// erf32s writes the error function of every src element to dst: x·P(x²) for |x| < 1, a
// polynomial in |x| - erfMid32 up to erfOne32, ±1 beyond (the portable loop; see erf32v).
func erf32s(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		a := abs32(x)
		switch {
		case a < 1:
			c := &erfSmallPoly32
			t := x * x
			dst[i] = x * (c[0] + t*(c[1]+t*(c[2]+t*(c[3]+t*(c[4]+t*c[5])))))
		case a < erfOne32:
			c := &erfLargePoly32
			s := a - erfMid32
			p := c[12]
			for k := 11; k >= 0; k-- {
				p = p*s + c[k]
			}
			dst[i] = copySign32(p, x)
		case x != x:
			dst[i] = x
		default:
			dst[i] = copySign32(1, x)
		}
	}
}

// sqrt32s writes √x of every src element to dst (correctly rounded).
func sqrt32s(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = float32(math.Sqrt(float64(x)))
	}
}

// rsqrt32s writes 1/√x of every src element to dst.
func rsqrt32s(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = float32(1 / math.Sqrt(float64(x)))
	}
}

// abs32s writes |x| of every src element to dst.
func abs32s(dst, src []float32) {
	dst = dst[:len(src)]
	db, sb := bitsOf(dst), bitsOf(src)
	for i, b := range sb {
		db[i] = b & 0x7fffffff
	}
}

// neg32s writes -x of every src element to dst.
func neg32s(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = -x
	}
}

// sign32s writes the sign of every src element to dst: -1, +1, ±0 for ±0, NaN for NaN.
func sign32s(dst, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		r := v
		if v > 0 {
			r = 1
		}
		if v < 0 {
			r = -1
		}
		dst[i] = r
	}
}

// unaryKernel32 returns the float32 slice kernel of a unary op, or nil when it has none.
func unaryKernel32(op backends.OpType) func(dst, src []float32) {
	switch op {
	case backends.OpTypeExp:
		return exp32v
	case backends.OpTypeExpm1:
		return expm1_32s
	case backends.OpTypeLog:
		return log32s
	case backends.OpTypeLog1p:
		return log1p32s
	case backends.OpTypeLogistic:
		return logistic32s
	case backends.OpTypeTanh:
		return tanh32s
	case backends.OpTypeErf:
		return erf32v
	case backends.OpTypeSqrt:
		return sqrt32s
	case backends.OpTypeRsqrt:
		return rsqrt32s
	case backends.OpTypeAbs:
		return abs32s
	case backends.OpTypeNeg:
		return neg32s
	case backends.OpTypeSign:
		return sign32s
	}
	return nil
}
