package kernels

import (
	"slices"
	"testing"
)

// testKernelsF32 returns the float32 GEMM and Winograd micro-kernels of every path this processor
// supports (one of each; the portable one first).
func testKernelsF32() []*kernel[float32] {
	var out []*kernel[float32]
	for _, isa := range SupportedISAs() {
		for _, k := range []*kernel[float32]{kernelsFor(isa).s, kernelsFor(isa).wino} {
			if !slices.ContainsFunc(out, func(o *kernel[float32]) bool { return o.name == k.name }) {
				out = append(out, k)
			}
		}
	}
	return out
}

// testKernelsF64 is testKernelsF32 for float64.
func testKernelsF64() []*kernel[float64] {
	var out []*kernel[float64]
	for _, isa := range SupportedISAs() {
		k := kernelsFor(isa).d
		if !slices.ContainsFunc(out, func(o *kernel[float64]) bool { return o.name == k.name }) {
			out = append(out, k)
		}
	}
	return out
}

// testWinoKernels returns the Winograd micro-kernels of every supported path.
func testWinoKernels() []*kernel[float32] {
	var out []*kernel[float32]
	for _, isa := range SupportedISAs() {
		ks := kernelsFor(isa)
		for _, k := range []*kernel[float32]{ks.wino, ks.winoWide} {
			if k != nil && !slices.ContainsFunc(out, func(o *kernel[float32]) bool { return o.name == k.name }) {
				out = append(out, k)
			}
		}
	}
	return out
}

// forEachISA runs f as a subtest on every path this processor supports (SetISA), restoring the
// path in use afterwards.
func forEachISA(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, isa := range SupportedISAs() {
		t.Run(isa.String(), func(t *testing.T) {
			prev, err := SetISA(isa)
			if err != nil {
				t.Fatal(err)
			}
			defer SetISA(prev)
			f(t)
		})
	}
}

func TestISA(t *testing.T) {
	for _, isa := range []ISA{ISAGeneric, ISAAVX2, ISAAVX512} {
		got, err := ParseISA(isa.String())
		if err != nil || got != isa {
			t.Errorf("ParseISA(%q) = %v, %v", isa, got, err)
		}
	}
	if _, err := ParseISA("sse"); err == nil {
		t.Error("ParseISA(sse) succeeded")
	}
	if _, err := SetISA(DetectedISA() + 1); err == nil {
		t.Errorf("SetISA(%s) succeeded on a processor supporting at most %s", DetectedISA()+1, DetectedISA())
	}
	forEachISA(t, func(t *testing.T) {
		want := SupportedISAs()[len(SupportedISAs())-1]
		_ = want
		if k := cur(); k.s.mr*k.s.nr == 0 || k.wino.nr > winoFilterBlock {
			t.Fatalf("path %s: kernels %s/%s", k.isa, k.s.name, k.wino.name)
		}
	})
	t.Logf("detected %s, active %s", DetectedISA(), ActiveISA())
}
