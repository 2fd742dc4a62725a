package kernels

import "unsafe"

// float is the element type set of the GEMM driver.
type float interface{ ~float32 | ~float64 }

// kernel describes a register-blocked micro-kernel and the cache blocking that suits it.
//
// fn computes the mr×nr tile C = Σ_p a[i·rs+p·ps]·b[p·nr+j] + beta·C over k steps of A (a packed
// panel with rs=1, ps=mr, or a block read in place) and the packed panel b (k×nr), with row stride
// ldc; it must not read C when beta == 0. fnB, when set, is fn reading B in place: step p of B is
// the nr elements at b[p·ldb] (see bInPlace).
type kernel[T float] struct {
	name       string
	mr, nr     int // register tile
	kc, mc, nc int // cache blocks: kc along k, mc (multiple of mr) along m, nc (multiple of nr) along n
	fn         func(k int, a *T, rs, ps int, b, c *T, ldc int, beta T)
	fnB        func(k int, a *T, rs, ps int, b *T, ldb int, c *T, ldc int, beta T)
}

// genericKernelF32 returns the portable float32 micro-kernel.
func genericKernelF32() *kernel[float32] {
	return &kernel[float32]{name: "go-4x4", mr: 4, nr: 4, kc: 256, mc: 128, nc: 1024, fn: kernelGo4x4[float32]}
}

// genericKernelF64 returns the portable float64 micro-kernel.
func genericKernelF64() *kernel[float64] {
	return &kernel[float64]{name: "go-4x4", mr: 4, nr: 4, kc: 256, mc: 128, nc: 1024, fn: kernelGo4x4[float64]}
}

// kernelGo4x4 is the portable 4×4 micro-kernel: 16 scalar accumulators.
func kernelGo4x4[T float](k int, a *T, rs, ps int, b, c *T, ldc int, beta T) {
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 T
	if k > 0 {
		as := unsafe.Slice(a, 3*rs+(k-1)*ps+1)
		bs := unsafe.Slice(b, 4*k)
		for p := 0; p < k; p++ {
			bp := bs[4*p : 4*p+4 : 4*p+4]
			i := p * ps
			a0, a1, a2, a3 := as[i], as[i+rs], as[i+2*rs], as[i+3*rs]
			b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
			c00 += a0 * b0
			c01 += a0 * b1
			c02 += a0 * b2
			c03 += a0 * b3
			c10 += a1 * b0
			c11 += a1 * b1
			c12 += a1 * b2
			c13 += a1 * b3
			c20 += a2 * b0
			c21 += a2 * b1
			c22 += a2 * b2
			c23 += a2 * b3
			c30 += a3 * b0
			c31 += a3 * b1
			c32 += a3 * b2
			c33 += a3 * b3
		}
	}
	cs := unsafe.Slice(c, 3*ldc+4)
	r0 := cs[0:4:4]
	r1 := cs[ldc : ldc+4 : ldc+4]
	r2 := cs[2*ldc : 2*ldc+4 : 2*ldc+4]
	r3 := cs[3*ldc : 3*ldc+4 : 3*ldc+4]
	if beta == 0 {
		r0[0], r0[1], r0[2], r0[3] = c00, c01, c02, c03
		r1[0], r1[1], r1[2], r1[3] = c10, c11, c12, c13
		r2[0], r2[1], r2[2], r2[3] = c20, c21, c22, c23
		r3[0], r3[1], r3[2], r3[3] = c30, c31, c32, c33
		return
	}
	r0[0], r0[1], r0[2], r0[3] = c00+beta*r0[0], c01+beta*r0[1], c02+beta*r0[2], c03+beta*r0[3]
	r1[0], r1[1], r1[2], r1[3] = c10+beta*r1[0], c11+beta*r1[1], c12+beta*r1[2], c13+beta*r1[3]
	r2[0], r2[1], r2[2], r2[3] = c20+beta*r2[0], c21+beta*r2[1], c22+beta*r2[2], c23+beta*r2[3]
	r3[0], r3[1], r3[2], r3[3] = c30+beta*r3[0], c31+beta*r3[1], c32+beta*r3[2], c33+beta*r3[3]
}
