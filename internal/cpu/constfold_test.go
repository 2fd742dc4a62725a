package cpu

import (
	"slices"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// mustOp unwraps a builder call in tests.
func mustOp(t *testing.T) func(op backends.Op, err error) backends.Op {
	return func(op backends.Op, err error) backends.Op {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
}

// stepOps lists the ops of steps.
func stepOps(steps []step) []backends.OpType {
	var ops []backends.OpType
	for _, st := range steps {
		ops = append(ops, st.n.op)
	}
	return ops
}

// TestConstFoldMixedGraph builds a graph whose mask (an Iota, Rem, Equal, ConvertDType chain, like a
// contrastive loss's positives mask) depends on no input, and checks across repeated Executes —
// with the input donated or not — the results against values computed by hand, that the mask's
// steps run only once, that a folded output is a copy (writing to it changes nothing later), and
// that in-place reuse never writes into a folded value.
func TestConstFoldMixedGraph(t *testing.T) {
	be := testCPU()
	b := be.Builder("constfold")
	m := mustOp(t)
	const rows, cols = 3, 8
	s := shapes.Make(dtypes.Float32, rows, cols)
	si := shapes.Make(dtypes.Int32, rows, cols)
	x := m(b.Parameter("x", s, nil))
	iota := m(b.Iota(si, 1))
	three := m(b.Constant([]int32{3}))
	rem := m(b.Rem(iota, m(b.BroadcastInDim(three, si, nil))))
	zero := m(b.Constant([]int32{0}))
	eq := m(b.Equal(rem, m(b.BroadcastInDim(zero, si, nil))))
	mask := m(b.ConvertDType(eq, dtypes.Float32)) // 1 where column % 3 == 0
	twoMask := m(b.Add(mask, mask))               // folded, both inputs the same folded value
	masked := m(b.Mul(x, mask))                   // live: may reuse x's storage, never mask's
	shifted := m(b.Add(masked, twoMask))          // live
	rowSum := m(b.ReduceSum(twoMask, 1))          // folded, an output
	exe, err := b.Compile([]backends.Op{shifted, mask, rowSum, mask}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := exe.(*Executable)
	for _, op := range []backends.OpType{backends.OpTypeIota, backends.OpTypeRem, backends.OpTypeEqual,
		backends.OpTypeConvertDType, backends.OpTypeReduceSum, backends.OpTypeConstant} {
		if slices.Contains(stepOps(e.steps), op) {
			t.Errorf("%s runs every Execute; it depends on no input", op)
		}
		if !slices.Contains(stepOps(e.fold.steps), op) {
			t.Errorf("%s is not computed by the folding steps %v", op, stepOps(e.fold.steps))
		}
	}
	if !slices.Contains(stepOps(e.steps), backends.OpTypeMul) {
		t.Errorf("Mul(x, mask) does not run every Execute: %v", stepOps(e.steps))
	}
	wantMask := make([]float32, rows*cols)
	for i := range wantMask {
		if (i%cols)%3 == 0 {
			wantMask[i] = 1
		}
	}
	for round := range 4 {
		xv := make([]float32, rows*cols)
		for i := range xv {
			xv[i] = float32(i*(round+1)) - 5
		}
		xb, err := be.BufferFromFlatData(0, xv, s)
		if err != nil {
			t.Fatal(err)
		}
		donate := round%2 == 1
		outs, err := exe.Execute([]backends.Buffer{xb}, []bool{donate}, 0)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		got := make([][]float32, len(outs))
		for i, o := range outs {
			got[i] = slices.Clone(o.(*Buffer).flat.([]float32))
		}
		for i := range xv {
			if want := xv[i]*wantMask[i] + 2*wantMask[i]; got[0][i] != want {
				t.Fatalf("round %d: shifted[%d] = %v, want %v", round, i, got[0][i], want)
			}
		}
		for k, idx := range []int{1, 3} {
			if !slices.Equal(got[idx], wantMask) {
				t.Fatalf("round %d: mask output #%d = %v, want %v", round, k, got[idx], wantMask)
			}
		}
		if want := []float32{6, 6, 6}; !slices.Equal(got[2], want) { // columns 0, 3, 6: 3 × 2
			t.Fatalf("round %d: rowSum = %v, want %v", round, got[2], want)
		}
		// Outputs are distinct buffers that the caller owns: scribbling on them (and returning them
		// to the pool) must not reach the kept values.
		for i, o := range outs {
			for j, other := range outs[:i] {
				if &o.(*Buffer).flat.([]float32)[0] == &other.(*Buffer).flat.([]float32)[0] {
					t.Fatalf("outputs %d and %d share storage", j, i)
				}
			}
			for _, kv := range e.fold.vals {
				if f, ok := kv.buf.flat.([]float32); ok && &f[0] == &o.(*Buffer).flat.([]float32)[0] {
					t.Fatalf("output %d is a kept folded value", i)
				}
			}
		}
		for _, o := range outs {
			clear(o.(*Buffer).flat.([]float32))
			if err := be.BufferFinalize(o); err != nil {
				t.Fatal(err)
			}
		}
		if donate {
			if _, err := be.BufferShape(xb); err == nil {
				t.Fatalf("round %d: donated input still valid", round)
			}
		} else if err := be.BufferFinalize(xb); err != nil {
			t.Fatal(err)
		}
	}
	exe.Finalize()
	if len(e.fold.vals) != 0 {
		t.Fatal("Finalize kept the folded values")
	}
	xb, _ := be.BufferFromFlatData(0, make([]float32, rows*cols), s)
	if _, err := exe.Execute([]backends.Buffer{xb}, nil, 0); err == nil {
		t.Fatal("Execute after Finalize succeeded")
	}
}

// TestConstFoldAllConstant compiles a graph with no parameter at all, with a folded multi-output
// op (batch norm of a constant) whose outputs feed further folded ops, and checks repeated Executes
// give fresh, correct copies.
func TestConstFoldAllConstant(t *testing.T) {
	be := testCPU()
	b := be.Builder("allconst")
	m := mustOp(t)
	x := m(b.Constant([]float32{1, 2, 3, 4, 5, 6}, 3, 2))
	scale := m(b.Constant([]float32{1, 1}, 2))
	offset := m(b.Constant([]float32{0, 0}, 2))
	_, mean, variance, err := b.BatchNormForTraining(x, scale, offset, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	sum := m(b.Add(mean, variance))
	exe, err := b.Compile([]backends.Op{sum, mean}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if steps := exe.(*Executable).steps; len(steps) != 0 {
		t.Fatalf("a constant graph still runs %v every Execute", stepOps(steps))
	}
	// Columns {1,3,5} and {2,4,6}: means 3 and 4, biased variance 8/3.
	want := [][]float32{{3 + 8.0/3, 4 + 8.0/3}, {3, 4}}
	for round := range 3 {
		outs, err := exe.Execute(nil, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range outs {
			got := o.(*Buffer).flat.([]float32)
			for j := range got {
				if d := got[j] - want[i][j]; d > 1e-6 || d < -1e-6 {
					t.Fatalf("round %d output %d = %v, want %v", round, i, got, want[i])
				}
			}
			got[0] = 1e9 // the caller's copy
			_ = be.BufferFinalize(o)
		}
	}
	exe.Finalize()
}

// TestConstFoldSkips checks what is not folded: random bits (even from a constant state), anything
// reading a parameter, and a value above the size limit — whose small folded inputs are then kept
// instead.
func TestConstFoldSkips(t *testing.T) {
	be := testCPU()
	b := be.Builder("skips")
	m := mustOp(t)
	x := m(b.Parameter("x", shapes.Make(dtypes.Float32, 8, 8), nil))
	small := m(b.Iota(shapes.Make(dtypes.Float32, 8), 0))                          // 32 bytes
	big := m(b.BroadcastInDim(small, shapes.Make(dtypes.Float32, 8, 8), []int{1})) // 256 bytes
	sum := m(b.ReduceSum(m(b.Add(x, big)), 0))                                     // reads x
	state := m(b.Constant([]uint64{1, 2, 3}, 3))                                   // Philox state
	_, bits, err := b.RNGBitGenerator(state, shapes.Make(dtypes.Uint32, 4))
	if err != nil {
		t.Fatal(err)
	}
	bld := b.(*Builder)
	inputs := make([][]*node, len(bld.nodes))
	for i, n := range bld.nodes {
		inputs[i] = foldBroadcasts(n)
	}
	folded := foldableNodes(bld.nodes, inputs, 100)
	id := func(op backends.Op) int { return op.(*node).id }
	for _, c := range []struct {
		what string
		op   backends.Op
		want bool
	}{{"Iota", small, true}, {"over-limit broadcast", big, false}, {"sum of x", sum, false},
		{"constant state", state, true}, {"random bits", bits, false}} {
		if folded[id(c.op)] != c.want {
			t.Errorf("%s: folded = %v, want %v", c.what, folded[id(c.op)], c.want)
		}
	}
	// With the default limit, the broadcast is kept as a folded value and the Add reads it; the RNG
	// runs every Execute.
	exe, err := b.Compile([]backends.Op{sum, bits}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := exe.(*Executable)
	if !slices.Contains(stepOps(e.steps), backends.OpTypeRNGBitGenerator) {
		t.Fatalf("RNGBitGenerator was folded: steps %v", stepOps(e.steps))
	}
	xb, _ := be.BufferFromFlatData(0, make([]float32, 64), shapes.Make(dtypes.Float32, 8, 8))
	for range 2 {
		outs, err := exe.Execute([]backends.Buffer{xb}, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := outs[0].(*Buffer).flat.([]float32)
		for j, v := range got {
			if v != float32(8*j) {
				t.Fatalf("sum = %v, want 8·j", got)
			}
		}
	}
}
