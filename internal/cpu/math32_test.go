package cpu

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// math32Case is one float32 slice function with its float64 reference.
type math32Case struct {
	name   string
	fn     func(dst, src []float32)
	ref    func(float64) float64
	lo, hi float64 // the useful range swept densely
	maxRel float64 // bound on |got - want| / max(|want|, 2^-126)
}

func refLogistic(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

func math32Cases() []math32Case {
	return []math32Case{
		{"exp", exp32s, math.Exp, -104, 89, 4e-7},
		{"expm1", expm1_32s, math.Expm1, -18, 89, 4e-7},
		{"log", log32s, math.Log, 0, 64, 4e-7},
		{"log1p", log1p32s, math.Log1p, -1, 64, 4e-7},
		{"logistic", logistic32s, refLogistic, -104, 20, 4e-7},
		{"tanh", tanh32s, math.Tanh, -10, 10, 4e-7},
		{"erf", erf32s, math.Erf, -4.5, 4.5, 4e-7},
		{"exp vector", exp32v, math.Exp, -104, 89, 4e-7},
		{"erf vector", erf32v, math.Erf, -4.5, 4.5, 4e-7},
		{"sqrt", sqrt32s, math.Sqrt, 0, 64, 6e-8},
		{"rsqrt", rsqrt32s, func(x float64) float64 { return 1 / math.Sqrt(x) }, 0, 64, 6e-8},
	}
}

// relErr32 is the error of got against the float64 value want, relative to |want| (to the
// smallest normal float32 for subnormal results), or 0 when both are the same special value.
func relErr32(got float32, want float64) float64 {
	g := float64(got)
	switch {
	case math.IsNaN(want) || math.IsNaN(g):
		if math.IsNaN(want) && math.IsNaN(g) {
			return 0
		}
		return math.Inf(1)
	case math.IsInf(want, 0) || math.IsInf(g, 0) || math.Abs(want) > math.MaxFloat32:
		// A finite float64 beyond float32's range must round to an infinity of its sign.
		if math.IsInf(g, 0) && math.Signbit(g) == math.Signbit(want) && math.Abs(want) >= math.MaxFloat32*(1+0x1p-24) {
			return 0
		}
		if g == want {
			return 0
		}
		return math.Inf(1)
	}
	return math.Abs(g-want) / max(math.Abs(want), 0x1p-126)
}

// TestMath32 sweeps every function over its useful range in steps of 2^-10, near zero in finer
// steps, and over random float32 bit patterns, against package math in float64.
func TestMath32(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var random []float32
	for range 1 << 18 {
		random = append(random, math.Float32frombits(rng.Uint32()))
	}
	for _, c := range math32Cases() {
		var xs []float32
		for x := c.lo; x <= c.hi; x += 0x1p-10 {
			xs = append(xs, float32(x))
		}
		for x := 0x1p-20; x < 0.25; x *= 1.001 { // small magnitudes, both signs
			xs = append(xs, float32(x), float32(-x))
		}
		xs = append(xs, random...)
		got := make([]float32, len(xs))
		c.fn(got, xs)
		worst, worstX := 0.0, float32(0)
		for i, x := range xs {
			e := relErr32(got[i], c.ref(float64(x)))
			if e > worst || math.IsNaN(e) {
				worst, worstX = e, x
			}
		}
		t.Logf("%-8s max relative error %.3g (at x = %g), %d points", c.name, worst, worstX, len(xs))
		if !(worst <= c.maxRel) {
			t.Errorf("%s: max relative error %.3g at x = %g (got %g, want %g), bound %g", c.name, worst,
				worstX, c.fn1(worstX), c.ref(float64(worstX)), c.maxRel)
		}
	}
}

// fn1 evaluates the slice function on one value.
func (c math32Case) fn1(x float32) float32 {
	var d [1]float32
	c.fn(d[:], []float32{x})
	return d[0]
}

// TestMath32Special checks special values exactly: signed zeros, infinities, NaN, overflow and
// underflow, and in-place use (dst == src).
func TestMath32Special(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	negZero := float32(math.Copysign(0, -1))
	type pair struct{ x, want float32 }
	cases := map[string][]pair{
		"exp": {{0, 1}, {negZero, 1}, {inf, inf}, {-inf, 0}, {nan, nan}, {89, inf}, {88.7228, 3.4027e38},
			{-104, 0}, {-100, float32(math.Exp(-100))}, {1, float32(math.E)}},
		"expm1":    {{0, 0}, {negZero, negZero}, {inf, inf}, {-inf, -1}, {nan, nan}, {89, inf}, {-20, -1}},
		"log":      {{0, -inf}, {negZero, -inf}, {-1, nan}, {inf, inf}, {-inf, nan}, {nan, nan}, {1, 0}, {0x1p-149, float32(-149 * math.Ln2)}},
		"log1p":    {{0, 0}, {negZero, negZero}, {-1, -inf}, {-2, nan}, {inf, inf}, {nan, nan}},
		"logistic": {{0, 0.5}, {inf, 1}, {-inf, 0}, {nan, nan}, {100, 1}, {-200, 0}},
		"tanh":     {{0, 0}, {negZero, negZero}, {inf, 1}, {-inf, -1}, {nan, nan}, {20, 1}, {-20, -1}},
		"erf":      {{0, 0}, {negZero, negZero}, {inf, 1}, {-inf, -1}, {nan, nan}, {5, 1}, {-5, -1}},
	}
	for _, c := range math32Cases() {
		for _, p := range cases[strings.Fields(c.name)[0]] {
			got := c.fn1(p.x)
			ok := got == p.want && math.Signbit(float64(got)) == math.Signbit(float64(p.want))
			if p.want != p.want {
				ok = got != got
			}
			if p.x == 88.7228 {
				ok = math.Abs(float64(got)/math.Exp(float64(p.x))-1) < 4e-7
			}
			if !ok {
				t.Errorf("%s(%g) = %g, want %g", c.name, p.x, got, p.want)
			}
		}
		// In place: same results as out of place.
		xs := []float32{-3, -0.5, 0.25, 1.5, 7}
		want := make([]float32, len(xs))
		c.fn(want, xs)
		c.fn(xs, xs)
		for i := range xs {
			if math.Float32bits(xs[i]) != math.Float32bits(want[i]) {
				t.Errorf("%s in place: element %d = %g, want %g", c.name, i, xs[i], want[i])
			}
		}
	}
}

// BenchmarkMath32 measures each function on 4096 values in [-4, 4].
func BenchmarkMath32(b *testing.B) {
	src := make([]float32, 4096)
	for i := range src {
		src[i] = float32(i)/512 - 4
	}
	dst := make([]float32, len(src))
	for _, c := range math32Cases() {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				c.fn(dst, src)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/elem")
		})
	}
	b.Run("math.Erf-float64", func(b *testing.B) {
		for b.Loop() {
			for i, x := range src {
				dst[i] = float32(math.Erf(float64(x)))
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/elem")
	})
	b.Run("math.Exp-float64", func(b *testing.B) {
		for b.Loop() {
			for i, x := range src {
				dst[i] = float32(math.Exp(float64(x)))
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/elem")
	})
}

// TestMath32Offsets checks that every element's value is the same wherever it falls in a slice
// (full 8-lane blocks, a padded tail, a lane out of range beside it), so that a fused program and
// the op-by-op kernels, which cut slices differently, agree bit for bit.
func TestMath32Offsets(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	xs := make([]float32, 203)
	for i := range xs {
		xs[i] = float32(rng.NormFloat64() * 3)
	}
	xs[17], xs[100], xs[150] = 95, float32(math.NaN()), -100
	for _, c := range math32Cases() {
		want := make([]float32, len(xs))
		for i, x := range xs {
			want[i] = c.fn1(x)
		}
		for off := range 9 {
			got := make([]float32, len(xs)-off)
			c.fn(got, xs[off:])
			for i, g := range got {
				if math.Float32bits(g) != math.Float32bits(want[off+i]) {
					t.Fatalf("%s at offset %d: element %d (x = %g) = %g, alone %g", c.name, off, i, xs[off+i], g, want[off+i])
				}
			}
		}
	}
}
