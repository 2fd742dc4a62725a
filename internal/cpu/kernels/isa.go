package kernels

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
)

// ISA names a family of kernels: the instruction set the micro-kernels and vector loops of a path
// use. Higher values are faster and need more of the processor.
type ISA int

const (
	ISAGeneric ISA = iota // portable Go loops, any processor
	ISAAVX2               // AVX2 and FMA (amd64)
	ISAAVX512             // AVX-512 F/BW/DQ/VL, plus AVX2 and FMA (amd64)
)

// ISAEnv is the environment variable that forces a kernel path: "avx512", "avx2" or "generic".
const ISAEnv = "IFA_CPU_ISA"

// String returns the name ParseISA accepts.
func (i ISA) String() string {
	switch i {
	case ISAGeneric:
		return "generic"
	case ISAAVX2:
		return "avx2"
	case ISAAVX512:
		return "avx512"
	}
	return fmt.Sprintf("ISA(%d)", int(i))
}

// ParseISA parses "avx512", "avx2" or "generic" (case-insensitive).
func ParseISA(s string) (ISA, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "generic":
		return ISAGeneric, nil
	case "avx2":
		return ISAAVX2, nil
	case "avx512":
		return ISAAVX512, nil
	}
	return 0, fmt.Errorf("kernel path %q: want avx512, avx2 or generic", s)
}

// kernelSet is the set of kernels of one path.
type kernelSet struct {
	isa  ISA
	s    *kernel[float32] // GEMM
	d    *kernel[float64] // GEMM
	wino *kernel[float32] // Winograd products (nr ≤ winoFilterBlock)
	// winoWide, when set, is the kernel of the Winograd products (forward and weight gradient)
	// with at least winoWideCols columns (nr a multiple of winoFilterBlock).
	winoWide *kernel[float32]
}

// winoWideCols is the fewest output channels for which the forward Winograd products use
// winoWide. On the avx512 path the 14×32 kernel keeps its A elements in registers for 32 columns
// (one load per two multiply-adds) where the 14×16 one broadcasts each from memory (one load per
// multiply-add); with two goroutines (BenchmarkWinogradWide, three interleaved runs on a quiet
// machine), resnet8x4's layers at batch 64 took, 14×16 → 14×32: F(2×2) 8.9–9.2 → 7.5–7.8 ms at
// 32×32×64, 7.5–7.9 → 6.4–6.9 at 16×16×128, 8.0–8.5 → 6.6–7.8 at 8×8×256; F(4×4) 5.5–5.7 →
// 5.1–5.4, 4.8–5.3 → 4.2–4.5 and 7.0–9.0 → 5.5–5.7.
const winoWideCols = 64

// winoFor returns the micro-kernel of the Winograd products with n output channels (forward
// convolutions and weight gradients). For the weight gradients (M_ξ += V_ξᵀ·E_ξ, the gradient
// tiles packed in panels of the kernel's width) the 14×32 kernel took 8–13% less CPU time than the
// 14×16 one at 32×32×64 and 16×16×128 (F(3×3, 4×4)) and 8×8×256 (F(3×3, 2×2)) in two interleaved
// runs of BenchmarkWinogradFilter on a quiet machine.
func (ks *kernelSet) winoFor(n int) *kernel[float32] {
	if ks.winoWide != nil && n >= winoWideCols {
		return ks.winoWide
	}
	return ks.wino
}

// narrowCols is the widest product (columns of C) that sgemm gives to the Winograd kernel when it
// is narrower than the GEMM kernel: a 32-column tile would be half padding.
const narrowCols = 16

// sgemm returns the float32 micro-kernel for products with n columns.
func (ks *kernelSet) sgemm(n int) *kernel[float32] {
	if n <= narrowCols && ks.wino.nr < ks.s.nr {
		return ks.wino
	}
	return ks.s
}

// detected is the best path this processor and its OS support (detectISA: CPUID, and XCR0 for
// the register state the OS saves); active is the path in use.
var (
	detected = detectISA()
	active   atomic.Pointer[kernelSet]
	envErr   error
)

func init() {
	isa := detected
	if s, ok := os.LookupEnv(ISAEnv); ok && s != "" {
		forced, err := ParseISA(s)
		switch {
		case err != nil:
			envErr = fmt.Errorf("%s: %w", ISAEnv, err)
		case forced > detected:
			envErr = fmt.Errorf("%s=%s: this processor supports at most %s", ISAEnv, forced, detected)
		default:
			isa = forced
		}
	}
	active.Store(kernelsFor(isa))
}

// EnvError returns the error in IFA_CPU_ISA, if any (the kernels then use DetectedISA).
func EnvError() error { return envErr }

// DetectedISA returns the best kernel path this processor and OS support.
func DetectedISA() ISA { return detected }

// ActiveISA returns the kernel path in use.
func ActiveISA() ISA { return active.Load().isa }

// SupportedISAs returns every path this processor supports, slowest first.
func SupportedISAs() []ISA {
	var out []ISA
	for i := ISAGeneric; i <= detected; i++ {
		out = append(out, i)
	}
	return out
}

// SetISA makes every kernel of this process use path isa from now on and returns the path it
// replaces; it fails, changing nothing, when the processor does not support isa. Calls running at
// the time finish on the kernels they started with.
func SetISA(isa ISA) (ISA, error) {
	if isa < ISAGeneric || isa > detected {
		return ActiveISA(), fmt.Errorf("kernel path %s: this processor supports at most %s", isa, detected)
	}
	return active.Swap(kernelsFor(isa)).isa, nil
}

// cur returns the kernels in use.
func cur() *kernelSet { return active.Load() }
