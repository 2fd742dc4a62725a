package cpu

import (
	"slices"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// TestExecutorEdgeCases drives the backend API directly: an unused (donated) parameter, an output
// that is a parameter, the same node twice as output, donated inputs reused in place, and two
// independent products.
func TestExecutorEdgeCases(t *testing.T) {
	be := testCPU()
	b := be.Builder("edge")
	s := shapes.Make(dtypes.Float32, 2, 2)
	x, _ := b.Parameter("x", s, nil)
	unused, _ := b.Parameter("unused", s, nil)
	y, _ := b.Parameter("y", s, nil)
	_ = unused
	sum, _ := b.Add(x, y)
	neg, _ := b.Neg(sum)
	p1, _ := b.DotGeneral(x, []int{1}, nil, y, []int{0}, nil)
	p2, _ := b.DotGeneral(y, []int{1}, nil, x, []int{0}, nil)
	dead, _ := b.Exp(x) // feeds no output
	_ = dead
	exe, err := b.Compile([]backends.Op{neg, x, neg, p1, p2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(v ...float32) backends.Buffer {
		buf, err := be.BufferFromFlatData(0, v, s)
		if err != nil {
			t.Fatal(err)
		}
		return buf
	}
	for round := 0; round < 2; round++ {
		xb, ub, yb := mk(1, 2, 3, 4), mk(0, 0, 0, 0), mk(5, 6, 7, 8)
		outs, err := exe.Execute([]backends.Buffer{xb, ub, yb}, []bool{false, true, true}, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := [][]float32{{-6, -8, -10, -12}, {1, 2, 3, 4}, {-6, -8, -10, -12}, {19, 22, 43, 50}, {23, 34, 31, 46}}
		for i, o := range outs {
			got := make([]float32, 4)
			if err := be.BufferToFlatData(o, got); err != nil {
				t.Fatal(err)
			}
			for j := range got {
				if got[j] != want[i][j] {
					t.Fatalf("round %d output %d: got %v, want %v", round, i, got, want[i])
				}
			}
			if err := be.BufferFinalize(o); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := be.BufferShape(yb); err == nil {
			t.Fatalf("donated input still valid")
		}
		if _, err := be.BufferShape(xb); err != nil {
			t.Fatalf("kept input invalidated: %v", err)
		}
	}
}

// TestFoldBroadcasts checks that a broadcast consumed only by elementwise ops that broadcast
// themselves is never run, and that one with another consumer still is.
func TestFoldBroadcasts(t *testing.T) {
	b := testCPU().Builder("fold")
	s := shapes.Make(dtypes.Float32, 3, 4)
	x, _ := b.Parameter("x", s, nil)
	zero, _ := b.Constant([]float32{0}, []int{}...)
	zeros, _ := b.BroadcastInDim(zero, s, nil)
	relu, _ := b.Max(x, zeros)
	rowC, _ := b.Constant([]float32{1, 2, 3, 4}, 1, 4)
	row, _ := b.BroadcastInDim(rowC, s, []int{0, 1})
	scaled, _ := b.Mul(relu, row)
	exe, err := b.Compile([]backends.Op{scaled}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range exe.(*Executable).steps {
		if st.n.op == backends.OpTypeBroadcastInDim {
			t.Fatalf("broadcast %s was not folded", st.n.shape)
		}
	}
	b2 := testCPU().Builder("nofold")
	x2, _ := b2.Parameter("x", s, nil)
	zero2, _ := b2.Constant([]float32{0}, []int{}...)
	zeros2, _ := b2.BroadcastInDim(zero2, s, nil)
	relu2, _ := b2.Max(x2, zeros2)
	exe2, err := b2.Compile([]backends.Op{relu2, zeros2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	e2 := exe2.(*Executable)
	for _, st := range append(slices.Clone(e2.steps), e2.fold.steps...) {
		found = found || st.n.op == backends.OpTypeBroadcastInDim
	}
	if !found {
		t.Fatal("a broadcast that is an output was dropped")
	}
	buf, _ := testCPU().BufferFromFlatData(0, []float32{-1, 2, -3, 4, 5, -6, 7, 8, -9, 10, 11, -12}, s)
	outs, err := exe.Execute([]backends.Buffer{buf}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := outs[0].(*Buffer).flat.([]float32)
	want := []float32{0, 4, 0, 16, 5, 0, 21, 32, 0, 20, 33, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("element %d: got %v, want %v (all %v)", i, got[i], want[i], got)
		}
	}
}
