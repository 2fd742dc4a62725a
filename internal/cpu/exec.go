package cpu

import (
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// value is a node's result during one execution. A borrowed value (a caller's input that was not
// donated, a constant) is never written to nor recycled.
type value struct {
	buf   *Buffer
	owned bool
}

// step is one node to run, with the inputs whose last use it is.
type step struct {
	n *node
	// inputs are the values the step reads: n.inputs, except that a broadcast the op does itself
	// (see foldBroadcasts) is replaced by the broadcast's source.
	inputs []*node
	// release lists input positions to release after the step (each input node once).
	release []int
	// lastUse[i] reports whether input i is used for the last time here (and by no other input of
	// the same step): its buffer may then be reused in place when owned.
	lastUse []bool
	// fused, when set, evaluates n together with the elementwise ops it absorbed (see fuseChains);
	// inputs are then the program's leaves.
	fused *fusedProgram
	// reluOf, when set, is the batch norm that already computed this ReLU as its fourth output
	// (see fuseBatchNormReLU): the step takes it.
	reluOf *node
	// sumOf, when set, is the input whose value the step takes as its own: a residual sum that a
	// batch norm already computed as its first output (see fuseBatchNormReLU).
	sumOf *node
}

// Executable implements backends.Executable for the cpu backend.
type Executable struct {
	backend    *Backend
	name       string
	params     []*node
	outputs    []*node
	steps      []step
	numNodes   int
	paramUsed  []bool
	finalized  bool
	outShapes  []shapes.Shape
	paramNames []string
	// liveOps counts the operations the outputs depend on, by kind (parameters left out): the
	// size of the graph a compiler sees after dead-code elimination (see LiveOps).
	liveOps map[backends.OpType]int
	// fold holds the values that depend on no parameter, computed once (see constfold.go).
	fold *constFold
}

var _ backends.Executable = (*Executable)(nil)

// Compile implements backends.Builder: it keeps the nodes the outputs depend on, in order, sets
// apart the values that depend on no parameter (computed once, at the first Execute), and records
// the last use of every intermediate value so buffers are recycled as soon as possible.
func (b *Builder) Compile(outputs []backends.Op, _ []*backends.ShardingSpec) (backends.Executable, error) {
	outs, err := b.nodes2("Compile", outputs...)
	if err != nil {
		return nil, err
	}
	b.compiled = true
	inputs := make([][]*node, len(b.nodes))
	for i, n := range b.nodes {
		inputs[i] = foldBroadcasts(n)
	}
	live := make([]bool, len(b.nodes))
	for _, o := range outs {
		live[o.id] = true
	}
	for i := len(b.nodes) - 1; i >= 0; i-- {
		if !live[i] {
			continue
		}
		for _, in := range inputs[i] {
			live[in.id] = true
		}
	}
	isOutput := make([]bool, len(b.nodes))
	for _, o := range outs {
		isOutput[o.id] = true
	}
	// Nodes that depend on no parameter are computed apart; the rest (liveMain) runs every Execute.
	folded := foldableNodes(b.nodes, inputs, constFoldMaxBytes)
	liveMain := make([]bool, len(b.nodes))
	for i := range live {
		liveMain[i] = live[i] && !folded[i]
	}
	var fused map[int]*fusedProgram
	var reluOf, sumOf map[int]*node
	if b.backend.opts.fusion {
		fused = fuseChains(b.nodes, inputs, liveMain, isOutput)
		reluOf, sumOf = fuseBatchNormReLU(b.nodes, inputs, liveMain, isOutput, fused)
		fuseReLUMask(b.nodes, inputs, liveMain, isOutput, fused, reluOf, sumOf)
		fuseShortcutNorm(b.nodes, inputs, liveMain, isOutput, sumOf)
	}
	// Folded values read by the per-Execute steps (or returned) are the ones kept.
	kept := make([]bool, len(b.nodes))
	for _, n := range b.nodes {
		if isOutput[n.id] && folded[n.id] {
			kept[n.id] = true
		}
		if !liveMain[n.id] {
			continue
		}
		for _, in := range inputs[n.id] {
			if folded[in.id] {
				kept[in.id] = true
			}
		}
	}
	e := &Executable{backend: b.backend, name: b.name, params: b.params, outputs: outs, numNodes: len(b.nodes),
		paramUsed: make([]bool, len(b.params))}
	e.liveOps = map[backends.OpType]int{}
	for _, n := range b.nodes {
		if live[n.id] && n.op != backends.OpTypeParameter {
			e.liveOps[n.op]++
		}
	}
	e.fold = planConstFold(b.nodes, inputs, folded, kept)
	var mainNodes []*node
	for _, n := range b.nodes {
		if liveMain[n.id] && n.op != backends.OpTypeParameter {
			mainNodes = append(mainNodes, n)
		}
	}
	var lastUser []int
	e.steps, lastUser = buildSteps(len(b.nodes), mainNodes, inputs, fused, isOutput)
	for i := range e.steps {
		e.steps[i].reluOf = reluOf[e.steps[i].n.id]
		e.steps[i].sumOf = sumOf[e.steps[i].n.id]
	}
	for _, p := range b.params {
		e.paramNames = append(e.paramNames, p.params.(paramInfo).name)
		e.paramUsed[p.params.(paramInfo).index] = live[p.id] && (lastUser[p.id] >= 0 || isOutput[p.id])
	}
	for _, o := range outs {
		e.outShapes = append(e.outShapes, o.shape)
	}
	return e, nil
}

// buildSteps returns the steps running nodes (in order) and, per node id, the id of the last of
// them that reads it (-1 if none). A value in keep is never released by a step.
func buildSteps(numNodes int, nodes []*node, inputs [][]*node, fused map[int]*fusedProgram, keep []bool) (
	[]step, []int) {
	lastUser := make([]int, numNodes)
	for i := range lastUser {
		lastUser[i] = -1
	}
	for _, n := range nodes {
		for _, in := range inputs[n.id] {
			lastUser[in.id] = n.id
		}
	}
	steps := make([]step, 0, len(nodes))
	for _, n := range nodes {
		ins := inputs[n.id]
		st := step{n: n, inputs: ins, lastUse: make([]bool, len(ins)), fused: fused[n.id]}
		for i, in := range ins {
			if lastUser[in.id] != n.id || keep[in.id] {
				continue
			}
			first := true
			for j := 0; j < i; j++ {
				if ins[j] == in {
					first = false
				}
			}
			if first {
				st.release = append(st.release, i)
			}
			count := 0
			for _, other := range ins {
				if other == in {
					count++
				}
			}
			st.lastUse[i] = count == 1
		}
		steps = append(steps, st)
	}
	return steps, lastUser
}

// foldBroadcasts returns the inputs n's step reads: elementwise ops broadcast operands themselves
// (binary ops and comparisons: a scalar, or an operand of the output's rank with dimensions of
// size 1; Where and Clamp: a scalar), so an input that is a BroadcastInDim of such a value is
// replaced by that value and the broadcast tensor is never materialised when nothing else needs it.
func foldBroadcasts(n *node) []*node {
	general := slices.Contains(binaryOps, n.op) || slices.Contains(compareOps, n.op)
	if !general && n.op != backends.OpTypeWhere && n.op != backends.OpTypeClamp {
		return n.inputs
	}
	var out []*node
	for i, in := range n.inputs {
		if n.op == backends.OpTypeClamp && i == 1 {
			continue // Clamp's operand itself must have the output's shape.
		}
		if in.op != backends.OpTypeBroadcastInDim || in.shape.Size() != n.shape.Size() {
			continue
		}
		src := in.inputs[0]
		ok := src.shape.IsScalar()
		if general && !ok && src.shape.Rank() == n.shape.Rank() {
			axes := in.params.([]int)
			ok = true
			for a, ax := range axes {
				ok = ok && ax == a
			}
		}
		if !ok {
			continue
		}
		if out == nil {
			out = slices.Clone(n.inputs)
		}
		out[i] = src
	}
	if out == nil {
		return n.inputs
	}
	return out
}

// Finalize implements backends.Executable: it drops the folded values.
// LiveOps returns how many operations of each kind the computation's outputs depend on, as the
// graph was built (before constant folding and fusion; parameters left out): the op count that an
// XLA backend would compile for the same graph, used to catch graph bloat in tests.
func (e *Executable) LiveOps() map[backends.OpType]int { return maps.Clone(e.liveOps) }

func (e *Executable) Finalize() {
	e.finalized = true
	e.fold.release(e.backend)
}

// Inputs implements backends.Executable.
func (e *Executable) Inputs() ([]string, []shapes.Shape) {
	ss := make([]shapes.Shape, len(e.params))
	for i, p := range e.params {
		ss[i] = p.shape
	}
	return e.paramNames, ss
}

// Outputs implements backends.Executable.
func (e *Executable) Outputs() []shapes.Shape { return e.outShapes }

// execState is the state of one Execute call.
type execState struct {
	b     *Backend
	vals  []value
	multi [][]value
}

// Execute implements backends.Executable. Donated inputs are invalid afterwards; their storage is
// reused for intermediate values or outputs.
func (e *Executable) Execute(inputs []backends.Buffer, donate []bool, _ backends.DeviceNum) (outBufs []backends.Buffer, err error) {
	if e.finalized {
		return nil, fmt.Errorf("cpu: Execute(%q): executable was finalized", e.name)
	}
	if len(inputs) != len(e.params) {
		return nil, fmt.Errorf("cpu: Execute(%q): got %d inputs, want %d", e.name, len(inputs), len(e.params))
	}
	if donate != nil && len(donate) != len(inputs) {
		return nil, fmt.Errorf("cpu: Execute(%q): got %d donate flags for %d inputs", e.name, len(donate), len(inputs))
	}
	bufs := make([]*Buffer, len(inputs))
	for i, p := range e.params {
		buf, err := e.backend.asBuffer(inputs[i])
		if err != nil {
			return nil, fmt.Errorf("cpu: Execute(%q): input #%d (%q): %w", e.name, i, e.paramNames[i], err)
		}
		if !buf.shape.Equal(p.shape) {
			return nil, fmt.Errorf("cpu: Execute(%q): input #%d (%q) is %s, want %s", e.name, i, e.paramNames[i],
				buf.shape, p.shape)
		}
		bufs[i] = buf
	}
	if err := e.fold.ensure(e); err != nil {
		return nil, err
	}
	ex := &execState{b: e.backend, vals: make([]value, e.numNodes)}
	for i, p := range e.params {
		owned := donate != nil && donate[i]
		if owned && !e.paramUsed[i] {
			e.backend.recycle(bufs[i])
			continue
		}
		ex.vals[p.id] = value{buf: bufs[i], owned: owned}
	}
	if err := e.fold.load(ex); err != nil {
		return nil, fmt.Errorf("cpu: Execute(%q): %w", e.name, err)
	}
	if err := e.run(ex, e.steps, e.backend.stats.on.Load()); err != nil {
		return nil, err
	}
	outBufs = make([]backends.Buffer, len(e.outputs))
	for i, o := range e.outputs {
		v := ex.vals[o.id]
		if v.owned && v.buf != nil {
			outBufs[i] = v.buf
			ex.vals[o.id] = value{}
			continue
		}
		if v.buf == nil {
			// The same node was already handed out: give a copy of it.
			prev := outBufs[indexOfNode(e.outputs[:i], o)].(*Buffer)
			v.buf = prev
		}
		cp := e.backend.newBuffer(o.shape)
		_, _ = copyFlat(cp.flat, v.buf.flat)
		outBufs[i] = cp
	}
	return outBufs, nil
}

// run executes steps on ex, releasing each value after its last use, and recycles the outputs of
// multi-output nodes that no step consumed. A panic of an op becomes an error.
func (e *Executable) run(ex *execState, steps []step, statsOn bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cpu: Execute(%q): panic: %v\n%s", e.name, r, debug.Stack())
		}
	}()
	ins := make([]*value, 0, 8)
	var t0 time.Time
	var timed *step // the step being timed; taking a multi-output node's outputs counts towards it
	for si := range steps {
		st := &steps[si]
		n := st.n
		if statsOn && n.op != opTupleElement {
			if timed != nil {
				e.backend.stats.record(timed, time.Since(t0))
			}
			timed, t0 = st, time.Now()
		}
		ins = ins[:0]
		for _, in := range st.inputs {
			ins = append(ins, &ex.vals[in.id])
		}
		switch {
		case n.op == opTupleElement:
			m := ex.multi[n.inputs[0].id]
			ex.vals[n.id] = m[n.index]
			m[n.index] = value{}
			continue
		case st.reluOf != nil:
			m := ex.multi[st.reluOf.id]
			ex.vals[n.id] = m[3]
			m[3] = value{}
		case st.sumOf != nil:
			k := slices.Index(st.inputs, st.sumOf)
			ex.vals[n.id] = *ins[k]
			*ins[k] = value{}
		case n.multiShapes != nil:
			outs, err := execMulti(ex, n, ins, st.lastUse)
			if err != nil {
				return fmt.Errorf("cpu: Execute(%q): op #%d %s: %w", e.name, n.id, n.op, err)
			}
			if ex.multi == nil {
				ex.multi = make([][]value, e.numNodes)
			}
			ex.multi[n.id] = outs
		case st.fused != nil:
			out, err := execFused(ex, n, st.fused, ins, st.lastUse)
			if err != nil {
				return fmt.Errorf("cpu: Execute(%q): fused op #%d %s%s: %w", e.name, n.id, n.op, n.shape, err)
			}
			ex.vals[n.id] = value{buf: out, owned: true}
		default:
			out, err := execNode(ex, n, ins, st.lastUse)
			if err != nil {
				return fmt.Errorf("cpu: Execute(%q): op #%d %s%s: %w", e.name, n.id, n.op, n.shape, err)
			}
			ex.vals[n.id] = out
		}
		for _, i := range st.release {
			v := ins[i]
			if v.buf != nil && v.owned {
				e.backend.recycle(v.buf)
			}
			*v = value{}
		}
	}
	if timed != nil {
		e.backend.stats.record(timed, time.Since(t0))
	}
	// Multi-output results nobody consumed.
	for _, m := range ex.multi {
		for i, v := range m {
			if v.buf != nil && v.owned {
				e.backend.recycle(v.buf)
			}
			m[i] = value{}
		}
	}
	return nil
}

func indexOfNode(ns []*node, n *node) int {
	for i, x := range ns {
		if x == n {
			return i
		}
	}
	return -1
}

// reusable reports whether input i's buffer may be overwritten by this step's output.
func reusable(ins []*value, lastUse []bool, i int) bool {
	return lastUse[i] && ins[i].owned && ins[i].buf != nil
}

// take moves input i's buffer out (the step's release then skips it).
func take(ins []*value, i int) *Buffer {
	buf := ins[i].buf
	*ins[i] = value{}
	return buf
}

// outputLike returns a buffer for an output of the given shape, reusing input i's storage when it
// is owned, used for the last time, and of the same dtype and size.
func outputLike(ex *execState, shape shapes.Shape, ins []*value, lastUse []bool, candidates ...int) *Buffer {
	for _, i := range candidates {
		if reusable(ins, lastUse, i) && ins[i].buf.shape.DType == shape.DType && ins[i].buf.shape.Size() == shape.Size() {
			buf := take(ins, i)
			buf.shape = shape
			return buf
		}
	}
	return ex.b.newBuffer(shape)
}

// execNode runs a single-output node.
func execNode(ex *execState, n *node, ins []*value, lastUse []bool) (value, error) {
	switch n.op {
	case backends.OpTypeConstant:
		return value{buf: n.params.(*Buffer)}, nil
	case backends.OpTypeIdentity, backends.OpTypeReshape:
		in := ins[0]
		if in.owned && lastUse[0] {
			buf := take(ins, 0)
			return value{buf: &Buffer{shape: n.shape, flat: buf.flat}, owned: true}, nil
		}
		if !in.owned {
			return value{buf: &Buffer{shape: n.shape, flat: in.buf.flat}}, nil
		}
		out := ex.b.newBuffer(n.shape)
		_, _ = copyFlat(out.flat, in.buf.flat)
		return value{buf: out, owned: true}, nil
	}
	fn := execTable[n.op]
	if fn == nil {
		return value{}, fmt.Errorf("no executor for op %s", n.op)
	}
	buf, err := fn(ex, n, ins, lastUse)
	if err != nil {
		return value{}, err
	}
	return value{buf: buf, owned: true}, nil
}

// binaryOps are the elementwise binary ops run by execBinary.
var binaryOps = []backends.OpType{backends.OpTypeAdd, backends.OpTypeSub, backends.OpTypeMul,
	backends.OpTypeDiv, backends.OpTypeRem, backends.OpTypePow, backends.OpTypeMax, backends.OpTypeMin,
	backends.OpTypeLogicalAnd, backends.OpTypeLogicalOr, backends.OpTypeLogicalXor, backends.OpTypeBitwiseAnd,
	backends.OpTypeBitwiseOr, backends.OpTypeBitwiseXor, backends.OpTypeShiftLeft,
	backends.OpTypeShiftRightArithmetic, backends.OpTypeShiftRightLogical}

// compareOps are the comparisons run by execCompare.
var compareOps = []backends.OpType{backends.OpTypeEqual, backends.OpTypeNotEqual,
	backends.OpTypeGreaterOrEqual, backends.OpTypeGreaterThan, backends.OpTypeLessOrEqual,
	backends.OpTypeLessThan, backends.OpTypeEqualTotalOrder, backends.OpTypeNotEqualTotalOrder,
	backends.OpTypeGreaterOrEqualTotalOrder, backends.OpTypeGreaterThanTotalOrder,
	backends.OpTypeLessOrEqualTotalOrder, backends.OpTypeLessThanTotalOrder}

// execFn computes a single-output node; it may take ownership of inputs through outputLike/take.
type execFn func(ex *execState, n *node, ins []*value, lastUse []bool) (*Buffer, error)

var execTable [opTupleElement + 1]execFn

func init() {
	for _, op := range []backends.OpType{backends.OpTypeAbs, backends.OpTypeNeg, backends.OpTypeSign,
		backends.OpTypeExp, backends.OpTypeExpm1, backends.OpTypeLog, backends.OpTypeLog1p, backends.OpTypeLogistic,
		backends.OpTypeSqrt, backends.OpTypeRsqrt, backends.OpTypeTanh, backends.OpTypeErf, backends.OpTypeCos,
		backends.OpTypeSin, backends.OpTypeFloor, backends.OpTypeCeil, backends.OpTypeRound,
		backends.OpTypeLogicalNot, backends.OpTypeBitwiseNot, backends.OpTypeBitCount, backends.OpTypeClz} {
		execTable[op] = execUnary
	}
	execTable[backends.OpTypeIsFinite] = execIsFiniteNaN
	execTable[backends.OpTypeIsNaN] = execIsFiniteNaN
	for _, op := range binaryOps {
		execTable[op] = execBinary
	}
	for _, op := range compareOps {
		execTable[op] = execCompare
	}
	execTable[backends.OpTypeClamp] = execClamp
	execTable[backends.OpTypeWhere] = execWhere
	execTable[backends.OpTypeConvertDType] = execConvert
	execTable[backends.OpTypeIota] = execIota
	execTable[backends.OpTypeTranspose] = execTranspose
	execTable[backends.OpTypeBroadcastInDim] = execBroadcastInDim
	execTable[backends.OpTypeSlice] = execSlice
	execTable[backends.OpTypePad] = execPad
	execTable[backends.OpTypeReverse] = execReverse
	execTable[backends.OpTypeConcatenate] = execConcatenate
	execTable[backends.OpTypeDynamicSlice] = execDynamicSlice
	execTable[backends.OpTypeDynamicUpdateSlice] = execDynamicUpdateSlice
	for _, op := range []backends.OpType{backends.OpTypeReduceSum, backends.OpTypeReduceMax,
		backends.OpTypeReduceMin, backends.OpTypeReduceProduct, backends.OpTypeReduceLogicalAnd,
		backends.OpTypeReduceLogicalOr, backends.OpTypeReduceLogicalXor, backends.OpTypeReduceBitwiseAnd,
		backends.OpTypeReduceBitwiseOr, backends.OpTypeReduceBitwiseXor} {
		execTable[op] = execReduce
	}
	execTable[backends.OpTypeArgMinMax] = execArgMinMax
	execTable[backends.OpTypeGather] = execGather
	execTable[backends.OpTypeScatterSum] = execScatter
	execTable[backends.OpTypeScatterMax] = execScatter
	execTable[backends.OpTypeScatterMin] = execScatter
	execTable[backends.OpTypeReduceWindow] = execReduceWindow
	execTable[backends.OpTypeSelectAndScatterMax] = execSelectAndScatter
	execTable[backends.OpTypeSelectAndScatterMin] = execSelectAndScatter
	execTable[backends.OpTypeSelectAndScatterSum] = execSelectAndScatter
	execTable[backends.OpTypeDotGeneral] = execDotGeneral
	execTable[backends.OpTypeConvGeneral] = execConvGeneral
	execTable[backends.OpTypeBatchNormForInference] = execBatchNormInference
}

// execMulti runs a multi-output node.
func execMulti(ex *execState, n *node, ins []*value, lastUse []bool) ([]value, error) {
	var bufs []*Buffer
	var err error
	switch n.op {
	case backends.OpTypeRNGBitGenerator:
		bufs, err = execRNG(ex, n, ins)
	case backends.OpTypeBatchNormForTraining:
		bufs, err = execBatchNormTraining(ex, n, ins, lastUse)
	case backends.OpTypeBatchNormGradient:
		bufs, err = execBatchNormGradient(ex, n, ins, lastUse)
	default:
		return nil, fmt.Errorf("no executor for multi-output op %s", n.op)
	}
	if err != nil {
		return nil, err
	}
	vals := make([]value, len(bufs))
	for i, b := range bufs {
		vals[i] = value{buf: b, owned: true}
	}
	return vals, nil
}
