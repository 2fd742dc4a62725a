package backbone

import (
	"slices"
	"testing"
)

func TestLayerSelect(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want []int
	}{
		{"all", 4, []int{0, 1, 2, 3}},
		{"last:2", 6, []int{4, 5}},
		{"3", 6, []int{3, 4, 5}},
		{"0,-1", 6, []int{0, 5}},
		{"-2", 6, []int{4}},
		{"-3,-2,-1", 3, []int{0, 1, 2}},
	}
	for _, c := range cases {
		sel, err := ParseLayerSelect(c.in)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		got, err := sel.Resolve(c.n)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%q on %d layers: got %v, want %v", c.in, c.n, got, c.want)
		}
		back, err := ParseLayerSelect(sel.String())
		if err != nil {
			t.Fatalf("round trip of %q: %v", c.in, err)
		}
		if again, _ := back.Resolve(c.n); !slices.Equal(again, got) {
			t.Errorf("round trip of %q changed the selection", c.in)
		}
	}
	for _, bad := range []struct {
		in string
		n  int
	}{{"", 3}, {"last:0", 3}, {"last:4", 3}, {"0,x", 3}, {"5", 3}, {"-4", 3}, {"1,1", 3}, {"0", 3}} {
		sel, err := ParseLayerSelect(bad.in)
		if err == nil {
			_, err = sel.Resolve(bad.n)
		}
		if err == nil {
			t.Errorf("%q on %d layers: want an error", bad.in, bad.n)
		}
	}
}
