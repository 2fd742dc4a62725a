package cpu

import (
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
