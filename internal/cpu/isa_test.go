package cpu

import (
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
