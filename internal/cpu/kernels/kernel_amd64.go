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

// sgemmKernel14x32AVX512 is the AVX-512 analogue of sgemmKernel6x16AVX2 on a 14×32 tile
// (28 zmm accumulators; A elements broadcast from memory by the multiply-adds).
//
//go:noescape
func sgemmKernel14x32AVX512(k int, a *float32, rs, ps int, b, c *float32, ldc int, beta float32)

// sgemmKernel14x32BAVX512 is sgemmKernel14x32AVX512 reading B in place: step p of B is the 32
// floats at b[p·ldb] (same operations in the same order, so the same bits).
//
//go:noescape
func sgemmKernel14x32BAVX512(k int, a *float32, rs, ps int, b *float32, ldb int, c *float32, ldc int, beta float32)

// sgemmKernel14x16AVX512 is the AVX-512 analogue of sgemmKernel6x16AVX2 on a 14×16 tile (14 zmm
// accumulators; each A element broadcast from memory by its multiply-add), for the Winograd
// products, whose filter blocks are at most 16 columns wide.
//
//go:noescape
func sgemmKernel14x16AVX512(k int, a *float32, rs, ps int, b, c *float32, ldc int, beta float32)

// detectISA returns the best path of this processor. golang.org/x/sys/cpu reads CPUID and XCR0:
// its AVX2 and FMA flags require the OS to save the YMM state (XCR0 bits 1 and 2), its AVX-512
// flags the opmask and ZMM state too (bits 5, 6 and 7).
func detectISA() ISA {
	x := &cpu.X86
	switch {
	case x.HasAVX2 && x.HasFMA && x.HasAVX512F && x.HasAVX512BW && x.HasAVX512DQ && x.HasAVX512VL:
		return ISAAVX512
	case x.HasAVX2 && x.HasFMA:
		return ISAAVX2
	}
	return ISAGeneric
}

// avx2Kernels returns the AVX2/FMA micro-kernels.
func avx2Kernels() (*kernel[float32], *kernel[float64]) {
	return &kernel[float32]{name: "avx2-6x16", mr: 6, nr: 16, kc: 256, mc: 144, nc: 4080, fn: sgemmKernel6x16AVX2},
		&kernel[float64]{name: "avx2-6x8", mr: 6, nr: 8, kc: 256, mc: 72, nc: 2040, fn: dgemmKernel6x8AVX2}
}

// avx512KernelF32 returns the AVX-512 float32 micro-kernel.
func avx512KernelF32() *kernel[float32] {
	return &kernel[float32]{name: "avx512-14x32", mr: 14, nr: 32, kc: 256, mc: 168, nc: 4096, fn: sgemmKernel14x32AVX512,
		fnB: sgemmKernel14x32BAVX512}
}

// kernelsFor returns the kernels of path isa.
func kernelsFor(isa ISA) *kernelSet {
	switch isa {
	case ISAAVX512:
		_, d := avx2Kernels()
		wino := &kernel[float32]{name: "avx512-14x16", mr: 14, nr: 16, kc: 256, mc: 168, nc: 4096, fn: sgemmKernel14x16AVX512}
		s := avx512KernelF32()
		return &kernelSet{isa: isa, s: s, d: d, wino: wino, winoWide: s}
	case ISAAVX2:
		s, d := avx2Kernels()
		return &kernelSet{isa: isa, s: s, d: d, wino: s}
	}
	s := genericKernelF32()
	return &kernelSet{isa: ISAGeneric, s: s, d: genericKernelF64(), wino: s}
}
