package cpu

import (
	"math"
	"slices"
	"unsafe"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// fuseMinSize is the smallest output for which a chain is fused: below it the op-by-op loops are
// as fast.
const fuseMinSize = 1024

// fuseBlock is the number of elements a fused program evaluates at a time (rounded to whole rows
// when an operand repeats along the last axis), so that its temporaries stay in L1.
const fuseBlock = 1024

// Kinds of fused-program operands (leaves).
const (
	leafFull     = iota // the output's size, read elementwise
	leafScalar          // one element, broadcast
	leafLastAxis        // the output's last dimension, repeated along the other axes
	leafRow             // one value per row (the output's shape with a last dimension of 1)
)

// fusedInstr is one op of a fused program: it writes register dst from registers a, b (and c,
// the Where condition's register for op Where). Registers 0 … len(leaves)-1 are the leaves; an
// instruction's register lives in temporary slot slot (slots are reused once a value is read).
type fusedInstr struct {
	op        backends.OpType
	dst, a, b int
	c         int
	slot      int
	binKernel func(out, a []float32, aS bool, b []float32, bS bool)
	unary     func(dst, src []float32)
	isCompare bool
}

// fusedProgram evaluates a tree of float32 elementwise ops in one pass over blocks of the output:
// leaves are the step's inputs, intermediate values live in per-block temporaries. Comparisons
// appear only as the condition of a Where and are held as 1/0.
type fusedProgram struct {
	leafKinds []int
	instrs    []fusedInstr
	numRegs   int
	numSlots  int
	// costly is set when the program has a transcendental op: it is split over the cores from a
	// smaller size.
	costly bool
	// affine is set when the program is an affineReLU: it then runs as one loop over the rows where
	// the processor has one (affineReLURows).
	affine *affineReLU
	// reluGrad is set when the program is a reluGrad (see affine).
	reluGrad *reluGrad
}

// reluGrad describes a fused program y ≥ z ? t : f with t = g or g + g2: y, g and g2 full leaves,
// z and f scalar leaves. It is the gradient of a ReLU, max(y, 0), whose output gradient is g (or
// the sum g + g2 of two branches). The fields are leaf indices, -1 where absent.
type reluGrad struct {
	y, g, g2, z, f int
	// mask is set when y is the bits of y ≥ 0 that a batch norm wrote instead of y (see
	// fuseReLUMask, bnMaskShape); z is then +0.
	mask bool
}

// isLeaf reports whether operand r of p's instructions is a leaf of the given kind.
func (p *fusedProgram) isLeaf(r, kind int) bool {
	return r >= 0 && r < len(p.leafKinds) && p.leafKinds[r] == kind
}

// instr returns the instruction that computes operand r, or nil when r is a leaf.
func (p *fusedProgram) instr(r int) *fusedInstr {
	if r < len(p.leafKinds) {
		return nil
	}
	return &p.instrs[r-len(p.leafKinds)]
}

// matchReLUGrad returns the program's reluGrad form, or nil.
func (p *fusedProgram) matchReLUGrad() *reluGrad {
	nl := len(p.leafKinds)
	last := &p.instrs[len(p.instrs)-1]
	if last.op != backends.OpTypeWhere || last.c < nl || !p.isLeaf(last.b, leafScalar) {
		return nil
	}
	cmp := &p.instrs[last.c-nl]
	if cmp.op != backends.OpTypeGreaterOrEqual || !p.isLeaf(cmp.a, leafFull) || !p.isLeaf(cmp.b, leafScalar) {
		return nil
	}
	m := &reluGrad{y: cmp.a, z: cmp.b, f: last.b, g2: -1}
	switch {
	case p.isLeaf(last.a, leafFull) && len(p.instrs) == 2:
		m.g = last.a
		return m
	case last.a >= nl && len(p.instrs) == 3:
		add := &p.instrs[last.a-nl]
		if add.op == backends.OpTypeAdd && p.isLeaf(add.a, leafFull) && p.isLeaf(add.b, leafFull) {
			m.g, m.g2 = add.a, add.b
			return m
		}
	}
	return nil
}

// affineReLU describes a fused program max(t, z) with t = x·a + b, (x·a + b) + s or
// (x·a + b) + (x2·a2 + b2): x, x2 and s full leaves, a, b, a2 and b2 per-feature (last-axis) leaves
// and z a scalar leaf. It is an inference batch norm (a frozen teacher's) and its ReLU, after a
// residual sum or with a normalised shortcut. The fields are leaf indices, -1 where absent.
type affineReLU struct {
	x, a, b, s, x2, a2, b2, z int
}

// matchAffineReLU returns the program's affineReLU form, or nil. Operands may come in either
// order: the operations are commutative, bit for bit.
func (p *fusedProgram) matchAffineReLU() *affineReLU {
	// affine matches x·a + b.
	affine := func(r int) (x, a, b int, ok bool) {
		add := p.instr(r)
		if add == nil || add.op != backends.OpTypeAdd {
			return 0, 0, 0, false
		}
		for _, sum := range [2][2]int{{add.a, add.b}, {add.b, add.a}} {
			mul := p.instr(sum[0])
			if mul == nil || mul.op != backends.OpTypeMul || !p.isLeaf(sum[1], leafLastAxis) {
				continue
			}
			for _, prod := range [2][2]int{{mul.a, mul.b}, {mul.b, mul.a}} {
				if p.isLeaf(prod[0], leafFull) && p.isLeaf(prod[1], leafLastAxis) {
					return prod[0], prod[1], sum[1], true
				}
			}
		}
		return 0, 0, 0, false
	}
	last := &p.instrs[len(p.instrs)-1]
	if last.op != backends.OpTypeMax {
		return nil
	}
	m := &affineReLU{s: -1, x2: -1, a2: -1, b2: -1}
	var t int
	switch {
	case p.isLeaf(last.b, leafScalar):
		t, m.z = last.a, last.b
	case p.isLeaf(last.a, leafScalar):
		t, m.z = last.b, last.a
	default:
		return nil
	}
	var ok bool
	if m.x, m.a, m.b, ok = affine(t); ok {
		if len(p.instrs) != 3 {
			return nil
		}
		return m
	}
	sum := p.instr(t)
	if sum == nil || sum.op != backends.OpTypeAdd {
		return nil
	}
	other := sum.b
	if m.x, m.a, m.b, ok = affine(sum.a); !ok {
		other = sum.a
		if m.x, m.a, m.b, ok = affine(sum.b); !ok {
			return nil
		}
	}
	switch {
	case p.isLeaf(other, leafFull) && len(p.instrs) == 4:
		m.s = other
		return m
	case len(p.instrs) == 6:
		if m.x2, m.a2, m.b2, ok = affine(other); ok {
			return m
		}
	}
	return nil
}

// noReg marks an unused operand while a program is built (-1 once registers are numbered).
const noReg = math.MinInt

// fusableOps are the ops a fused program evaluates: binary arithmetic, comparisons feeding a
// Where, and the unary ops with a float32 slice kernel (see unaryKernel32).
var fusableOps = []backends.OpType{backends.OpTypeAdd, backends.OpTypeSub, backends.OpTypeMul,
	backends.OpTypeDiv, backends.OpTypeMax, backends.OpTypeMin, backends.OpTypeNeg, backends.OpTypeWhere,
	backends.OpTypeGreaterOrEqual, backends.OpTypeGreaterThan, backends.OpTypeLessOrEqual, backends.OpTypeLessThan,
	backends.OpTypeExp, backends.OpTypeExpm1, backends.OpTypeLog, backends.OpTypeLog1p, backends.OpTypeLogistic,
	backends.OpTypeTanh, backends.OpTypeErf, backends.OpTypeSqrt, backends.OpTypeRsqrt, backends.OpTypeAbs,
	backends.OpTypeSign}

// isCostlyOp reports whether op is a transcendental function (a few nanoseconds per element).
func isCostlyOp(op backends.OpType) bool {
	switch op {
	case backends.OpTypeExp, backends.OpTypeExpm1, backends.OpTypeLog, backends.OpTypeLog1p, backends.OpTypeLogistic,
		backends.OpTypeTanh, backends.OpTypeErf, backends.OpTypeRsqrt:
		return true
	}
	return false
}

func isCompareOp(op backends.OpType) bool {
	switch op {
	case backends.OpTypeGreaterOrEqual, backends.OpTypeGreaterThan, backends.OpTypeLessOrEqual, backends.OpTypeLessThan:
		return true
	}
	return false
}

// leafKind classifies an operand of an op with output shape of node n, or returns -1 when a fused
// program cannot read it.
func leafKind(n, in *node) int {
	if in.multiShapes != nil || in.shape.DType != dtypes.Float32 {
		return -1
	}
	size := in.shape.Size()
	switch {
	case size == n.shape.Size():
		return leafFull
	case size == 1:
		return leafScalar
	}
	r := n.shape.Rank()
	if in.shape.Rank() != r || r == 0 {
		return -1
	}
	last := n.shape.Dimensions[r-1]
	if in.shape.Dimensions[r-1] == last && size == last {
		return leafLastAxis
	}
	if in.shape.Dimensions[r-1] == 1 && size*last == n.shape.Size() &&
		slices.Equal(in.shape.Dimensions[:r-1], n.shape.Dimensions[:r-1]) {
		return leafRow
	}
	return -1
}

// fusable reports whether node n (with folded inputs ins) can be part of a fused program.
func fusable(n *node, ins []*node) bool {
	if n.multiShapes != nil || !slices.Contains(fusableOps, n.op) || n.shape.Size() < fuseMinSize {
		return false
	}
	if isCompareOp(n.op) {
		if n.shape.DType != dtypes.Bool {
			return false
		}
	} else if n.shape.DType != dtypes.Float32 {
		return false
	}
	for i, in := range ins {
		if n.op == backends.OpTypeWhere && i == 0 {
			continue // checked when the condition is absorbed
		}
		if leafKind(n, in) < 0 {
			return false
		}
	}
	return true
}

// liveUses returns, by node id, how many times the live nodes take each node as an input.
func liveUses(nodes []*node, inputs [][]*node, live []bool) []int {
	uses := make([]int, len(nodes))
	for _, n := range nodes {
		if !live[n.id] {
			continue
		}
		for _, in := range inputs[n.id] {
			uses[in.id]++
		}
	}
	return uses
}

// liveUsers returns, by node id, the live nodes that take each node as an input (a node once per
// time it takes it).
func liveUsers(nodes []*node, inputs [][]*node, live []bool) [][]*node {
	users := make([][]*node, len(nodes))
	for _, n := range nodes {
		if !live[n.id] {
			continue
		}
		for _, in := range inputs[n.id] {
			users[in.id] = append(users[in.id], n)
		}
	}
	return users
}

// fuseChains rewrites the live graph: every float32 elementwise node (a root) whose operands
// include fusable nodes of the same shape used only by it absorbs them, recursively, into one
// fusedProgram; absorbed nodes are marked not live, and inputs[root] becomes the program's
// leaves. It returns the programs by root id.
func fuseChains(nodes []*node, inputs [][]*node, live, isOutput []bool) map[int]*fusedProgram {
	uses := liveUses(nodes, inputs, live)
	var absorbable func(parent, m *node, asCond bool) bool
	absorbable = func(parent, m *node, asCond bool) bool {
		if !live[m.id] || uses[m.id] != 1 || isOutput[m.id] || !m.shape.Equal(parentShape(parent, asCond)) {
			return false
		}
		if isCompareOp(m.op) != asCond || !fusable(m, inputs[m.id]) {
			return false
		}
		// A Where is fused only with its condition (a program holds no boolean operand).
		return m.op != backends.OpTypeWhere || absorbable(m, inputs[m.id][0], true)
	}
	progs := map[int]*fusedProgram{}
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		if !live[n.id] || isCompareOp(n.op) || !fusable(n, inputs[n.id]) {
			continue
		}
		if n.op == backends.OpTypeWhere && !absorbable(n, inputs[n.id][0], true) {
			continue
		}
		grows := false
		for j, in := range inputs[n.id] {
			if absorbable(n, in, n.op == backends.OpTypeWhere && j == 0) {
				grows = true
			}
		}
		if !grows {
			continue
		}
		p := &fusedProgram{}
		var leaves []*node
		var build func(m *node) int
		build = func(m *node) int {
			regs := [3]int{noReg, noReg, noReg}
			for j, in := range inputs[m.id] {
				asCond := m.op == backends.OpTypeWhere && j == 0
				if absorbable(m, in, asCond) {
					live[in.id] = false
					regs[j] = build(in)
					continue
				}
				k := slices.Index(leaves, in)
				if k < 0 {
					k = len(leaves)
					leaves = append(leaves, in)
					p.leafKinds = append(p.leafKinds, leafKind(n, in))
				}
				regs[j] = -1 - k // leaf, renumbered below
			}
			ins := fusedInstr{op: m.op, dst: len(p.instrs), a: regs[0], b: regs[1], c: noReg}
			p.costly = p.costly || isCostlyOp(m.op)
			switch {
			case m.op == backends.OpTypeWhere:
				ins.c, ins.a, ins.b = regs[0], regs[1], regs[2]
			case len(inputs[m.id]) == 1:
				ins.unary = unaryKernel32(m.op)
			case isCompareOp(m.op):
				ins.isCompare = true
			default:
				ins.binKernel = float32BinKernel(m.op)
			}
			p.instrs = append(p.instrs, ins)
			return len(p.instrs) - 1
		}
		build(n)
		// Registers: leaves first, then one per instruction.
		nl := len(leaves)
		ren := func(r int) int {
			if r == noReg {
				return -1
			}
			if r < 0 {
				return -1 - r
			}
			return nl + r
		}
		for k := range p.instrs {
			in := &p.instrs[k]
			in.dst = nl + in.dst
			in.a, in.b, in.c = ren(in.a), ren(in.b), ren(in.c)
		}
		p.numRegs = nl + len(p.instrs)
		p.assignSlots(nl)
		p.affine = p.matchAffineReLU()
		p.reluGrad = p.matchReLUGrad()
		inputs[n.id] = leaves
		progs[n.id] = p
	}
	return progs
}

// assignSlots gives every instruction but the last (which writes the output) a temporary slot:
// each value is read once, by a later instruction, so a slot is free again once its value has been
// read, and an instruction may write the slot of one of its operands (all kernels work in place).
func (p *fusedProgram) assignSlots(nl int) {
	slotOf := make([]int, p.numRegs)
	var free []int
	for k := range p.instrs {
		in := &p.instrs[k]
		for _, r := range []int{in.a, in.b, in.c} {
			if r >= nl && r < in.dst { // an instruction's value, read here for the only time
				free = append(free, slotOf[r])
			}
		}
		if k == len(p.instrs)-1 {
			in.slot = -1
			break
		}
		if len(free) > 0 {
			in.slot, free = free[len(free)-1], free[:len(free)-1]
		} else {
			in.slot = p.numSlots
			p.numSlots++
		}
		slotOf[in.dst] = in.slot
	}
}

// parentShape is the shape an operand must have to be absorbed into parent: parent's own shape,
// with dtype Bool for the condition of a Where.
func parentShape(parent *node, asCond bool) shapes.Shape {
	s := parent.shape
	if asCond {
		s = s.Clone()
		s.DType = dtypes.Bool
	}
	return s
}

// execFused runs a fused program: its output reuses a full leaf's buffer when that leaf is used for
// the last time, and blocks (of whole rows when an operand repeats along or across the last axis)
// are split over the cores.
func execFused(ex *execState, n *node, p *fusedProgram, ins []*value, lastUse []bool) (*Buffer, error) {
	var cands []int
	for i, k := range p.leafKinds {
		if k == leafFull && (p.reluGrad == nil || !p.reluGrad.mask || i != p.reluGrad.y) {
			cands = append(cands, i)
		}
	}
	out := outputLike(ex, n.shape, ins, lastUse, cands...)
	o := out.flat.([]float32)
	leaves := make([][]float32, len(p.leafKinds))
	for i, v := range ins {
		if v.buf == nil { // taken as the output: same storage
			leaves[i] = o
			continue
		}
		leaves[i] = v.buf.flat.([]float32)
	}
	rowsBlocked := slices.Contains(p.leafKinds, leafLastAxis) || slices.Contains(p.leafKinds, leafRow)
	total := len(o)
	blk := fuseBlock
	c := 1
	if r := n.shape.Rank(); r > 0 {
		c = n.shape.Dimensions[r-1]
	}
	if m := p.reluGrad; m != nil && m.mask {
		words := bitsOf(leaves[m.y])
		g, g2, f := leaves[m.g], []float32(nil), leaves[m.f]
		if m.g2 >= 0 {
			g2 = leaves[m.g2]
		}
		// Ranges of whole mask words.
		parallelFor((total+31)/32, max(1, elemGrain/32), func(w0, w1 int) {
			s, e := w0*32, min(total, w1*32)
			var g2s []float32 // g2's range, or nil
			if g2 != nil {
				g2s = g2[s:e]
			}
			reluGradMaskElems(o[s:e], words[w0:w1], g[s:e], g2s, f)
		})
		return out, nil
	}
	if m := p.reluGrad; m != nil && fusedLoopsAvailable() {
		y, g, g2, z, f := leaves[m.y], leaves[m.g], []float32(nil), leaves[m.z], leaves[m.f]
		if m.g2 >= 0 {
			g2 = leaves[m.g2]
		}
		parallelFor(total, elemGrain, func(s, e int) {
			if g2 != nil {
				reluGradElems(o[s:e], y[s:e], g[s:e], g2[s:e], z, f)
			} else {
				reluGradElems(o[s:e], y[s:e], g[s:e], nil, z, f)
			}
		})
		return out, nil
	}
	if m := p.affine; m != nil && c > 0 && fusedLoopsAvailable() {
		leaf := func(i int) []float32 {
			if i < 0 {
				return nil
			}
			return leaves[i]
		}
		x, s, x2 := leaf(m.x), leaf(m.s), leaf(m.x2)
		a, b, a2, b2, z := leaf(m.a), leaf(m.b), leaf(m.a2), leaf(m.b2), leaf(m.z)
		parallelFor(total/c, max(1, elemGrain/c), func(r0, r1 int) {
			rows := func(v []float32) []float32 {
				if v == nil {
					return nil
				}
				return v[r0*c : r1*c]
			}
			affineReLURows(rows(o), rows(x), a, b, rows(s), rows(x2), a2, b2, z)
		})
		return out, nil
	}
	if rowsBlocked {
		blk = c * max(1, fuseBlock/c)
	}
	nBlocks := (total + blk - 1) / blk
	grain := elemGrain
	if p.costly {
		grain = elemGrain / 8
	}
	parallelFor(nBlocks, max(1, grain/blk), func(b0, b1 int) {
		// Slots a cache line more than a block apart: at a multiple of 4 KiB, loads of one slot
		// would falsely depend on stores to another (4K aliasing).
		stride := blk + 16
		// One scratch slice: the temporaries, then a block per last-axis or row leaf (the leaf
		// repeated, or expanded, over a block).
		expanded := 0
		for _, k := range p.leafKinds {
			if k == leafLastAxis || k == leafRow {
				expanded++
			}
		}
		sp := getScratch[float32](p.numSlots*stride + expanded*blk)
		defer putScratch(sp)
		temps, rest := (*sp)[:p.numSlots*stride], (*sp)[p.numSlots*stride:]
		regs := make([][]float32, p.numRegs)
		scalar := make([]bool, p.numRegs)
		for i, k := range p.leafKinds {
			switch k {
			case leafScalar:
				regs[i], scalar[i] = leaves[i][:1], true
			case leafLastAxis:
				t := rest[:blk:blk]
				rest = rest[blk:]
				for j := 0; j < blk; j += c {
					copy(t[j:], leaves[i])
				}
				regs[i] = t
			case leafRow:
				regs[i] = rest[:blk:blk]
				rest = rest[blk:]
			}
		}
		for b := b0; b < b1; b++ {
			s := b * blk
			e := min(total, s+blk)
			m := e - s
			for i, k := range p.leafKinds {
				switch k {
				case leafFull:
					regs[i] = leaves[i][s:e]
				case leafLastAxis:
					regs[i] = regs[i][:m]
				case leafRow:
					t := regs[i][:m]
					for r, v := range leaves[i][s/c : e/c] {
						row := t[r*c : (r+1)*c]
						for j := range row {
							row[j] = v
						}
					}
					regs[i] = t
				}
			}
			for k := range p.instrs {
				in := &p.instrs[k]
				var d []float32
				if in.slot < 0 {
					d = o[s:e]
				} else {
					d = temps[in.slot*stride:][:m]
				}
				switch {
				case in.binKernel != nil:
					in.binKernel(d, regs[in.a], scalar[in.a], regs[in.b], scalar[in.b])
				case in.unary != nil:
					if scalar[in.a] {
						var v [1]float32
						in.unary(v[:], regs[in.a][:1])
						for j := range d {
							d[j] = v[0]
						}
					} else {
						in.unary(d, regs[in.a][:m])
					}
				case in.isCompare:
					fusedCompare(in.op, d, regs[in.a], scalar[in.a], regs[in.b], scalar[in.b])
				default: // Where
					fusedWhere(d, regs[in.c], scalar[in.c], regs[in.a], scalar[in.a], regs[in.b], scalar[in.b])
				}
				regs[in.dst] = d
			}
		}
	})
	return out, nil
}

// at returns x[i], or x[0] for a broadcast scalar.
func at(x []float32, s bool, i int) float32 {
	if s {
		return x[0]
	}
	return x[i]
}

// maskOf returns all ones when b holds, else 0 (compiled without a branch).
func maskOf(b bool) uint32 {
	var m uint32
	if b {
		m = 1
	}
	return -m
}

// bitsOf views a float32 slice as its bit patterns.
func bitsOf(x []float32) []uint32 {
	return unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(x))), len(x))
}

// fusedCompare writes the comparison as a bit mask held in a float32: all ones where it holds,
// else 0 (read only by fusedWhere).
func fusedCompare(op backends.OpType, d, a []float32, aS bool, b []float32, bS bool) {
	db := bitsOf(d)
	if !aS && bS {
		t := b[0]
		a = a[:len(d)]
		switch op {
		case backends.OpTypeGreaterOrEqual: // ReLU's mask
			for j := compareVSBlocks(op, d, a, b); j < len(a); j++ {
				db[j] = maskOf(a[j] >= t)
			}
			return
		case backends.OpTypeGreaterThan:
			for j := compareVSBlocks(op, d, a, b); j < len(a); j++ {
				db[j] = maskOf(a[j] > t)
			}
			return
		}
	}
	var f func(x, y float32) bool
	switch op {
	case backends.OpTypeGreaterOrEqual:
		f = func(x, y float32) bool { return x >= y }
	case backends.OpTypeGreaterThan:
		f = func(x, y float32) bool { return x > y }
	case backends.OpTypeLessOrEqual:
		f = func(x, y float32) bool { return x <= y }
	default:
		f = func(x, y float32) bool { return x < y }
	}
	for j := range db {
		db[j] = maskOf(f(at(a, aS, j), at(b, bS, j)))
	}
}

// fusedWhere writes t where the mask c (from fusedCompare) is set, else f, selecting bits.
func fusedWhere(d, c []float32, cS bool, t []float32, tS bool, f []float32, fS bool) {
	db, cb, tb, fb := bitsOf(d), bitsOf(c), bitsOf(t), bitsOf(f)
	if !cS {
		cb = cb[:len(db)]
		switch {
		case !tS && fS:
			tb, z := tb[:len(db)], fb[0]
			for j := whereBlocks(d, c, t, f, true); j < len(db); j++ {
				db[j] = z ^ ((tb[j] ^ z) & cb[j])
			}
			return
		case tS && !fS:
			o, fb := tb[0], fb[:len(db)]
			for j, m := range cb {
				db[j] = fb[j] ^ ((o ^ fb[j]) & m)
			}
			return
		case !tS && !fS:
			tb, fb := tb[:len(db)], fb[:len(db)]
			for j := whereBlocks(d, c, t, f, false); j < len(db); j++ {
				db[j] = fb[j] ^ ((tb[j] ^ fb[j]) & cb[j])
			}
			return
		}
	}
	for j := range db {
		m := bitsOf(c)[0]
		if !cS {
			m = cb[j]
		}
		tv, fv := tb[0], fb[0]
		if !tS {
			tv = tb[j]
		}
		if !fS {
			fv = fb[j]
		}
		db[j] = fv ^ ((tv ^ fv) & m)
	}
}

// reluGradMaskElemsGo writes out = bit i of mask ? t : f[0] (bit i mod 32 of mask[i/32]), with
// t = g, or g + g2 when g2 is set, selecting bits as fusedWhere.
func reluGradMaskElemsGo(out []float32, mask []uint32, g, g2, f []float32) {
	ob, fb := bitsOf(out), math.Float32bits(f[0])
	g = g[:len(out)]
	if g2 != nil {
		g2 = g2[:len(out)]
	}
	for i, t := range g {
		if g2 != nil {
			t += g2[i]
		}
		m := -(mask[i>>5] >> (i & 31) & 1)
		ob[i] = fb ^ ((math.Float32bits(t) ^ fb) & m)
	}
}
