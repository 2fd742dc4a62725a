package runner

import (
	"reflect"
	"testing"
	"unsafe"

	"github.com/gomlx/go-xla/pkg/pjrt"
	"github.com/gomlx/gomlx/backends/xla"
	"github.com/gomlx/gomlx/pkg/core/graph"

	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// TestXLAExecutableMemoryField checks that GoMLX's xla.Executable still keeps the loaded PJRT
// executable in the field xlaExecutableMemory reads, and that the statistics come back through it.
func TestXLAExecutableMemoryField(t *testing.T) {
	e := &xla.Executable{}
	f, ok := reflect.TypeOf(e).Elem().FieldByName("exec")
	if !ok || f.Type != xlaExecFieldType {
		t.Fatalf("xla.Executable has no field exec of type %v (GoMLX changed): device memory would go unmeasured", xlaExecFieldType)
	}
	if _, ok := xlaExecutableMemory(e); ok {
		t.Error("an executable without a PJRT executable reported memory statistics")
	}
	want := pjrt.ExecutableMemoryUsageStats{GeneratedCode: 5, Inputs: 1000, Outputs: 900, Aliases: 800, Temporary: 300}
	le := &pjrt.LoadedExecutable{OnDeviceMemoryUsageStats: want, OnHostMemoryUsageStats: pjrt.ExecutableMemoryUsageStats{Temporary: 7}}
	v := reflect.ValueOf(e).Elem().FieldByName("exec")
	*(**pjrt.LoadedExecutable)(unsafe.Pointer(v.UnsafeAddr())) = le
	got, ok := xlaExecutableMemory(e)
	if !ok || got != want {
		t.Fatalf("read %+v (ok %v), want the on-device statistics %+v", got, ok, want)
	}
	if r := got.Requirements(); r != 5+1000+900-800+300 {
		t.Errorf("requirements %d, want code + arguments + outputs - aliased + temporaries = 1405", r)
	}
	if _, ok := xlaExecutableMemory(nil); ok {
		t.Error("a nil executable reported statistics")
	}
}

// TestDeviceMemoryBackendDelegates runs a graph through the wrapper (on the cpu backend, whose
// executables carry no XLA statistics) and checks the results, the measure names and the peak.
func TestDeviceMemoryBackendDelegates(t *testing.T) {
	b := withDeviceMemory(testutil.Backend())
	out := graph.MustExecOnce(b, func(x *graph.Node) *graph.Node { return graph.MulScalar(x, 3) }, []float32{1, 2})
	if got := out.Value().([]float32); got[0] != 3 || got[1] != 6 {
		t.Fatalf("through the wrapper: %v, want [3 6]", got)
	}
	if n, m := PeakMemory(b); n != 0 || m != "" {
		t.Errorf("no XLA executable compiled: got %d %q, want nothing", n, m)
	}
	d := b.(*devMemBackend)
	d.record(300)
	d.record(1200)
	d.record(500)
	if n, m := PeakMemory(b); n != 1200 || m != MeasureXLAExecutable {
		t.Errorf("got %d %q, want the largest executable's 1200 bytes (%s)", n, m, MeasureXLAExecutable)
	}
	if n, m := PeakMemory(testutil.Backend()); n <= 0 || m != MeasureRSS {
		t.Errorf("host backend: got %d %q, want the peak RSS", n, m)
	}
	if withDeviceMemory(nil) != nil {
		t.Error("wrapping no backend must give none")
	}
}
