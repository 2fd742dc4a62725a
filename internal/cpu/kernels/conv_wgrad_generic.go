//go:build !amd64 || purego

package kernels

// hasSegKernel reports whether this build has sgemmKernel14x32SegAVX512: it has not.
const hasSegKernel = false

func sgemmKernel14x32SegAVX512(segs *stepSeg, nSegs int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, beta float32) {
	panic("kernels: segmented micro-kernel without AVX-512")
}

func sgemmKernel4x32SegAVX512(segs *stepSeg, nSegs int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, beta float32) {
	panic("kernels: segmented micro-kernel without AVX-512")
}

func sgemmKernel8x32FwdAVX512(segs *rowSeg, nSegs int, b *float32, c *float32, ldc int, beta float32) {
	panic("kernels: segmented micro-kernel without AVX-512")
}
