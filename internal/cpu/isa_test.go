package cpu

import (
	"math"
	"strings"
	"testing"

	"github.com/ifa-toolkit/ifa/internal/cpu/kernels"
)

func TestBackendConfig(t *testing.T) {
	prev := kernels.ActiveISA()
	defer kernels.SetISA(prev)
	defer kernels.SetMaxThreads(kernels.SetMaxThreads(0)) // workers=1 below caps the whole process
	for _, isa := range kernels.SupportedISAs() {
		b, err := New("workers=1, isa=" + isa.String())
		if err != nil {
			t.Fatalf("isa=%s: %v", isa, err)
		}
		if got := kernels.ActiveISA(); got != isa {
			t.Errorf("isa=%s: active path %s", isa, got)
		}
		if d := b.Description(); !strings.Contains(d, isa.String()+" kernels") || !strings.Contains(d, "1 workers") {
			t.Errorf("isa=%s: description %q", isa, d)
		}
		if want := isa >= kernels.ISAAVX2; vec8() != want {
			t.Errorf("isa=%s: vec8() = %v", isa, !want)
		}
	}
	for _, bad := range []string{"workers=0", "workers=x", "isa=sse", "threads=2"} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%q) succeeded", bad)
		}
	}
	if kernels.DetectedISA() < kernels.ISAAVX512 {
		if _, err := New("isa=avx512"); err == nil {
			t.Errorf("isa=avx512 accepted on a processor supporting at most %s", kernels.DetectedISA())
		}
	}
}

// TestVectorPathsAgree checks that exp32v and erf32v give the same bits on every vector path
// (16 lanes, 8 lanes) for arguments across their ranges, specials included, at every offset.
func TestVectorPathsAgree(t *testing.T) {
	prev := kernels.ActiveISA()
	defer kernels.SetISA(prev)
	x := make([]float32, 0, 300)
	for i := 0; i < 250; i++ {
		x = append(x, float32(i-125)*0.83+float32(i%7)*0.01)
	}
	inf := float32(math.Inf(1))
	x = append(x, 0, float32(math.Copysign(0, -1)), inf, -inf, float32(math.NaN()), 88.5, -87.5, -103, 1e-30, 3.92, -3.92, 1, -1)
	var ref map[string][]float32
	for _, isa := range kernels.SupportedISAs() {
		if isa < kernels.ISAAVX2 {
			continue
		}
		kernels.SetISA(isa)
		got := map[string][]float32{}
		for name, f := range map[string]func(dst, src []float32){"exp": exp32v, "erf": erf32v} {
			for off := 0; off < 17; off++ {
				out := make([]float32, len(x)-off)
				f(out, x[off:])
				got[name] = append(got[name], out...)
			}
		}
		if ref == nil {
			ref = got
			continue
		}
		for name, want := range ref {
			for i, v := range got[name] {
				if math.Float32bits(v) != math.Float32bits(want[i]) && !(v != v && want[i] != want[i]) {
					t.Fatalf("%s on %s: element %d = %g, the avx2 path gives %g", name, isa, i, v, want[i])
				}
			}
		}
	}
}
