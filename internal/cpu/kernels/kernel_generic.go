//go:build !amd64 || purego

package kernels

// detectISA returns ISAGeneric: this build has no assembly kernels.
func detectISA() ISA { return ISAGeneric }

// kernelsFor returns the portable Go micro-kernels.
func kernelsFor(ISA) *kernelSet {
	s := genericKernelF32()
	return &kernelSet{isa: ISAGeneric, s: s, d: genericKernelF64(), wino: s}
}
