package nn

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/pkg/core/graph"
)

// SelectIndex returns x[..., i, ...] along axis (that axis removed): a Slice and a Reshape.
func SelectIndex(x *graph.Node, axis, i int) *graph.Node {
	n := x.Shape().Dim(axis)
	if i < 0 || i >= n {
		panic(fmt.Errorf("nn: select index %d of axis %d with %d elements", i, axis, n))
	}
	specs := make([]graph.SliceAxisSpec, axis+1)
	for a := 0; a < axis; a++ {
		specs[a] = graph.AxisRange()
	}
	specs[axis] = graph.AxisElem(i)
	dims := slices.Delete(slices.Clone(x.Shape().Dimensions), axis, axis+1)
	return graph.Reshape(graph.Slice(x, specs...), dims...)
}
