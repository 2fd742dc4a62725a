package data

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// RNG is the random source of augmentations and shuffling: PCG-DXSM with uniform draws defined here,
// so a (seed, epoch, index) gives the same numbers on every platform and Go release.
type RNG struct{ pcg rand.PCG }

// NewRNG returns an RNG seeded from the given values (mixed with SplitMix64).
func NewRNG(seeds ...uint64) *RNG {
	r := &RNG{}
	r.Seed(seeds...)
	return r
}

// Seed reseeds r from the given values.
func (r *RNG) Seed(seeds ...uint64) {
	h := uint64(0x9e3779b97f4a7c15)
	for _, s := range seeds {
		h = splitMix64(h ^ s)
	}
	r.pcg.Seed(h, splitMix64(h^0x6a09e667f3bcc909))
}

// Uint64 returns 64 random bits.
func (r *RNG) Uint64() uint64 { return r.pcg.Uint64() }

// Float64 returns a uniform value in [0, 1).
func (r *RNG) Float64() float64 { return float64(r.pcg.Uint64()>>11) * (1.0 / (1 << 53)) }

// Uniform returns a uniform value in [a, b).
func (r *RNG) Uniform(a, b float64) float64 { return a + (b-a)*r.Float64() }

// IntN returns a uniform integer in [0, n); n must be positive.
func (r *RNG) IntN(n int) int {
	// Lemire's multiply-shift with rejection: unbiased.
	un := uint64(n)
	for {
		hi, lo := bits.Mul64(r.pcg.Uint64(), un)
		if lo >= un || lo >= (-un)%un {
			return int(hi)
		}
	}
}

// Bernoulli returns true with probability p.
func (r *RNG) Bernoulli(p float64) bool { return p > 0 && (p >= 1 || r.Float64() < p) }

// Perm returns a uniform random permutation of [0, n) (Fisher–Yates).
func (r *RNG) Perm(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := r.IntN(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// splitMix64 is the SplitMix64 finaliser: a bijective mix of 64 bits.
func splitMix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// logUniform returns exp(U(log a, log b)).
func (r *RNG) logUniform(a, b float64) float64 { return math.Exp(r.Uniform(math.Log(a), math.Log(b))) }
