package cpu

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/notimplemented"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// opTupleElement is an internal op: output #index of a multi-output node (its only input).
const opTupleElement = backends.OpTypeLast + 1

// node is one operation of a graph under construction; the graph is the builder's node list, in
// creation (hence topological) order.
type node struct {
	id      int
	op      backends.OpType
	shape   shapes.Shape
	inputs  []*node
	params  any
	builder *Builder

	// multiShapes holds the output shapes of a multi-output node (shape is then invalid); such a node
	// is only consumed through opTupleElement nodes.
	multiShapes []shapes.Shape
	// index is the output taken by an opTupleElement node.
	index int
}

// Builder implements backends.Builder for the cpu backend.
type Builder struct {
	notimplemented.Builder
	backend  *Backend
	name     string
	nodes    []*node
	params   []*node
	compiled bool
}

var _ backends.Builder = (*Builder)(nil)

func newBuilder(b *Backend, name string) *Builder {
	bld := &Builder{backend: b, name: name}
	bld.Builder.ErrFn = func(op backends.OpType) error {
		return fmt.Errorf("cpu: op %s is not implemented by the cpu backend", op)
	}
	return bld
}

// Name implements backends.Builder.
func (b *Builder) Name() string { return b.name }

// OpShape implements backends.Builder.
func (b *Builder) OpShape(op backends.Op) (shapes.Shape, error) {
	n, err := b.node(op, "OpShape")
	if err != nil {
		return shapes.Invalid(), err
	}
	return n.shape, nil
}

// DistributedSPMD implements backends.Builder: only a single device is supported.
func (b *Builder) DistributedSPMD(numDevices int) error {
	if numDevices == 1 {
		return nil
	}
	return fmt.Errorf("cpu: DistributedSPMD(%d): the cpu backend has a single device", numDevices)
}

// DeviceAssignment implements backends.Builder: only device 0 exists.
func (b *Builder) DeviceAssignment(devices ...backends.DeviceNum) error {
	if len(devices) == 1 && devices[0] == 0 {
		return nil
	}
	return fmt.Errorf("cpu: DeviceAssignment(%v): the cpu backend has a single device 0", devices)
}

func (b *Builder) node(op backends.Op, ctx string) (*node, error) {
	n, ok := op.(*node)
	if !ok || n == nil {
		return nil, fmt.Errorf("cpu: %s: op of type %T is not a cpu backend op", ctx, op)
	}
	if n.builder != b {
		return nil, fmt.Errorf("cpu: %s: op #%d belongs to another computation (%q)", ctx, n.id, n.builder.name)
	}
	if n.multiShapes != nil {
		return nil, fmt.Errorf("cpu: %s: op #%d has multiple outputs and cannot be used directly", ctx, n.id)
	}
	return n, nil
}

func (b *Builder) nodes2(ctx string, ops ...backends.Op) ([]*node, error) {
	if b.compiled {
		return nil, fmt.Errorf("cpu: %s: computation %q was already compiled", ctx, b.name)
	}
	ns := make([]*node, len(ops))
	for i, op := range ops {
		n, err := b.node(op, ctx)
		if err != nil {
			return nil, err
		}
		ns[i] = n
	}
	return ns, nil
}

func (b *Builder) add(op backends.OpType, shape shapes.Shape, params any, inputs ...*node) *node {
	n := &node{id: len(b.nodes), op: op, shape: shape, inputs: inputs, params: params, builder: b}
	b.nodes = append(b.nodes, n)
	return n
}

// addMulti adds a multi-output node and returns one opTupleElement node per output.
func (b *Builder) addMulti(op backends.OpType, outShapes []shapes.Shape, params any, inputs ...*node) []*node {
	m := &node{id: len(b.nodes), op: op, shape: shapes.Invalid(), inputs: inputs, params: params, builder: b,
		multiShapes: outShapes}
	b.nodes = append(b.nodes, m)
	outs := make([]*node, len(outShapes))
	for i, s := range outShapes {
		e := b.add(opTupleElement, s, nil, m)
		e.index = i
		outs[i] = e
	}
	return outs
}

// Parameter implements backends.Builder.
func (b *Builder) Parameter(name string, shape shapes.Shape, _ *backends.ShardingSpec) (backends.Op, error) {
	if b.compiled {
		return nil, fmt.Errorf("cpu: Parameter(%q): computation %q was already compiled", name, b.name)
	}
	if err := checkDType(shape.DType); err != nil {
		return nil, fmt.Errorf("cpu: Parameter(%q, %s): %w", name, shape, err)
	}
	n := b.add(backends.OpTypeParameter, shape, paramInfo{name: name, index: len(b.params)})
	b.params = append(b.params, n)
	return n, nil
}

type paramInfo struct {
	name  string
	index int
}

// Constant implements backends.Builder.
func (b *Builder) Constant(flat any, dims ...int) (backends.Op, error) {
	if b.compiled {
		return nil, fmt.Errorf("cpu: Constant: computation %q was already compiled", b.name)
	}
	if flat == nil {
		return nil, fmt.Errorf("cpu: Constant: nil flat data")
	}
	v := reflect.ValueOf(flat)
	if v.Kind() != reflect.Slice {
		return nil, fmt.Errorf("cpu: Constant: flat must be a slice, got %T", flat)
	}
	dtype := dtypes.FromGoType(v.Type().Elem())
	if err := checkDType(dtype); err != nil {
		return nil, fmt.Errorf("cpu: Constant(%T): %w", flat, err)
	}
	shape := shapes.Make(dtype, dims...)
	if shape.Size() != v.Len() {
		return nil, fmt.Errorf("cpu: Constant: flat has %d elements, dims %v need %d", v.Len(), dims, shape.Size())
	}
	buf := &Buffer{shape: shape, flat: makeFlat(dtype, shape.Size())}
	if _, err := copyFlat(buf.flat, flat); err != nil {
		return nil, fmt.Errorf("cpu: Constant: %w", err)
	}
	return b.add(backends.OpTypeConstant, shape, buf), nil
}

// Identity implements backends.Builder.
func (b *Builder) Identity(x backends.Op) (backends.Op, error) {
	ns, err := b.nodes2("Identity", x)
	if err != nil {
		return nil, err
	}
	return b.add(backends.OpTypeIdentity, ns[0].shape, nil, ns[0]), nil
}

func ones(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

func orOnes(s []int, n int) []int {
	if len(s) == 0 {
		return ones(n)
	}
	return slices.Clone(s)
}

func orZeroPads(p [][2]int, n int) [][2]int {
	if len(p) == 0 {
		return make([][2]int, n)
	}
	return slices.Clone(p)
}

// implementedOps lists the ops reported in Capabilities.
var implementedOps = []backends.OpType{
	backends.OpTypeParameter, backends.OpTypeConstant, backends.OpTypeIdentity, backends.OpTypeIota,
	backends.OpTypeAbs, backends.OpTypeNeg, backends.OpTypeSign, backends.OpTypeExp, backends.OpTypeExpm1,
	backends.OpTypeLog, backends.OpTypeLog1p, backends.OpTypeLogistic, backends.OpTypeSqrt, backends.OpTypeRsqrt,
	backends.OpTypeTanh, backends.OpTypeErf, backends.OpTypeCos, backends.OpTypeSin, backends.OpTypeFloor,
	backends.OpTypeCeil, backends.OpTypeRound, backends.OpTypeIsFinite, backends.OpTypeIsNaN,
	backends.OpTypeLogicalNot, backends.OpTypeBitwiseNot, backends.OpTypeBitCount, backends.OpTypeClz,
	backends.OpTypeAdd, backends.OpTypeSub, backends.OpTypeMul, backends.OpTypeDiv, backends.OpTypeRem,
	backends.OpTypePow, backends.OpTypeMax, backends.OpTypeMin, backends.OpTypeLogicalAnd, backends.OpTypeLogicalOr,
	backends.OpTypeLogicalXor, backends.OpTypeBitwiseAnd, backends.OpTypeBitwiseOr, backends.OpTypeBitwiseXor,
	backends.OpTypeShiftLeft, backends.OpTypeShiftRightArithmetic, backends.OpTypeShiftRightLogical,
	backends.OpTypeEqual, backends.OpTypeNotEqual, backends.OpTypeGreaterOrEqual, backends.OpTypeGreaterThan,
	backends.OpTypeLessOrEqual, backends.OpTypeLessThan, backends.OpTypeEqualTotalOrder,
	backends.OpTypeNotEqualTotalOrder, backends.OpTypeGreaterOrEqualTotalOrder, backends.OpTypeGreaterThanTotalOrder,
	backends.OpTypeLessOrEqualTotalOrder, backends.OpTypeLessThanTotalOrder, backends.OpTypeClamp,
	backends.OpTypeWhere, backends.OpTypeConvertDType, backends.OpTypeReshape, backends.OpTypeTranspose,
	backends.OpTypeBroadcastInDim, backends.OpTypeReduceSum, backends.OpTypeReduceMax, backends.OpTypeReduceMin,
	backends.OpTypeReduceProduct, backends.OpTypeReduceLogicalAnd, backends.OpTypeReduceLogicalOr,
	backends.OpTypeReduceLogicalXor, backends.OpTypeReduceBitwiseAnd, backends.OpTypeReduceBitwiseOr,
	backends.OpTypeReduceBitwiseXor, backends.OpTypeArgMinMax, backends.OpTypeConcatenate, backends.OpTypeSlice,
	backends.OpTypePad, backends.OpTypeReverse, backends.OpTypeDynamicSlice, backends.OpTypeDynamicUpdateSlice,
	backends.OpTypeGather, backends.OpTypeScatterSum, backends.OpTypeScatterMax, backends.OpTypeScatterMin,
	backends.OpTypeRNGBitGenerator, backends.OpTypeReduceWindow, backends.OpTypeSelectAndScatterMax,
	backends.OpTypeSelectAndScatterMin, backends.OpTypeSelectAndScatterSum, backends.OpTypeDot,
	backends.OpTypeDotGeneral, backends.OpTypeConvGeneral, backends.OpTypeBatchNormForInference,
	backends.OpTypeBatchNormForTraining, backends.OpTypeBatchNormGradient,
}
