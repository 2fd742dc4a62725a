package cpu

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"

	"github.com/ifa-toolkit/ifa/internal/cpu/kernels"
)

// Name is the name the backend is registered under (GOMLX_BACKEND=cpu).
const Name = "cpu"

func init() {
	backends.Register(Name, New)
}

// Backend is ifa's pure-Go CPU backend. It holds one device (0) and a pool of recycled buffers.
type Backend struct {
	finalized atomic.Bool
	pool      bufferPool
	opts      options
	stats     opStatTable
}

var _ backends.Backend = (*Backend)(nil)

// New returns a new CPU backend (and installs ifa's gradients: RegisterGradients). config is
// empty or a comma-separated list of options:
//   - workers=N caps the number of goroutines the kernels split their work over (default
//     runtime.GOMAXPROCS(0)); like isa, the cap is process-wide. Results do not depend on it.
//   - isa=avx512|avx2|generic forces the kernel path (default: the best the processor supports,
//     or the IFA_CPU_ISA environment variable). The path is process-wide: it applies to every
//     backend of the process from then on.
//   - directconv=off makes float32 convolutions build im2col blocks instead of packing their GEMM
//     operands straight from the input (default on).
//   - winograd=off turns Winograd off for 3×3 stride-1 convolutions and their gradients (default
//     on: forward convolutions and input gradients use F(4×4, 3×3) where it is the faster,
//     F(2×2, 3×3) elsewhere, kernel gradients F(3×3, 4×4) or F(3×3, 2×2) likewise); winograd=f2 or
//     f4 forces the 2×2 or the 4×4 tiles for all three.
//   - fusion=off runs float32 elementwise chains op by op instead of fused (default on).
//   - opstats=on times every op from the start (default off; see EnableOpStats).
//
// The last four hold for this backend only; on and off may also be written true/false or 1/0.
func New(config string) (backends.Backend, error) {
	RegisterGradients()
	if err := kernels.EnvError(); err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	opts, err := parseConfig(config)
	if err != nil {
		return nil, err
	}
	b := &Backend{opts: opts}
	b.pool.init()
	b.stats.on.Store(opts.opStats)
	return b, nil
}

// Name implements backends.Backend.
func (b *Backend) Name() string { return Name }

// String implements backends.Backend.
func (b *Backend) String() string { return Name }

// Description implements backends.Backend.
func (b *Backend) Description() string {
	return fmt.Sprintf("ifa pure-Go CPU backend (%d workers, %s kernels)", kernels.Threads(), kernels.ActiveISA())
}

// NumDevices implements backends.Backend: always 1.
func (b *Backend) NumDevices() int { return 1 }

// DeviceDescription implements backends.Backend.
func (b *Backend) DeviceDescription(deviceNum backends.DeviceNum) string {
	return fmt.Sprintf("cpu:%d", deviceNum)
}

// supportedDTypes lists the dtypes every op of this backend handles (where meaningful for the op).
var supportedDTypes = []dtypes.DType{
	dtypes.Bool, dtypes.Int8, dtypes.Int16, dtypes.Int32, dtypes.Int64,
	dtypes.Uint8, dtypes.Uint16, dtypes.Uint32, dtypes.Uint64,
	dtypes.Float32, dtypes.Float64,
}

// Capabilities implements backends.Backend.
func (b *Backend) Capabilities() backends.Capabilities {
	c := backends.Capabilities{
		Operations: make(map[backends.OpType]bool),
		DTypes:     make(map[dtypes.DType]bool),
	}
	for _, op := range implementedOps {
		c.Operations[op] = true
	}
	for _, dt := range supportedDTypes {
		c.DTypes[dt] = true
	}
	return c
}

// Builder implements backends.Backend.
func (b *Backend) Builder(name string) backends.Builder {
	return newBuilder(b, name)
}

// Finalize implements backends.Backend: it drops the buffer pool.
func (b *Backend) Finalize() {
	b.finalized.Store(true)
	b.pool.clear()
}

// IsFinalized implements backends.Backend.
func (b *Backend) IsFinalized() bool { return b.finalized.Load() }

// Buffer is the backend's storage of a tensor: a flat Go slice ([]float32, []int32, []bool, ...) in
// row-major order.
type Buffer struct {
	shape shapes.Shape
	flat  any
	// exposed is set once the flat slice was handed to a client (BufferData, NewSharedBuffer): such
	// storage is never recycled into the pool.
	exposed   bool
	finalized bool
}

// Shape returns the buffer's shape.
func (buf *Buffer) Shape() shapes.Shape { return buf.shape }

// Flat returns the buffer's flat storage ([]float32, ...).
func (buf *Buffer) Flat() any { return buf.flat }

func (b *Backend) asBuffer(buffer backends.Buffer) (*Buffer, error) {
	buf, ok := buffer.(*Buffer)
	if !ok || buf == nil {
		return nil, fmt.Errorf("cpu: buffer of type %T is not a cpu backend buffer", buffer)
	}
	if buf.finalized {
		return nil, fmt.Errorf("cpu: buffer %s was already finalized (or donated)", buf.shape)
	}
	return buf, nil
}

// BufferFinalize implements backends.DataInterface.
func (b *Backend) BufferFinalize(buffer backends.Buffer) error {
	buf, ok := buffer.(*Buffer)
	if !ok || buf == nil {
		return fmt.Errorf("cpu: BufferFinalize: buffer of type %T is not a cpu backend buffer", buffer)
	}
	if buf.finalized {
		return nil
	}
	b.recycle(buf)
	return nil
}

// recycle marks buf finalized and returns its storage to the pool unless it was exposed.
func (b *Backend) recycle(buf *Buffer) {
	if buf == nil || buf.finalized {
		return
	}
	buf.finalized = true
	if !buf.exposed && buf.flat != nil {
		b.pool.put(buf.shape.DType, buf.flat)
	}
	buf.flat = nil
}

// BufferShape implements backends.DataInterface.
func (b *Backend) BufferShape(buffer backends.Buffer) (shapes.Shape, error) {
	buf, err := b.asBuffer(buffer)
	if err != nil {
		return shapes.Invalid(), err
	}
	return buf.shape, nil
}

// BufferDeviceNum implements backends.DataInterface: always 0.
func (b *Backend) BufferDeviceNum(buffer backends.Buffer) (backends.DeviceNum, error) {
	if _, err := b.asBuffer(buffer); err != nil {
		return 0, err
	}
	return 0, nil
}

// BufferToFlatData implements backends.DataInterface.
func (b *Backend) BufferToFlatData(buffer backends.Buffer, flat any) error {
	buf, err := b.asBuffer(buffer)
	if err != nil {
		return err
	}
	n, err := copyFlat(flat, buf.flat)
	if err != nil {
		return fmt.Errorf("cpu: BufferToFlatData(%s): %w", buf.shape, err)
	}
	if n != buf.shape.Size() {
		return fmt.Errorf("cpu: BufferToFlatData(%s): flat has %d elements, want %d", buf.shape, n, buf.shape.Size())
	}
	return nil
}

// BufferFromFlatData implements backends.DataInterface.
func (b *Backend) BufferFromFlatData(deviceNum backends.DeviceNum, flat any, shape shapes.Shape) (backends.Buffer, error) {
	if deviceNum != 0 {
		return nil, fmt.Errorf("cpu: BufferFromFlatData: device %d does not exist (only 0)", deviceNum)
	}
	if err := checkDType(shape.DType); err != nil {
		return nil, fmt.Errorf("cpu: BufferFromFlatData(%s): %w", shape, err)
	}
	buf := b.newBuffer(shape)
	n, err := copyFlat(buf.flat, flat)
	if err != nil {
		return nil, fmt.Errorf("cpu: BufferFromFlatData(%s): %w", shape, err)
	}
	if n != shape.Size() {
		return nil, fmt.Errorf("cpu: BufferFromFlatData(%s): flat has %d elements, want %d", shape, n, shape.Size())
	}
	return buf, nil
}

// HasSharedBuffers implements backends.DataInterface: true.
func (b *Backend) HasSharedBuffers() bool { return true }

// NewSharedBuffer implements backends.DataInterface.
func (b *Backend) NewSharedBuffer(deviceNum backends.DeviceNum, shape shapes.Shape) (backends.Buffer, any, error) {
	if deviceNum != 0 {
		return nil, nil, fmt.Errorf("cpu: NewSharedBuffer: device %d does not exist (only 0)", deviceNum)
	}
	if err := checkDType(shape.DType); err != nil {
		return nil, nil, fmt.Errorf("cpu: NewSharedBuffer(%s): %w", shape, err)
	}
	buf := &Buffer{shape: shape, flat: makeFlat(shape.DType, shape.Size()), exposed: true}
	return buf, buf.flat, nil
}

// BufferData implements backends.DataInterface.
func (b *Backend) BufferData(buffer backends.Buffer) (any, error) {
	buf, err := b.asBuffer(buffer)
	if err != nil {
		return nil, err
	}
	buf.exposed = true
	return buf.flat, nil
}

// BufferCopyToDevice implements backends.DataInterface: there is only one device.
func (b *Backend) BufferCopyToDevice(source backends.Buffer, deviceNum backends.DeviceNum) (backends.Buffer, error) {
	return nil, fmt.Errorf("cpu: BufferCopyToDevice(device %d): the cpu backend has a single device", deviceNum)
}

// newBuffer returns a buffer of the given shape whose storage may come from the pool: its contents
// are undefined.
func (b *Backend) newBuffer(shape shapes.Shape) *Buffer {
	return &Buffer{shape: shape, flat: b.pool.get(shape.DType, shape.Size())}
}

// newZeroBuffer returns a buffer of the given shape filled with zeros.
func (b *Backend) newZeroBuffer(shape shapes.Shape) *Buffer {
	buf := b.newBuffer(shape)
	clearFlat(buf.flat)
	return buf
}

// bufferPool recycles flat slices by dtype and length.
type bufferPool struct {
	mu    sync.Mutex
	free  map[poolKey][]any
	bytes int
}

type poolKey struct {
	dtype dtypes.DType
	n     int
}

// A training step holds many buffers of one shape at once (a CNN's activations kept for the
// backward pass): the pool keeps up to poolMaxPerKey of each, so that from the second step on they
// all come back from it instead of being new, page-faulted memory that the garbage collector later
// frees again (with 8, a resnet8x4 step allocated 40 MB afresh).
const (
	poolMaxPerKey = 64
	poolMaxBytes  = 2 << 30
)

func (p *bufferPool) init() { p.free = make(map[poolKey][]any) }

func (p *bufferPool) clear() {
	p.mu.Lock()
	p.free = make(map[poolKey][]any)
	p.bytes = 0
	p.mu.Unlock()
}

func (p *bufferPool) get(dtype dtypes.DType, n int) any {
	if n > 0 {
		key := poolKey{dtype, n}
		p.mu.Lock()
		list := p.free[key]
		if len(list) > 0 {
			flat := list[len(list)-1]
			list[len(list)-1] = nil
			p.free[key] = list[:len(list)-1]
			p.bytes -= n * dtype.Size()
			p.mu.Unlock()
			return flat
		}
		p.mu.Unlock()
	}
	flat := makeFlat(dtype, n)
	if n*dtype.Size() >= hugePageMinBytes {
		adviseHugePages(flat)
	}
	return flat
}

func (p *bufferPool) put(dtype dtypes.DType, flat any) {
	n := flatLen(flat)
	if n == 0 {
		return
	}
	key := poolKey{dtype, n}
	size := n * dtype.Size()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.free == nil || len(p.free[key]) >= poolMaxPerKey || p.bytes+size > poolMaxBytes {
		return
	}
	p.free[key] = append(p.free[key], flat)
	p.bytes += size
}
