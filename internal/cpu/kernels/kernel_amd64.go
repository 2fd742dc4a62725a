//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

// sgemmKernel6x16AVX2 computes C[0:6, 0:16] = Σ_p a[i·rs+p·ps]·b[p·16+j] + beta·C over k steps
// of A (packed: rs=1, ps=6; or read in place) and the packed B panel (k×16); C is not read when
// beta == 0; strides are in elements.
//
//go:noescape
func sgemmKernel6x16AVX2(k int, a *float32, rs, ps int, b, c *float32, ldc int, beta float32)

// dgemmKernel6x8AVX2 is the float64 analogue of sgemmKernel6x16AVX2 on a 6×8 tile.
//
//go:noescape
func dgemmKernel6x8AVX2(k int, a *float64, rs, ps int, b, c *float64, ldc int, beta float64)

// hasAVX2FMA reports whether the CPU and OS support the AVX2/FMA micro-kernels.
var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// bestKernels returns the fastest micro-kernels this CPU supports.
func bestKernels() (*kernel[float32], *kernel[float64]) {
	if hasAVX2FMA {
		return &kernel[float32]{name: "avx2-6x16", mr: 6, nr: 16, kc: 256, mc: 144, nc: 4080, fn: sgemmKernel6x16AVX2},
			&kernel[float64]{name: "avx2-6x8", mr: 6, nr: 8, kc: 256, mc: 72, nc: 2040, fn: dgemmKernel6x8AVX2}
	}
	return genericKernelF32(), genericKernelF64()
}
