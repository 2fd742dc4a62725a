// Package kernels holds ifa's dense float32/float64 matrix-multiplication kernels: a packed,
// cache-blocked GEMM (GotoBLAS/BLIS loop order) with a register-blocked micro-kernel, split over
// all cores, plus convolutions computed as GEMMs without materialising the im2col matrix.
//
// All matrices are row-major with explicit row strides; images are channels-last (NHWC) and
// convolution weights HWIO. Entry points:
//
//   - Sgemm / Dgemm: C = alpha·op(A)·op(B) + beta·C, op(X) = X or Xᵀ (BLAS semantics: beta == 0
//     never reads C; alpha == 0 or k == 0 never reads A or B).
//   - SgemmBatched / DgemmBatched: strided batches (stride 0 shares an operand); small products
//     such as per-head attention run in parallel across the batch.
//   - SconvIm2col: forward convolution y = im2col(x)·w, packing im2col panels straight from x,
//     or, for few output channels, reading each window segment of x in place (convTile); on the
//     AVX-512 path with 32-column tiles of output channels and windows of at least 256 values,
//     tiles of 8 pixels of an output row read x in place window row by window row
//     (conv_fwd.go, sgemmKernel8x32FwdAVX512), nothing packed but the weights.
//   - SconvFewChannels: the forward convolution for few input channels (the RGB first layer):
//     the im2col rows of one image at a time, in a buffer that stays in L2, read in place by the
//     GEMM (the bits of the GEMM of the materialised im2col matrix).
//   - SconvIm2colT: weight gradient dw = im2col(x)ᵀ·dy, computed as dwᵀ = dyᵀ·im2col(x) so that
//     the im2col panels are whole channel runs of x (dyᵀ read in place on the AVX-512 path); with
//     few channels (the RGB first layer), untransposed, its 14-row im2col panels packed pixel by
//     pixel (packPixelsAVX512). On the AVX-512 path with channels in multiples of 32 nothing is
//     packed (conv_wgrad.go): a segmented micro-kernel runs each 14×32 tile of dwᵀ over the row
//     segments of pixels whose window position is inside the image, reading dy and x in place;
//     the goroutines share dwᵀ by columns (channel slabs, window positions) and 14-row tiles,
//     each summing its part over all the pixels.
//   - SconvWinograd3x3: 3×3 stride-1 convolutions by Winograd F(2×2,3×3): 4×4 input tiles
//     transformed (Bᵀ·d·B, AVX), 16 GEMMs per block of tiles on the packed micro-kernel against
//     the transformed filter (G·g·Gᵀ, packed once per call), output tiles transformed back
//     (Aᵀ·m·A): 16 multiplies per 2×2 outputs instead of 36. The weights are read through
//     strides, so the reversed, channel-swapped kernel of an input gradient needs no copy.
//   - SconvWinograd3x3F4: the same by Winograd F(4×4,3×3) (winograd4.go: the matrices and their
//     derivation): 6×6 input tiles, 36 GEMMs per block, 36 multiplies per 4×4 outputs (2.25 per
//     output instead of 4), about 15 times F(2×2)'s rounding error; tile and filter transforms in
//     AVX-512 and AVX2 assembly (winograd4_avx512_amd64.s, winograd4_amd64.s) that give the bits
//     of the portable Go ones; on the avx512 path border tiles of at least 128 channels are
//     transformed straight from the image with zeroing masked loads, not through a zero-padded
//     copy (wino4InputEdge).
//     WinogradF4Pays says which of the two is the faster for a geometry on the active path.
//   - SconvWinograd3x3Filter, SconvWinograd3x3FilterF4: the weight gradient by Winograd F(3×3,2×2)
//     or F(3×3,4×4) (winograd_grad.go, winograd4.go; WinogradF4FilterPays chooses): blocks of
//     tiles whose products are summed into the a² matrices M_ξ of their part, or, where M_ξ
//     outgrow the second-level cache (8×8×256), whole chunks of tiles transformed first and one
//     product per ξ and panel over the chunk (sconvWinogradFilterByXi); the F(3×3,4×4) output
//     transform, with the parts' sums, in AVX-512 (winograd_grad_avx512_amd64.s).
//   - ConvGeometry.InputGradient + FlipHWIO: the input gradient dx as a forward convolution of dy
//     (input-dilated by the stride) with the flipped, channel-transposed weights.
//   - SconvInputDilated / SconvInputGradient: that input-dilated convolution without its zeros
//     (conv_taps.go): one product per output phase over the window positions that reach it (2×2,
//     2×1, 1×2 and 1×1 of a 3×3 window at stride 2), the phases sharing their packed views of dy,
//     each block of rows summed in a buffer and copied to its phase's pixels.
//
// Kernels: one path per process, chosen at start-up from the processor (isa.go: CPUID, and XCR0
// for the register state the OS saves, through golang.org/x/sys/cpu), forced by IFA_CPU_ISA or
// SetISA. On amd64 with AVX-512 F/BW/DQ/VL ("avx512") a 14×32 float32 micro-kernel on 28 zmm
// accumulators, and a 14×16 one (A broadcast from memory by the multiply-adds) for the Winograd
// products (those with at least 64 output channels use the 14×32 one: the forward ones with their
// transformed filter, the weight-gradient ones with their transformed gradient tiles packed in
// 32-column panels) and for products at most 16 columns wide; with AVX2 and FMA ("avx2") a 6×16 float32
// and a 6×8 float64 micro-kernel (the float64 products use the latter on the avx512 path too); all
// in Go assembly (kernel_amd64.s, kernel_avx512_amd64.s). Elsewhere, or with the purego build tag, portable 4×4 Go
// kernels ("generic"). simd/archsimd (GOEXPERIMENT=simd) was measured first: with its
// destructive 213-form MulAdd and 15 allocatable vector registers the compiler adds register
// copies and spills: a 5×16 archsimd kernel ran at a quarter to 40% of the assembly kernel's
// speed in interleaved runs (about 40 against 100 GFLOP/s on one core), so assembly is used in
// both build modes.
//
// Narrow products (C at most 4 column tiles wide, such as convolutions with few output channels)
// read A in place instead of packing it, since each element of A is then used only a few times;
// on the avx512 path, short products (at most bInPlaceMaxRows rows) likewise read an untransposed
// B in place (sgemmKernel14x32BAVX512), and the panels that are packed are packed with AVX-512
// loops (pack_avx512_amd64.s: 16×16 register transposes for transposed B and row-major A, and for
// im2col panels whose rows are read through pointers; zmm copies for B), which give the same
// panels as the Go loops.
// Products of 2^23 flops or more (one goroutine per 2^22; smaller ones gain nothing from waking a
// second goroutine) run on several goroutines, woken once per call, that take in turn the panels
// to pack and the blocks of C of one slice of k after the other, with no barrier between slices
// (a block waits only for its slice's panels and for its own previous slice), so a core slowed by
// other load takes fewer; tall products give each block of rows its own A panels, packed by the
// goroutine that uses them. Products of dense matrices with at least 128 columns per goroutine
// are instead cut into one run of column tiles per goroutine, each a serial product with its own
// panels (none shared between cores, A packed once per goroutine); and
// long sums into small outputs (weight gradients) are instead split along k into a fixed number
// of parts, each summed into its own buffer, the buffers then added in order.
//
// Results do not depend on the number of goroutines or on their scheduling: every sum has a
// partition and an order that are functions of the sizes only (blocks of C are computed whole by
// one goroutine with the serial order along k; split sums and Winograd weight-gradient blocks are
// cut by size and added in a fixed order), so a product gives the same bits on one core or many.
//
// Workspace (packing panels, Winograd blocks, transformed filters, weight-gradient accumulators,
// parallelFor's loop state) comes from sync.Pools, one per element type and size (getBuffers): a
// training step asks for the same sizes every step, and a page the process has not touched yet
// costs 10–25 µs to fault in on the project's machines, so a step should allocate nothing new.
//
// The package must not import GoMLX or any other ifa package; it keeps no mutable package state
// beyond those pools, the active kernel path (SetISA) and its helper goroutines
// (workers.go: at most GOMAXPROCS-1, which poll for the next parallel loop for 50 µs after each
// before they park, since waking a parked goroutine takes tens of µs), and is safe for concurrent
// use.
package kernels
