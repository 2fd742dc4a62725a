package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/gomlx/go-xla/pkg/pjrt"
	"github.com/gomlx/gomlx/backends/xla"
	"github.com/gomlx/gomlx/pkg/core/graph"

	"github.com/ifa-toolkit/ifa/internal/cpu"
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

// TestCompileLog: with IFA_COMPILE_LOG set, every compile appends a line naming the computation
// and its seconds; the host backends are wrapped only then, and keep their RSS measure.
func TestCompileLog(t *testing.T) {
	t.Setenv(CompileLogEnv, "")
	if b, _ := NewBackend("cpu", false); b == nil || b != unwrapBackend(b) {
		t.Fatal("without IFA_COMPILE_LOG the cpu backend must not be wrapped")
	}
	log := filepath.Join(t.TempDir(), "compiles.jsonl")
	t.Setenv(CompileLogEnv, log)
	b, err := NewBackend("cpu", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := unwrapBackend(b).(*cpu.Backend); !ok {
		t.Fatalf("unwrapBackend: %T", unwrapBackend(b))
	}
	for _, k := range []float64{2, 3} {
		e := graph.MustNewExec(b, func(x *graph.Node) *graph.Node { return graph.MulScalar(x, k) }).WithName(fmt.Sprintf("times%g", k))
		if got := e.MustExec([]float32{1})[0].Value().([]float32)[0]; got != float32(k) {
			t.Fatalf("through the wrapper: %v", got)
		}
	}
	raw, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 2 {
		t.Fatalf("compile log %q: want 2 lines", raw)
	}
	for i, l := range lines {
		var r CompileRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil || !strings.Contains(r.Name, fmt.Sprintf("times%d", i+2)) ||
			r.Backend != cpu.Name || r.Seconds <= 0 || r.DeviceBytes != 0 {
			t.Errorf("line %d %q: %+v %v", i, l, r, err)
		}
	}
	if secs, ok := CompileSeconds(b); !ok || secs <= 0 {
		t.Errorf("compile seconds %v (ok %v), want the two compiles' time", secs, ok)
	}
	if _, ok := CompileSeconds(testutil.Backend()); ok {
		t.Error("an unwrapped backend reported compile seconds")
	}
	if _, m := PeakMemory(b); m != MeasureRSS {
		t.Errorf("a wrapped host backend measures %q, want the RSS", m)
	}
	// An unwritable log is reported and then left alone; the compile itself succeeds.
	t.Setenv(CompileLogEnv, filepath.Join(t.TempDir(), "no", "such", "dir", "log"))
	b2, _ := NewBackend("cpu", false)
	graph.MustExecOnce(b2, func(x *graph.Node) *graph.Node { return graph.Neg(x) }, []float32{1})
	if b2.(*devMemBackend).logPath != "" {
		t.Error("an unwritable compile log is tried again at every compile")
	}
}
