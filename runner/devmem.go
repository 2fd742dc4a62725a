package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sync"
	"time"
	"unsafe"

	"github.com/gomlx/go-xla/pkg/pjrt"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/xla"

	"github.com/ifa-toolkit/ifa/fit"
)

// Memory measures named in `ifa bench` JSON, summary.json and the report's memory table.
const (
	// MeasureXLAExecutable: the device bytes an XLA executable needs while it runs, from the
	// compiled executable's own statistics (PJRT_Executable_GetCompiledMemoryStats): arguments +
	// outputs − outputs aliased to (donated) arguments + temporaries + generated code, of the
	// largest executable the process compiled (the training step). Like PyTorch's
	// torch.cuda.max_memory_allocated it counts tensors only: no CUDA context, no allocator pool.
	MeasureXLAExecutable = "xla executable: arguments + outputs - aliased + temporaries + code (largest executable compiled)"
	// MeasureRSS: the process's peak resident set size (VmHWM of /proc/self/status), the measure on
	// backends that run on the host (cpu, go).
	MeasureRSS = "process peak resident set (VmHWM)"
)

// CompileLogEnv names a file to which every backend compile appends one JSON line (CompileRecord):
// the computation's name, the seconds its compile took and, on XLA backends, its device bytes.
const CompileLogEnv = "IFA_COMPILE_LOG"

// CompileRecord is one line of the CompileLogEnv file.
type CompileRecord struct {
	Name        string  `json:"name"`
	Backend     string  `json:"backend"`
	Seconds     float64 `json:"seconds"`
	DeviceBytes int64   `json:"device_bytes,omitempty"`
}

// devMemBackend wraps a backend to read the memory statistics of every executable it compiles
// (XLA backends) and to time the compiles (CompileLogEnv); everything else is delegated unchanged.
// GoMLX v0.26 keeps the PJRT executable in an unexported field of xla.Executable (see
// xlaExecutableMemory).
type devMemBackend struct {
	backends.Backend
	mu      sync.Mutex
	peak    int64         // largest Requirements() seen
	compile time.Duration // total time spent in the backend's Compile
	logPath string        // CompileLogEnv's file, or ""
	device  bool          // an XLA backend: PeakMemory reports the executables' device bytes
}

func (b *devMemBackend) Builder(name string) backends.Builder {
	return &devMemBuilder{Builder: b.Backend.Builder(name), rec: b, name: name}
}

type devMemBuilder struct {
	backends.Builder
	rec  *devMemBackend
	name string
}

func (b *devMemBuilder) Compile(outputs []backends.Op, shardings []*backends.ShardingSpec) (backends.Executable, error) {
	start := time.Now()
	e, err := b.Builder.Compile(outputs, shardings)
	if err != nil {
		return e, err
	}
	took := time.Since(start)
	b.rec.mu.Lock()
	b.rec.compile += took
	b.rec.mu.Unlock()
	rec := CompileRecord{Name: b.name, Backend: b.rec.Name(), Seconds: took.Seconds()}
	if s, ok := xlaExecutableMemory(e); ok {
		rec.DeviceBytes = s.Requirements()
		b.rec.record(rec.DeviceBytes)
	}
	if b.rec.logPath != "" {
		b.rec.logCompile(rec)
	}
	return e, nil
}

// logCompile appends rec to the compile log; a failure is reported once on stderr, never fatal.
func (b *devMemBackend) logCompile(rec CompileRecord) {
	line, _ := json.Marshal(rec)
	b.mu.Lock()
	defer b.mu.Unlock()
	f, err := os.OpenFile(b.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err == nil {
		_, err = f.Write(append(line, '\n'))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ifa: warning: %s: %v: compile times are not logged\n", CompileLogEnv, err)
		b.logPath = ""
	}
}

func (b *devMemBackend) record(n int64) {
	b.mu.Lock()
	b.peak = max(b.peak, n)
	b.mu.Unlock()
}

// withDeviceMemory wraps an XLA backend so that PeakMemory can report its executables' needs and
// compiles are logged to CompileLogEnv's file when it is set.
func withDeviceMemory(b backends.Backend) backends.Backend {
	if b == nil {
		return nil
	}
	return &devMemBackend{Backend: b, logPath: os.Getenv(CompileLogEnv), device: true}
}

// withCompileLog wraps a host backend only when CompileLogEnv is set (to time its compiles).
func withCompileLog(b backends.Backend) backends.Backend {
	if b == nil || os.Getenv(CompileLogEnv) == "" {
		return b
	}
	return &devMemBackend{Backend: b, logPath: os.Getenv(CompileLogEnv)}
}

// unwrapBackend returns the backend a devMemBackend wraps, or b itself.
func unwrapBackend(b backends.Backend) backends.Backend {
	if d, ok := b.(*devMemBackend); ok {
		return d.Backend
	}
	return b
}

// PeakMemory returns the peak memory of a run on backend b and what it measures: on XLA
// backends (NewBackend's "xla:...") the device bytes of the largest compiled executable
// (MeasureXLAExecutable), once one has been compiled; otherwise the process's peak RSS (MeasureRSS).
func PeakMemory(b backends.Backend) (bytes int64, measure string) {
	if d, ok := b.(*devMemBackend); ok && d.device {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.peak > 0 {
			return d.peak, MeasureXLAExecutable
		}
		return 0, ""
	}
	return fit.PeakRSS(), MeasureRSS
}

// CompileSeconds returns the seconds backend b has spent compiling executables so far (XLA's
// compile, without building the graphs), when b is one NewBackend wraps (XLA backends, and the host
// backends while CompileLogEnv is set); ok is false otherwise.
func CompileSeconds(b backends.Backend) (seconds float64, ok bool) {
	d, ok := b.(*devMemBackend)
	if !ok {
		return 0, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.compile.Seconds(), true
}

// xlaExecFieldType is the type of xla.Executable's unexported field "exec" that GoMLX v0.26 fills
// with the loaded PJRT executable; xlaExecutableMemory checks it before reading the field.
var xlaExecFieldType = reflect.TypeFor[*pjrt.LoadedExecutable]()

// xlaExecutableMemory returns the on-device memory statistics that go-xla read from PJRT when it
// loaded e, when e is a GoMLX XLA executable. GoMLX v0.26 has no accessor for them: the field is
// read through reflection after checking its name and type, so a GoMLX version that changes the
// layout makes ok false (and TestXLAExecutableMemoryField fail) instead of reading garbage.
func xlaExecutableMemory(e backends.Executable) (pjrt.ExecutableMemoryUsageStats, bool) {
	x, ok := e.(*xla.Executable)
	if !ok || x == nil {
		return pjrt.ExecutableMemoryUsageStats{}, false
	}
	f := reflect.ValueOf(x).Elem().FieldByName("exec")
	if !f.IsValid() || f.Type() != xlaExecFieldType {
		return pjrt.ExecutableMemoryUsageStats{}, false
	}
	le := *(**pjrt.LoadedExecutable)(unsafe.Pointer(f.UnsafeAddr()))
	if le == nil {
		return pjrt.ExecutableMemoryUsageStats{}, false
	}
	return le.OnDeviceMemoryUsageStats, true
}
