package cpu

import "github.com/ifa-toolkit/ifa/internal/cpu/kernels"

// vec8 reports whether the active kernel path has the 8-lane AVX2/FMA loops (kernels.ActiveISA:
// the one place that detects the processor's features; IFA_CPU_ISA or the backend's isa option
// can force a slower path).
func vec8() bool { return kernels.ActiveISA() >= kernels.ISAAVX2 }

// KernelPath returns the name of the kernel path the backend uses: "avx512", "avx2" or "generic".
func KernelPath() string { return kernels.ActiveISA().String() }

// vec16 reports whether the active kernel path has the 16-lane AVX-512 loops.
func vec16() bool { return kernels.ActiveISA() >= kernels.ISAAVX512 }
