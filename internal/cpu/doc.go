// Package cpu is ifa's pure-Go GoMLX backend, registered as "cpu": it needs no C library and
// implements every op the ifa models need to train (convolutions and their gradients, padding,
// reversal, window reductions and their scatter gradients, dynamic slices, gathers and scatters,
// batch-norm ops, Philox random bits, ...) for float32, float64, integer and boolean tensors.
//
// A graph is compiled into a list of steps in creation order, keeping only what the outputs need;
// each intermediate buffer is released (to a pool keyed by dtype and size) right after its last
// use, donated inputs are reused, and elementwise ops run in place when they can; a broadcast that
// only feeds elementwise ops (which broadcast scalars and size-1 axes themselves) is never
// materialised. Values that depend on no parameter (constants, iotas and ops on them, such as a
// contrastive loss's masks) are computed once, at the first Execute, and kept read-only by the
// executable (constfold.go). Chains of float32 elementwise ops (Add, Sub, Mul, Div, Max, Min, Neg,
// comparisons feeding a Where, and the unary Exp, Expm1, Log, Log1p, Logistic, Tanh, Erf, Sqrt,
// Rsqrt, Abs, Sign) over one shape, whose intermediate values have a single use, are fused at
// compile time into one step that evaluates the expression tree block by block (operands may be
// scalars, per-channel vectors along the last axis, or per-row values [..., 1]); two program forms
// have their own AVX-512 loops: an inference batch norm and its ReLU, max(x·a + b, 0), also after
// a residual sum (a frozen teacher's layers), and a ReLU's gradient, y ≥ 0 ? g : 0. A ReLU of a
// training batch norm's output, and the residual sum before it when that is the normalised value's
// only use, are written by the batch norm's normalisation pass (fuseBatchNormReLU); when that
// ReLU's input is otherwise read only by ReLU gradients, the batch norm writes the bits of y ≥ 0
// instead of y, and the gradients read those (fuseReLUMask); a residual that is another batch
// norm's output with no other use (a projection shortcut's) is normalised in that same pass from
// the shortcut's operand, the shortcut's batch norm writing only its statistics (fuseShortcutNorm).
// These two apply on the AVX-512 path to feature counts in multiples of 16 (maskFusionPays).
// Float32 transcendental functions use float32 polynomial kernels (math32.go, ≤ 2e-7 relative
// error).
// The 8-lane AVX2/FMA loops of exp, erf, the binary ops, row reductions, batch norm and small
// products, and the 16-lane AVX-512 loops of exp, erf, row reductions and batch norm (whose last
// partial blocks go through opmasks), are Go assembly (vec_amd64.s), chosen at run time with the
// kernel path (kernels.ActiveISA, isa.go); no build needs a GOEXPERIMENT. Steps run one after the other;
// heavy ops split their work over all cores, on the kernels' helper goroutines
// (kernels.ParallelFor), and take their scratch from pools (scratch.go), not new memory.
// DotGeneral and ConvGeneral run as GEMMs on internal/cpu/kernels (float32 1-D and 2-D
// convolutions and their kernel gradients pack the GEMM operands straight from the channels-last
// input; 3×3 stride-1 convolutions and their input gradients with 8 or more channels use Winograd
// F(4×4,3×3) where kernels.WinogradF4Pays, else F(2×2,3×3), and their kernel gradients
// F(3×3,4×4) where kernels.WinogradF4FilterPays, else F(3×3,2×2); others go through im2col blocks; input-dilated ones, such as the input gradient of a
// strided convolution, use a col2im path free of the dilation's zeros; depthwise convolutions
// and the kernel gradients of grouped ones, which come as batch-grouped convolutions, have their own
// loops in conv_grouped.go). BatchNormForTraining and
// BatchNormGradient with the feature axis last take two passes each over float32 data, split over
// the cores with deterministic sums (batchnorm.go).
//
// Results are the same bits on any number of cores: every parallel sum (split GEMMs, Winograd
// weight gradients, reductions, batch-norm statistics) is cut into pieces fixed by the problem's
// sizes and added in a fixed order, never by GOMAXPROCS or by which goroutine finishes first, and
// the elementwise kernels give the same value for an element wherever a chunk boundary falls. The
// backend option workers=N caps the goroutines (kernels.SetMaxThreads) without changing results.
// determinism_test.go here and in kernels, and cmd/ifa's training tests on 1, 2 and 3 cores, check
// it bit for bit.
//
// Options (the config string of New, for example GOMLX_BACKEND=cpu:winograd=off or ifa's
// --backend cpu:isa=avx2,workers=1): workers and isa are process-wide; directconv, winograd,
// fusion and opstats belong to the backend (options.go). Tests compare the kernel choices by
// making backends with them off, never by changing package state.
//
// # File map
//
// The backend and the graph machinery:
//   - backend.go: Backend, New, buffers and the buffer pool; options.go: the config options.
//   - builder.go: Builder, graph nodes, Parameter, Constant, Identity, the list of implemented ops.
//   - exec.go: Compile (liveness, buffer release, in-place reuse), Execute, the op → executor table.
//   - constfold.go: values that depend on no parameter, computed once; fused.go: compile-time
//     fusion of float32 elementwise chains and their block-wise evaluation.
//   - vjp.go: RegisterGradients and ifa's gradients; opstats.go: per-op timings.
//   - dtypes.go: dtype sets and flat-slice helpers; parallel.go: parallelFor; scratch.go: pooled
//     scratch slices; isa.go: the kernel path (kernels.ActiveISA).
//
// One file per op family, holding its builder methods (with their shape checks) and execution:
//   - unary.go (Abs … Clz, IsFinite, IsNaN), binary.go (Add … ShiftRightLogical, broadcasting),
//     compare.go (Equal … LessThanTotalOrder), select.go (Clamp, Where), convert.go (ConvertDType).
//   - layout.go (Iota, Reshape, Transpose, BroadcastInDim, Concatenate, and the strided box
//     copies the other families use), slice.go (Slice, Pad, Reverse, DynamicSlice,
//     DynamicUpdateSlice), gather.go (Gather, ScatterSum/Max/Min).
//   - reduce.go (Reduce*, ArgMinMax), window.go (ReduceWindow, SelectAndScatter*), rng.go
//     (RNGBitGenerator).
//   - dot.go (DotGeneral, Dot), conv.go (ConvGeneral: im2col blocks, direct packing, Winograd,
//     col2im for input-dilated convolutions, kernel gradients), conv_grouped.go (depthwise
//     convolutions, kernel gradients of grouped ones), batchnorm.go (BatchNormFor*,
//     BatchNormGradient, the channels-last fast passes).
//   - math32.go: the float32 polynomial exp, log, tanh, erf, … used by unary.go and fused.go.
//
// Variants: <family>_amd64.go holds a family's AVX2/AVX-512 dispatch (build tag amd64 && !purego)
// and <family>_generic.go its portable fallback for other builds (binary, batchnorm, dot, math32,
// reduce); the assembly loops they call are in vec_amd64.s, generated by vec_amd64_gen.py and
// declared in vec_amd64.go. The GEMM, convolution and Winograd kernels are in package kernels.
//
// RegisterGradients (called by New, and by the ifa command for every backend) installs gradients
// in GoMLX's graph.VJPRegistration (see vjp.go): DotGeneral and Dot gradients made of
// DotGenerals, Max/Min (ReLU) gradients as one comparison and a Where, a ConvGeneral gradient that
// is correct for even kernel sizes and asymmetric padding, and gradients GoMLX v0.26 lacks (Rsqrt,
// Expm1, Clamp, Pad, Reverse, Floor/Ceil/Round). Importing the package changes nothing.
//
// It must not import any other ifa package (its tests use internal/nn).
package cpu
