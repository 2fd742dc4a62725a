//go:build amd64 && !purego

package kernels

// hasSegKernel reports whether this build has sgemmKernel14x32SegAVX512.
const hasSegKernel = true

// sgemmKernel14x32SegAVX512 computes the 14×32 tile C = Σ_s Σ_{p < steps} a[aOff + p·lda + i]·
// b[bOff + p·ldb + j] + beta·C over the nSegs segments at segs (C not read when beta == 0; strides
// and offsets in elements; segs may be nil when nSegs is 0).
//
//go:noescape
func sgemmKernel14x32SegAVX512(segs *stepSeg, nSegs int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, beta float32)

// sgemmKernel4x32SegAVX512 is the 4-row form of sgemmKernel14x32SegAVX512 (C[0:4, 0:32]), for the
// last rows of a product whose rows are not a multiple of 14.
//
//go:noescape
func sgemmKernel4x32SegAVX512(segs *stepSeg, nSegs int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, beta float32)

// sgemmKernel8x32FwdAVX512 computes the 8×32 tile C = Σ_s Σ_{p < steps} a_s[r·rs + p]·
// b[bOff + 32·p + j] + beta·C over the nSegs segments at segs (rowSeg; C not read when beta == 0).
//
//go:noescape
func sgemmKernel8x32FwdAVX512(segs *rowSeg, nSegs int, b *float32, c *float32, ldc int, beta float32)
