package cpu

import (
	"fmt"
	"reflect"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/notimplemented"
	"github.com/gomlx/gomlx/backends/shapeinference"
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

// Iota implements backends.Builder.
func (b *Builder) Iota(shape shapes.Shape, iotaAxis int) (backends.Op, error) {
	if err := checkDType(shape.DType); err != nil {
		return nil, fmt.Errorf("cpu: Iota(%s): %w", shape, err)
	}
	if iotaAxis < 0 || iotaAxis >= shape.Rank() {
		return nil, fmt.Errorf("cpu: Iota(%s, axis=%d): axis out of range", shape, iotaAxis)
	}
	return b.add(backends.OpTypeIota, shape, iotaAxis), nil
}

// unary adds an elementwise unary op.
func (b *Builder) unary(op backends.OpType, x backends.Op) (backends.Op, error) {
	ns, err := b.nodes2(op.String(), x)
	if err != nil {
		return nil, err
	}
	var shape shapes.Shape
	switch op {
	case backends.OpTypeIsFinite, backends.OpTypeIsNaN:
		if !ns[0].shape.DType.IsFloat() {
			return nil, fmt.Errorf("cpu: %s(%s): needs a float operand", op, ns[0].shape)
		}
		shape = ns[0].shape.Clone()
		shape.DType = dtypes.Bool
	default:
		shape, err = shapeinference.UnaryOp(op, ns[0].shape)
		if err != nil {
			return nil, fmt.Errorf("cpu: %w", err)
		}
	}
	return b.add(op, shape, nil, ns[0]), nil
}

// binary adds an elementwise binary op (standard broadcasting: equal shapes, a scalar, or dims of 1).
func (b *Builder) binary(op backends.OpType, lhs, rhs backends.Op) (backends.Op, error) {
	ns, err := b.nodes2(op.String(), lhs, rhs)
	if err != nil {
		return nil, err
	}
	var shape shapes.Shape
	switch {
	case shapeinference.ComparisonOperations.Has(op):
		shape, err = shapeinference.ComparisonOp(op, ns[0].shape, ns[1].shape)
	case op == backends.OpTypeShiftLeft || op == backends.OpTypeShiftRightArithmetic || op == backends.OpTypeShiftRightLogical:
		if !ns[0].shape.DType.IsInt() || ns[0].shape.DType != ns[1].shape.DType {
			return nil, fmt.Errorf("cpu: %s(%s, %s): needs matching integer operands", op, ns[0].shape, ns[1].shape)
		}
		shape, err = shapeinference.BinaryOp(backends.OpTypeBitwiseAnd, ns[0].shape, ns[1].shape)
	default:
		shape, err = shapeinference.BinaryOp(op, ns[0].shape, ns[1].shape)
	}
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	return b.add(op, shape, nil, ns[0], ns[1]), nil
}

// Unary ops.

func (b *Builder) Abs(x backends.Op) (backends.Op, error)   { return b.unary(backends.OpTypeAbs, x) }
func (b *Builder) Neg(x backends.Op) (backends.Op, error)   { return b.unary(backends.OpTypeNeg, x) }
func (b *Builder) Sign(x backends.Op) (backends.Op, error)  { return b.unary(backends.OpTypeSign, x) }
func (b *Builder) Exp(x backends.Op) (backends.Op, error)   { return b.unary(backends.OpTypeExp, x) }
func (b *Builder) Expm1(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeExpm1, x) }
func (b *Builder) Log(x backends.Op) (backends.Op, error)   { return b.unary(backends.OpTypeLog, x) }
func (b *Builder) Log1p(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeLog1p, x) }
func (b *Builder) Logistic(x backends.Op) (backends.Op, error) {
	return b.unary(backends.OpTypeLogistic, x)
}
func (b *Builder) Sqrt(x backends.Op) (backends.Op, error)  { return b.unary(backends.OpTypeSqrt, x) }
func (b *Builder) Rsqrt(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeRsqrt, x) }
func (b *Builder) Tanh(x backends.Op) (backends.Op, error)  { return b.unary(backends.OpTypeTanh, x) }
func (b *Builder) Erf(x backends.Op) (backends.Op, error)   { return b.unary(backends.OpTypeErf, x) }
func (b *Builder) Cos(x backends.Op) (backends.Op, error)   { return b.unary(backends.OpTypeCos, x) }
func (b *Builder) Sin(x backends.Op) (backends.Op, error)   { return b.unary(backends.OpTypeSin, x) }
func (b *Builder) Floor(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeFloor, x) }
func (b *Builder) Ceil(x backends.Op) (backends.Op, error)  { return b.unary(backends.OpTypeCeil, x) }
func (b *Builder) Round(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeRound, x) }
func (b *Builder) IsFinite(x backends.Op) (backends.Op, error) {
	return b.unary(backends.OpTypeIsFinite, x)
}
func (b *Builder) IsNaN(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeIsNaN, x) }
func (b *Builder) LogicalNot(x backends.Op) (backends.Op, error) {
	return b.unary(backends.OpTypeLogicalNot, x)
}
func (b *Builder) BitwiseNot(x backends.Op) (backends.Op, error) {
	return b.unary(backends.OpTypeBitwiseNot, x)
}
func (b *Builder) BitCount(x backends.Op) (backends.Op, error) {
	return b.unary(backends.OpTypeBitCount, x)
}
func (b *Builder) Clz(x backends.Op) (backends.Op, error) { return b.unary(backends.OpTypeClz, x) }

// Binary ops.

func (b *Builder) Add(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeAdd, l, r)
}
func (b *Builder) Sub(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeSub, l, r)
}
func (b *Builder) Mul(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeMul, l, r)
}
func (b *Builder) Div(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeDiv, l, r)
}
func (b *Builder) Rem(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeRem, l, r)
}
func (b *Builder) Pow(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypePow, l, r)
}
func (b *Builder) Max(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeMax, l, r)
}
func (b *Builder) Min(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeMin, l, r)
}
func (b *Builder) LogicalAnd(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLogicalAnd, l, r)
}
func (b *Builder) LogicalOr(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLogicalOr, l, r)
}
func (b *Builder) LogicalXor(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLogicalXor, l, r)
}
func (b *Builder) BitwiseAnd(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeBitwiseAnd, l, r)
}
func (b *Builder) BitwiseOr(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeBitwiseOr, l, r)
}
func (b *Builder) BitwiseXor(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeBitwiseXor, l, r)
}
func (b *Builder) ShiftLeft(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeShiftLeft, l, r)
}
func (b *Builder) ShiftRightArithmetic(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeShiftRightArithmetic, l, r)
}
func (b *Builder) ShiftRightLogical(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeShiftRightLogical, l, r)
}
func (b *Builder) Equal(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeEqual, l, r)
}
func (b *Builder) NotEqual(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeNotEqual, l, r)
}
func (b *Builder) GreaterOrEqual(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeGreaterOrEqual, l, r)
}
func (b *Builder) GreaterThan(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeGreaterThan, l, r)
}
func (b *Builder) LessOrEqual(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLessOrEqual, l, r)
}
func (b *Builder) LessThan(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLessThan, l, r)
}
func (b *Builder) EqualTotalOrder(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeEqualTotalOrder, l, r)
}
func (b *Builder) NotEqualTotalOrder(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeNotEqualTotalOrder, l, r)
}
func (b *Builder) GreaterOrEqualTotalOrder(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeGreaterOrEqualTotalOrder, l, r)
}
func (b *Builder) GreaterThanTotalOrder(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeGreaterThanTotalOrder, l, r)
}
func (b *Builder) LessOrEqualTotalOrder(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLessOrEqualTotalOrder, l, r)
}
func (b *Builder) LessThanTotalOrder(l, r backends.Op) (backends.Op, error) {
	return b.binary(backends.OpTypeLessThanTotalOrder, l, r)
}

// Clamp implements backends.Builder: min and max are scalars or shaped like x.
func (b *Builder) Clamp(minV, x, maxV backends.Op) (backends.Op, error) {
	ns, err := b.nodes2("Clamp", minV, x, maxV)
	if err != nil {
		return nil, err
	}
	for _, i := range []int{0, 2} {
		if ns[i].shape.DType != ns[1].shape.DType || (!ns[i].shape.IsScalar() && !ns[i].shape.Equal(ns[1].shape)) {
			return nil, fmt.Errorf("cpu: Clamp(%s, %s, %s): min and max must be scalars or shaped like x",
				ns[0].shape, ns[1].shape, ns[2].shape)
		}
	}
	if !ns[1].shape.DType.IsFloat() && !ns[1].shape.DType.IsInt() {
		return nil, fmt.Errorf("cpu: Clamp(%s): needs a numeric operand", ns[1].shape)
	}
	return b.add(backends.OpTypeClamp, ns[1].shape, nil, ns...), nil
}

// Where implements backends.Builder.
func (b *Builder) Where(cond, onTrue, onFalse backends.Op) (backends.Op, error) {
	ns, err := b.nodes2("Where", cond, onTrue, onFalse)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.WhereOp(ns[0].shape, ns[1].shape, ns[2].shape)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	if ns[1].shape.DType != ns[2].shape.DType {
		return nil, fmt.Errorf("cpu: Where: onTrue %s and onFalse %s dtypes differ", ns[1].shape, ns[2].shape)
	}
	return b.add(backends.OpTypeWhere, shape, nil, ns...), nil
}

// ConvertDType implements backends.Builder.
func (b *Builder) ConvertDType(x backends.Op, dtype dtypes.DType) (backends.Op, error) {
	ns, err := b.nodes2("ConvertDType", x)
	if err != nil {
		return nil, err
	}
	if err := checkDType(dtype); err != nil {
		return nil, fmt.Errorf("cpu: ConvertDType(%s -> %s): %w", ns[0].shape, dtype, err)
	}
	shape := ns[0].shape.Clone()
	shape.DType = dtype
	return b.add(backends.OpTypeConvertDType, shape, nil, ns[0]), nil
}

// Reshape implements backends.Builder.
func (b *Builder) Reshape(x backends.Op, dims ...int) (backends.Op, error) {
	ns, err := b.nodes2("Reshape", x)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.ReshapeOp(ns[0].shape, dims)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	return b.add(backends.OpTypeReshape, shape, nil, ns[0]), nil
}

// Transpose implements backends.Builder.
func (b *Builder) Transpose(x backends.Op, permutation ...int) (backends.Op, error) {
	ns, err := b.nodes2("Transpose", x)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.TransposeOp(ns[0].shape, permutation)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	return b.add(backends.OpTypeTranspose, shape, slices.Clone(permutation), ns[0]), nil
}

// BroadcastInDim implements backends.Builder.
func (b *Builder) BroadcastInDim(x backends.Op, outputShape shapes.Shape, broadcastAxes []int) (backends.Op, error) {
	ns, err := b.nodes2("BroadcastInDim", x)
	if err != nil {
		return nil, err
	}
	if err := shapeinference.BroadcastInDimOp(ns[0].shape, outputShape, broadcastAxes); err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	if outputShape.DType != ns[0].shape.DType {
		return nil, fmt.Errorf("cpu: BroadcastInDim(%s -> %s): dtypes differ", ns[0].shape, outputShape)
	}
	return b.add(backends.OpTypeBroadcastInDim, outputShape.Clone(), slices.Clone(broadcastAxes), ns[0]), nil
}

// reduce adds a reduction over axes (all axes when none are given).
func (b *Builder) reduce(op backends.OpType, x backends.Op, axes []int) (backends.Op, error) {
	ns, err := b.nodes2(op.String(), x)
	if err != nil {
		return nil, err
	}
	s := ns[0].shape
	if len(axes) == 0 {
		axes = make([]int, s.Rank())
		for i := range axes {
			axes[i] = i
		}
	}
	seen := make([]bool, s.Rank())
	for _, a := range axes {
		if a < 0 || a >= s.Rank() || seen[a] {
			return nil, fmt.Errorf("cpu: %s(%s, axes=%v): invalid or repeated axis", op, s, axes)
		}
		seen[a] = true
	}
	switch op {
	case backends.OpTypeReduceLogicalAnd, backends.OpTypeReduceLogicalOr, backends.OpTypeReduceLogicalXor:
		if s.DType != dtypes.Bool {
			return nil, fmt.Errorf("cpu: %s(%s): needs booleans", op, s)
		}
	case backends.OpTypeReduceBitwiseAnd, backends.OpTypeReduceBitwiseOr, backends.OpTypeReduceBitwiseXor:
		if !s.DType.IsInt() {
			return nil, fmt.Errorf("cpu: %s(%s): needs integers", op, s)
		}
	default:
		if s.DType == dtypes.Bool {
			return nil, fmt.Errorf("cpu: %s(%s): needs numbers", op, s)
		}
	}
	shape, err := shapeinference.ReduceOp(s, axes)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	return b.add(op, shape, seen, ns[0]), nil
}

func (b *Builder) ReduceSum(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceSum, x, axes)
}
func (b *Builder) ReduceMax(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceMax, x, axes)
}
func (b *Builder) ReduceMin(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceMin, x, axes)
}
func (b *Builder) ReduceProduct(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceProduct, x, axes)
}
func (b *Builder) ReduceLogicalAnd(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceLogicalAnd, x, axes)
}
func (b *Builder) ReduceLogicalOr(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceLogicalOr, x, axes)
}
func (b *Builder) ReduceLogicalXor(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceLogicalXor, x, axes)
}
func (b *Builder) ReduceBitwiseAnd(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceBitwiseAnd, x, axes)
}
func (b *Builder) ReduceBitwiseOr(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceBitwiseOr, x, axes)
}
func (b *Builder) ReduceBitwiseXor(x backends.Op, axes ...int) (backends.Op, error) {
	return b.reduce(backends.OpTypeReduceBitwiseXor, x, axes)
}

type argMinMaxParams struct {
	axis  int
	isMin bool
}

// ArgMinMax implements backends.Builder.
func (b *Builder) ArgMinMax(x backends.Op, axis int, outputDType dtypes.DType, isMin bool) (backends.Op, error) {
	ns, err := b.nodes2("ArgMinMax", x)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.ArgMinMaxOp(ns[0].shape, axis, outputDType)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	return b.add(backends.OpTypeArgMinMax, shape, argMinMaxParams{axis, isMin}, ns[0]), nil
}

// Concatenate implements backends.Builder.
func (b *Builder) Concatenate(axis int, operands ...backends.Op) (backends.Op, error) {
	ns, err := b.nodes2("Concatenate", operands...)
	if err != nil {
		return nil, err
	}
	if len(ns) == 0 {
		return nil, fmt.Errorf("cpu: Concatenate: no operands")
	}
	inShapes := make([]shapes.Shape, len(ns))
	for i, n := range ns {
		inShapes[i] = n.shape
	}
	shape, err := shapeinference.ConcatenateOp(inShapes, axis)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	if len(ns) == 1 {
		return ns[0], nil
	}
	return b.add(backends.OpTypeConcatenate, shape, axis, ns...), nil
}

type sliceParams struct{ starts, strides []int }

// Slice implements backends.Builder; nil strides mean 1.
func (b *Builder) Slice(x backends.Op, starts, limits, strides []int) (backends.Op, error) {
	ns, err := b.nodes2("Slice", x)
	if err != nil {
		return nil, err
	}
	if strides == nil {
		strides = ones(ns[0].shape.Rank())
	}
	shape, err := shapeinference.SliceOp(ns[0].shape, starts, limits, strides)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	return b.add(backends.OpTypeSlice, shape, sliceParams{slices.Clone(starts), slices.Clone(strides)}, ns[0]), nil
}

// Pad implements backends.Builder: start/end may be negative, interior >= 0.
func (b *Builder) Pad(x, fillValue backends.Op, axesConfig ...backends.PadAxis) (backends.Op, error) {
	ns, err := b.nodes2("Pad", x, fillValue)
	if err != nil {
		return nil, err
	}
	s := ns[0].shape
	if !ns[1].shape.IsScalar() || ns[1].shape.DType != s.DType {
		return nil, fmt.Errorf("cpu: Pad(%s): fill value %s must be a scalar of the same dtype", s, ns[1].shape)
	}
	if len(axesConfig) > s.Rank() {
		return nil, fmt.Errorf("cpu: Pad(%s): %d axes configured, rank is %d", s, len(axesConfig), s.Rank())
	}
	cfg := make([]backends.PadAxis, s.Rank())
	copy(cfg, axesConfig)
	out := s.Clone()
	for a, c := range cfg {
		if c.Interior < 0 {
			return nil, fmt.Errorf("cpu: Pad(%s): negative interior padding %d on axis %d", s, c.Interior, a)
		}
		d := s.Dimensions[a]
		dim := c.Start + c.End
		if d > 0 {
			dim += d + (d-1)*c.Interior
		}
		if dim < 0 {
			return nil, fmt.Errorf("cpu: Pad(%s): axis %d would get negative size %d with %+v", s, a, dim, c)
		}
		out.Dimensions[a] = dim
	}
	return b.add(backends.OpTypePad, out, cfg, ns[0], ns[1]), nil
}

// Reverse implements backends.Builder.
func (b *Builder) Reverse(x backends.Op, axes ...int) (backends.Op, error) {
	ns, err := b.nodes2("Reverse", x)
	if err != nil {
		return nil, err
	}
	rev := make([]bool, ns[0].shape.Rank())
	for _, a := range axes {
		if a < 0 || a >= len(rev) {
			return nil, fmt.Errorf("cpu: Reverse(%s, %v): axis out of range", ns[0].shape, axes)
		}
		rev[a] = true
	}
	return b.add(backends.OpTypeReverse, ns[0].shape, rev, ns[0]), nil
}

type dynSliceParams struct{ sizes []int }

// DynamicSlice implements backends.Builder.
func (b *Builder) DynamicSlice(operand backends.Op, startIndices []backends.Op, sliceDims []int) (backends.Op, error) {
	ns, err := b.nodes2("DynamicSlice", append([]backends.Op{operand}, startIndices...)...)
	if err != nil {
		return nil, err
	}
	s := ns[0].shape
	if len(startIndices) != s.Rank() || len(sliceDims) != s.Rank() {
		return nil, fmt.Errorf("cpu: DynamicSlice(%s): want %d start indices and slice dims, got %d and %d",
			s, s.Rank(), len(startIndices), len(sliceDims))
	}
	for i, n := range ns[1:] {
		if !n.shape.IsScalar() || !n.shape.DType.IsInt() {
			return nil, fmt.Errorf("cpu: DynamicSlice(%s): start index #%d is %s, want an integer scalar", s, i, n.shape)
		}
		if sliceDims[i] < 0 || sliceDims[i] > s.Dimensions[i] {
			return nil, fmt.Errorf("cpu: DynamicSlice(%s): slice dim %d on axis %d out of range", s, sliceDims[i], i)
		}
	}
	return b.add(backends.OpTypeDynamicSlice, shapes.Make(s.DType, sliceDims...), dynSliceParams{slices.Clone(sliceDims)}, ns...), nil
}

// DynamicUpdateSlice implements backends.Builder.
func (b *Builder) DynamicUpdateSlice(operand, update backends.Op, startIndices []backends.Op) (backends.Op, error) {
	ns, err := b.nodes2("DynamicUpdateSlice", append([]backends.Op{operand, update}, startIndices...)...)
	if err != nil {
		return nil, err
	}
	s, u := ns[0].shape, ns[1].shape
	if u.DType != s.DType || u.Rank() != s.Rank() || len(startIndices) != s.Rank() {
		return nil, fmt.Errorf("cpu: DynamicUpdateSlice(%s, update %s, %d indices): mismatched update or indices",
			s, u, len(startIndices))
	}
	for i, n := range ns[2:] {
		if !n.shape.IsScalar() || !n.shape.DType.IsInt() {
			return nil, fmt.Errorf("cpu: DynamicUpdateSlice(%s): start index #%d is %s, want an integer scalar", s, i, n.shape)
		}
		if u.Dimensions[i] > s.Dimensions[i] {
			return nil, fmt.Errorf("cpu: DynamicUpdateSlice(%s): update %s larger on axis %d", s, u, i)
		}
	}
	return b.add(backends.OpTypeDynamicUpdateSlice, s, nil, ns...), nil
}

type gatherParams struct {
	indexVectorAxis                                                 int
	offsetOutputAxes, collapsedSliceAxes, startIndexMap, sliceSizes []int
}

// Gather implements backends.Builder (XLA semantics, indices clamped into range).
func (b *Builder) Gather(operand, startIndices backends.Op, indexVectorAxis int,
	offsetOutputAxes, collapsedSliceAxes, startIndexMap, sliceSizes []int, indicesAreSorted bool) (backends.Op, error) {
	ns, err := b.nodes2("Gather", operand, startIndices)
	if err != nil {
		return nil, err
	}
	if !ns[1].shape.DType.IsInt() {
		return nil, fmt.Errorf("cpu: Gather: indices %s must be integers", ns[1].shape)
	}
	idxShape := ns[1].shape
	if indexVectorAxis == idxShape.Rank() {
		// Implicit trailing axis of size 1.
		idxShape = shapes.Make(idxShape.DType, append(slices.Clone(idxShape.Dimensions), 1)...)
	}
	shape, err := shapeinference.Gather(ns[0].shape, idxShape, indexVectorAxis, offsetOutputAxes, collapsedSliceAxes,
		startIndexMap, sliceSizes, indicesAreSorted)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	p := gatherParams{indexVectorAxis, slices.Clone(offsetOutputAxes), slices.Clone(collapsedSliceAxes),
		slices.Clone(startIndexMap), slices.Clone(sliceSizes)}
	return b.add(backends.OpTypeGather, shape, p, ns...), nil
}

type scatterParams struct {
	indexVectorAxis                                            int
	updateWindowAxes, insertedWindowAxes, scatterAxesToOperand []int
}

func (b *Builder) scatter(op backends.OpType, operand, indices, updates backends.Op, indexVectorAxis int,
	updateWindowAxes, insertedWindowAxes, scatterAxesToOperandAxes []int) (backends.Op, error) {
	ns, err := b.nodes2(op.String(), operand, indices, updates)
	if err != nil {
		return nil, err
	}
	shape, err := shapeinference.ScatterOp(ns[0].shape, ns[1].shape, ns[2].shape, indexVectorAxis, updateWindowAxes,
		insertedWindowAxes, scatterAxesToOperandAxes)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	p := scatterParams{indexVectorAxis, slices.Clone(updateWindowAxes), slices.Clone(insertedWindowAxes),
		slices.Clone(scatterAxesToOperandAxes)}
	return b.add(op, shape, p, ns...), nil
}

// ScatterSum implements backends.Builder.
func (b *Builder) ScatterSum(operand, indices, updates backends.Op, indexVectorAxis int,
	updateWindowAxes, insertedWindowAxes, scatterAxesToOperandAxes []int, _, _ bool) (backends.Op, error) {
	return b.scatter(backends.OpTypeScatterSum, operand, indices, updates, indexVectorAxis, updateWindowAxes,
		insertedWindowAxes, scatterAxesToOperandAxes)
}

// ScatterMax implements backends.Builder.
func (b *Builder) ScatterMax(operand, indices, updates backends.Op, indexVectorAxis int,
	updateWindowAxes, insertedWindowAxes, scatterAxesToOperandAxes []int, _, _ bool) (backends.Op, error) {
	return b.scatter(backends.OpTypeScatterMax, operand, indices, updates, indexVectorAxis, updateWindowAxes,
		insertedWindowAxes, scatterAxesToOperandAxes)
}

// ScatterMin implements backends.Builder.
func (b *Builder) ScatterMin(operand, indices, updates backends.Op, indexVectorAxis int,
	updateWindowAxes, insertedWindowAxes, scatterAxesToOperandAxes []int, _, _ bool) (backends.Op, error) {
	return b.scatter(backends.OpTypeScatterMin, operand, indices, updates, indexVectorAxis, updateWindowAxes,
		insertedWindowAxes, scatterAxesToOperandAxes)
}

// RNGBitGenerator implements backends.Builder with Philox-4x32-10: state[0] is the key, state[1:3]
// the 128-bit counter, advanced by the number of 128-bit blocks drawn.
func (b *Builder) RNGBitGenerator(state backends.Op, shape shapes.Shape) (backends.Op, backends.Op, error) {
	ns, err := b.nodes2("RNGBitGenerator", state)
	if err != nil {
		return nil, nil, err
	}
	if !ns[0].shape.Equal(backends.RNGStateShape) {
		return nil, nil, fmt.Errorf("cpu: RNGBitGenerator: state is %s, want %s", ns[0].shape, backends.RNGStateShape)
	}
	if err := checkDType(shape.DType); err != nil || shape.DType == dtypes.Bool {
		return nil, nil, fmt.Errorf("cpu: RNGBitGenerator(%s): unsupported dtype", shape)
	}
	outs := b.addMulti(backends.OpTypeRNGBitGenerator, []shapes.Shape{ns[0].shape, shape.Clone()}, nil, ns[0])
	return outs[0], outs[1], nil
}

type windowParams struct {
	reduce                                          backends.ReduceOpType
	window, strides, baseDilations, windowDilations []int
	paddings                                        [][2]int
}

// ReduceWindow implements backends.Builder.
func (b *Builder) ReduceWindow(x backends.Op, reductionType backends.ReduceOpType,
	windowDimensions, strides, baseDilations, windowDilations []int, paddings [][2]int) (backends.Op, error) {
	ns, err := b.nodes2("ReduceWindow", x)
	if err != nil {
		return nil, err
	}
	s := ns[0].shape
	switch reductionType {
	case backends.ReduceOpSum, backends.ReduceOpMax, backends.ReduceOpMin, backends.ReduceOpProduct:
	default:
		return nil, fmt.Errorf("cpu: ReduceWindow: unsupported reduction %s", reductionType)
	}
	shape, err := shapeinference.ReduceWindowOp(s, windowDimensions, strides, baseDilations, windowDilations, paddings)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	r := s.Rank()
	p := windowParams{reduce: reductionType, window: orOnes(windowDimensions, r), strides: slices.Clone(strides),
		baseDilations: orOnes(baseDilations, r), windowDilations: orOnes(windowDilations, r), paddings: orZeroPads(paddings, r)}
	if len(p.strides) == 0 {
		p.strides = slices.Clone(p.window)
	}
	return b.add(backends.OpTypeReduceWindow, shape, p, ns[0]), nil
}

func (b *Builder) selectAndScatter(op backends.OpType, operand, source backends.Op, windowDimensions, windowStrides []int,
	paddings [][2]int) (backends.Op, error) {
	ns, err := b.nodes2(op.String(), operand, source)
	if err != nil {
		return nil, err
	}
	s := ns[0].shape
	r := s.Rank()
	p := windowParams{window: orOnes(windowDimensions, r), strides: slices.Clone(windowStrides),
		baseDilations: ones(r), windowDilations: ones(r), paddings: orZeroPads(paddings, r)}
	if len(p.strides) == 0 {
		p.strides = slices.Clone(p.window)
	}
	want, err := shapeinference.ReduceWindowOp(s, p.window, p.strides, nil, nil, p.paddings)
	if err != nil {
		return nil, fmt.Errorf("cpu: %s: %w", op, err)
	}
	if !want.Equal(ns[1].shape) {
		return nil, fmt.Errorf("cpu: %s(operand %s): source is %s, want %s", op, s, ns[1].shape, want)
	}
	return b.add(op, s, p, ns...), nil
}

// SelectAndScatterMax implements backends.Builder: the gradient of a max-pool.
func (b *Builder) SelectAndScatterMax(operand, source backends.Op, windowDimensions, windowStrides []int,
	paddings [][2]int) (backends.Op, error) {
	return b.selectAndScatter(backends.OpTypeSelectAndScatterMax, operand, source, windowDimensions, windowStrides, paddings)
}

// SelectAndScatterMin implements backends.Builder: the gradient of a min-pool.
func (b *Builder) SelectAndScatterMin(operand, source backends.Op, windowDimensions, windowStrides []int,
	paddings [][2]int) (backends.Op, error) {
	return b.selectAndScatter(backends.OpTypeSelectAndScatterMin, operand, source, windowDimensions, windowStrides, paddings)
}

// SelectAndScatterSum is the gradient of a sum-pool (every window position gets the source value);
// it is not part of backends.Builder but is offered for completeness.
func (b *Builder) SelectAndScatterSum(operand, source backends.Op, windowDimensions, windowStrides []int,
	paddings [][2]int) (backends.Op, error) {
	return b.selectAndScatter(backends.OpTypeSelectAndScatterSum, operand, source, windowDimensions, windowStrides, paddings)
}

type dotParams struct {
	lhsContracting, lhsBatch, rhsContracting, rhsBatch []int
}

// DotGeneral implements backends.Builder.
func (b *Builder) DotGeneral(lhs backends.Op, lhsContractingAxes, lhsBatchAxes []int,
	rhs backends.Op, rhsContractingAxes, rhsBatchAxes []int) (backends.Op, error) {
	ns, err := b.nodes2("DotGeneral", lhs, rhs)
	if err != nil {
		return nil, err
	}
	ls, rs := ns[0].shape, ns[1].shape
	if ls.DType != rs.DType || ls.DType == dtypes.Bool {
		return nil, fmt.Errorf("cpu: DotGeneral(%s, %s): dtypes must match and be numeric", ls, rs)
	}
	if len(lhsContractingAxes) != len(rhsContractingAxes) || len(lhsBatchAxes) != len(rhsBatchAxes) {
		return nil, fmt.Errorf("cpu: DotGeneral(%s, %s): contracting %v/%v or batch %v/%v axes counts differ",
			ls, rs, lhsContractingAxes, rhsContractingAxes, lhsBatchAxes, rhsBatchAxes)
	}
	check := func(s shapes.Shape, contracting, batch []int) ([]int, error) {
		used := make([]bool, s.Rank())
		for _, a := range append(slices.Clone(contracting), batch...) {
			if a < 0 || a >= s.Rank() || used[a] {
				return nil, fmt.Errorf("cpu: DotGeneral(%s, %s): invalid or repeated axis %d", ls, rs, a)
			}
			used[a] = true
		}
		var cross []int
		for a, u := range used {
			if !u {
				cross = append(cross, a)
			}
		}
		return cross, nil
	}
	lCross, err := check(ls, lhsContractingAxes, lhsBatchAxes)
	if err != nil {
		return nil, err
	}
	rCross, err := check(rs, rhsContractingAxes, rhsBatchAxes)
	if err != nil {
		return nil, err
	}
	var dims []int
	for i := range lhsBatchAxes {
		if ls.Dimensions[lhsBatchAxes[i]] != rs.Dimensions[rhsBatchAxes[i]] {
			return nil, fmt.Errorf("cpu: DotGeneral(%s, %s): batch axes %d/%d differ", ls, rs, lhsBatchAxes[i], rhsBatchAxes[i])
		}
		dims = append(dims, ls.Dimensions[lhsBatchAxes[i]])
	}
	for i := range lhsContractingAxes {
		if ls.Dimensions[lhsContractingAxes[i]] != rs.Dimensions[rhsContractingAxes[i]] {
			return nil, fmt.Errorf("cpu: DotGeneral(%s, %s): contracting axes %d/%d differ", ls, rs,
				lhsContractingAxes[i], rhsContractingAxes[i])
		}
	}
	for _, a := range lCross {
		dims = append(dims, ls.Dimensions[a])
	}
	for _, a := range rCross {
		dims = append(dims, rs.Dimensions[a])
	}
	p := dotParams{slices.Clone(lhsContractingAxes), slices.Clone(lhsBatchAxes), slices.Clone(rhsContractingAxes),
		slices.Clone(rhsBatchAxes)}
	return b.add(backends.OpTypeDotGeneral, shapes.Make(ls.DType, dims...), p, ns...), nil
}

// Dot implements backends.Builder: vector·vector, matrix·vector or matrix·matrix.
func (b *Builder) Dot(lhs, rhs backends.Op) (backends.Op, error) {
	ns, err := b.nodes2("Dot", lhs, rhs)
	if err != nil {
		return nil, err
	}
	lr, rr := ns[0].shape.Rank(), ns[1].shape.Rank()
	if lr < 1 || lr > 2 || rr < 1 || rr > 2 {
		return nil, fmt.Errorf("cpu: Dot(%s, %s): ranks must be 1 or 2", ns[0].shape, ns[1].shape)
	}
	return b.DotGeneral(lhs, []int{lr - 1}, nil, rhs, []int{0}, nil)
}

type convParams struct {
	axes                         backends.ConvolveAxesConfig
	strides, inputDil, kernelDil []int
	paddings                     [][2]int
	featureGroups, batchGroups   int
}

// ConvGeneral implements backends.Builder; nil strides, paddings or dilations mean 1, 0 and 1.
func (b *Builder) ConvGeneral(input, kernel backends.Op, axes backends.ConvolveAxesConfig, strides []int,
	paddings [][2]int, inputDilations, kernelDilations []int, channelGroupCount, batchGroupCount int) (backends.Op, error) {
	ns, err := b.nodes2("ConvGeneral", input, kernel)
	if err != nil {
		return nil, err
	}
	if ns[0].shape.DType != ns[1].shape.DType || !ns[0].shape.DType.IsFloat() {
		return nil, fmt.Errorf("cpu: ConvGeneral(%s, %s): input and kernel must share a float dtype", ns[0].shape, ns[1].shape)
	}
	sr := ns[0].shape.Rank() - 2
	if channelGroupCount < 1 {
		channelGroupCount = 1
	}
	if batchGroupCount < 1 {
		batchGroupCount = 1
	}
	p := convParams{axes: axes.Clone(), strides: orOnes(strides, sr), inputDil: orOnes(inputDilations, sr),
		kernelDil: orOnes(kernelDilations, sr), paddings: orZeroPads(paddings, sr),
		featureGroups: channelGroupCount, batchGroups: batchGroupCount}
	shape, err := shapeinference.ConvGeneralOp(ns[0].shape, ns[1].shape, axes, p.strides, p.paddings, p.inputDil,
		p.kernelDil, channelGroupCount, batchGroupCount)
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	return b.add(backends.OpTypeConvGeneral, shape, p, ns...), nil
}

type batchNormParams struct {
	epsilon float32
	axis    int
}

func (b *Builder) checkBatchNorm(ctx string, operand *node, axis int, perFeature ...*node) error {
	s := operand.shape
	if !s.DType.IsFloat() || axis < 0 || axis >= s.Rank() {
		return fmt.Errorf("cpu: %s(%s, axis=%d): needs a float operand and a valid feature axis", ctx, s, axis)
	}
	for _, n := range perFeature {
		if !n.shape.Equal(shapes.Make(s.DType, s.Dimensions[axis])) {
			return fmt.Errorf("cpu: %s(%s, axis=%d): per-feature operand is %s, want [%d]", ctx, s, axis, n.shape,
				s.Dimensions[axis])
		}
	}
	return nil
}

// BatchNormForInference implements backends.Builder.
func (b *Builder) BatchNormForInference(operand, scale, offset, mean, variance backends.Op, epsilon float32,
	featureAxis int) (backends.Op, error) {
	ns, err := b.nodes2("BatchNormForInference", operand, scale, offset, mean, variance)
	if err != nil {
		return nil, err
	}
	if err := b.checkBatchNorm("BatchNormForInference", ns[0], featureAxis, ns[1:]...); err != nil {
		return nil, err
	}
	return b.add(backends.OpTypeBatchNormForInference, ns[0].shape, batchNormParams{epsilon, featureAxis}, ns...), nil
}

// BatchNormForTraining implements backends.Builder: it returns the normalised operand, the batch
// mean and the (biased) batch variance.
func (b *Builder) BatchNormForTraining(operand, scale, offset backends.Op, epsilon float32, featureAxis int) (
	backends.Op, backends.Op, backends.Op, error) {
	ns, err := b.nodes2("BatchNormForTraining", operand, scale, offset)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := b.checkBatchNorm("BatchNormForTraining", ns[0], featureAxis, ns[1:]...); err != nil {
		return nil, nil, nil, err
	}
	fs := ns[1].shape
	outs := b.addMulti(backends.OpTypeBatchNormForTraining, []shapes.Shape{ns[0].shape, fs, fs},
		batchNormParams{epsilon, featureAxis}, ns...)
	return outs[0], outs[1], outs[2], nil
}

// BatchNormGradient implements backends.Builder.
func (b *Builder) BatchNormGradient(operand, scale, mean, variance, gradOutput backends.Op, epsilon float32,
	featureAxis int) (backends.Op, backends.Op, backends.Op, error) {
	ns, err := b.nodes2("BatchNormGradient", operand, scale, mean, variance, gradOutput)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := b.checkBatchNorm("BatchNormGradient", ns[0], featureAxis, ns[1:4]...); err != nil {
		return nil, nil, nil, err
	}
	if !ns[4].shape.Equal(ns[0].shape) {
		return nil, nil, nil, fmt.Errorf("cpu: BatchNormGradient: gradOutput %s must be shaped like operand %s",
			ns[4].shape, ns[0].shape)
	}
	fs := ns[1].shape
	outs := b.addMulti(backends.OpTypeBatchNormGradient, []shapes.Shape{ns[0].shape, fs, fs},
		batchNormParams{epsilon, featureAxis}, ns...)
	return outs[0], outs[1], outs[2], nil
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
