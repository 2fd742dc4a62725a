package cpu

import (
	"math"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// unravel returns the row-major multi-index of flat position i in dims.
func unravel(i int, dims []int) []int {
	idx := make([]int, len(dims))
	unravelInto(idx, i, dims)
	return idx
}

// ravel is the flat row-major position of idx in dims.
func ravel(idx, dims []int) int {
	p := 0
	for a, d := range dims {
		p = p*d + idx[a]
	}
	return p
}

// splitIndex splits a multi-index into its components on the axes not in window (the batch part)
// and on those in window, each in axis order.
func splitIndex(idx, window []int) (batch, win []int) {
	for a, v := range idx {
		if slices.Contains(window, a) {
			win = append(win, v)
		} else {
			batch = append(batch, v)
		}
	}
	return batch, win
}

// indexVector reads the index vector of batch position batchIdx (every indices axis but vecAxis;
// vecAxis == len(idxDims) is the implicit trailing axis of size 1).
func indexVector(indices []float64, idxDims []int, vecAxis int, batchIdx []int, n int) []int {
	full := slices.Clone(idxDims)
	if vecAxis == len(full) {
		full = append(full, 1)
	}
	out := make([]int, n)
	for k := range n {
		at := slices.Insert(slices.Clone(batchIdx), vecAxis, k)
		out[k] = int(indices[ravel(at, full)])
	}
	return out
}

// naiveGather is XLA's Gather written out per output element, start indices clamped into range.
func naiveGather(operand []float64, opDims []int, indices []float64, idxDims []int, vecAxis int,
	offsetAxes, collapsed, startMap, sliceSizes []int, outDims []int) []float64 {
	out := make([]float64, 0)
	total := 1
	for _, d := range outDims {
		total *= d
	}
	for i := range total {
		batch, offs := splitIndex(unravel(i, outDims), offsetAxes)
		vec := indexVector(indices, idxDims, vecAxis, batch, len(startMap))
		start := make([]int, len(opDims))
		for k, a := range startMap {
			start[a] = min(max(vec[k], 0), opDims[a]-sliceSizes[a])
		}
		full := make([]int, len(opDims))
		o := 0
		for a := range opDims {
			full[a] = start[a]
			if !slices.Contains(collapsed, a) {
				full[a] += offs[o]
				o++
			}
		}
		out = append(out, operand[ravel(full, opDims)])
	}
	return out
}

// naiveScatter is XLA's Scatter written out per update element with ⊕ = combine; a window whose
// start leaves any part of it outside the operand is skipped whole.
func naiveScatter(operand []float64, opDims []int, indices []float64, idxDims []int, vecAxis int,
	updates []float64, updDims []int, windowAxes, inserted, toOperand []int, combine func(a, b float64) float64) []float64 {
	out := slices.Clone(operand)
	winSize := make([]int, len(opDims))
	w := 0
	for a := range opDims {
		winSize[a] = 1
		if !slices.Contains(inserted, a) {
			winSize[a] = updDims[windowAxes[w]]
			w++
		}
	}
	for i, u := range updates {
		batch, win := splitIndex(unravel(i, updDims), windowAxes)
		vec := indexVector(indices, idxDims, vecAxis, batch, len(toOperand))
		full := make([]int, len(opDims))
		inRange := true
		for k, a := range toOperand {
			full[a] = vec[k]
			inRange = inRange && vec[k] >= 0 && vec[k]+winSize[a] <= opDims[a]
		}
		if !inRange {
			continue
		}
		w := 0
		for a := range opDims {
			if !slices.Contains(inserted, a) {
				full[a] += win[w]
				w++
			}
		}
		p := ravel(full, opDims)
		out[p] = combine(out[p], u)
	}
	return out
}

// gatherCase is one Gather configuration; the indices hold out-of-range values to exercise
// clamping.
type gatherCase struct {
	name                                        string
	opDims, idxDims                             []int
	idx                                         []int32
	vecAxis                                     int
	offsetAxes, collapsed, startMap, sliceSizes []int
}

// TestGatherLayouts checks Gather against the naive reference on index-vector axes first, middle,
// last and implicit, several batch axes, 2-D starts, window slices and clamped indices.
func TestGatherLayouts(t *testing.T) {
	cases := []gatherCase{
		// Embedding lookup, implicit trailing index axis, batch [2, 3].
		{"rows_implicit", []int{5, 3}, []int{2, 3}, []int32{4, 0, 2, 9, -3, 1}, 2, []int{2}, []int{0}, []int{0}, []int{1, 3}},
		// Index vector first: indices [2, 4] hold 4 (row, col) starts; 2x2 windows.
		{"vec_first_2d", []int{4, 5}, []int{2, 4}, []int32{0, 3, 2, 7, 1, 0, 4, -1}, 0, []int{1, 2}, nil, []int{0, 1}, []int{2, 2}},
		// Index vector in the middle of [2, 1, 3]; start only along axis 1, window over axis 0.
		{"vec_middle", []int{3, 6, 2}, []int{2, 1, 3}, []int32{0, 5, 2, 3, 1, 4}, 1, []int{1, 2}, []int{1}, []int{1}, []int{2, 1, 2}},
		// Offset axes before the batch axes in the output.
		{"offset_leading", []int{6, 4}, []int{3, 1}, []int32{1, 5, 3}, 1, []int{0}, []int{0}, []int{0}, []int{1, 4}},
		// Single elements (every operand axis collapsed: an empty copy box).
		{"scalars", []int{5}, []int{4}, []int32{4, 0, 8, 2}, 1, nil, []int{0}, []int{0}, []int{1}},
		// A single index vector (no batch axis) taking a 2x3 window.
		{"no_batch", []int{4, 5}, []int{2}, []int32{1, 3}, 0, []int{0, 1}, nil, []int{0, 1}, []int{2, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := newRng(11)
			op := randTensor(rng, dtypes.Float32, c.opDims...)
			idx := tensors.FromFlatDataAndDimensions(c.idx, c.idxDims...)
			fn := func(xs []*graph.Node) []*graph.Node {
				return []*graph.Node{graph.BackendGather(xs[0], xs[1], c.vecAxis, c.offsetAxes, c.collapsed, c.startMap, c.sliceSizes, false)}
			}
			got, shp := runGraph(t, testCPU(), fn, op, idx)
			want := naiveGather(tensorFloats(t, op), c.opDims, tensorFloats(t, idx), c.idxDims, c.vecAxis,
				c.offsetAxes, c.collapsed, c.startMap, c.sliceSizes, shp[0].Dimensions)
			assertClose(t, got[0], want, 0, "gather %s %s", c.name, shp[0])
		})
	}
}

// TestScatterLayouts checks ScatterSum/Max/Min against the naive reference with duplicate
// indices, several batch axes, the index vector first and implicit, and windows partly or wholly
// out of range (skipped).
func TestScatterLayouts(t *testing.T) {
	type scatterCase struct {
		name                            string
		opDims, idxDims, updDims        []int
		idx                             []int32
		vecAxis                         int
		windowAxes, inserted, toOperand []int
	}
	cases := []scatterCase{
		// Row updates, batch [2, 2], implicit index axis, a duplicate and an out-of-range row.
		{"rows_implicit", []int{4, 3}, []int{2, 2}, []int{2, 2, 3}, []int32{1, 3, 1, 7}, 2, []int{2}, []int{0}, []int{0}},
		// Index vector first: 3 (row, col) starts of 2x2 windows; the last leaves the operand.
		{"vec_first_2d", []int{4, 5}, []int{2, 3}, []int{3, 2, 2}, []int32{0, 2, 3, 1, 3, 4}, 0, []int{1, 2}, nil, []int{0, 1}},
		// Window axis before the batch axis in the updates.
		{"window_leading", []int{5, 2}, []int{3, 1}, []int{2, 3}, []int32{4, 0, -1}, 1, []int{0}, []int{0}, []int{0}},
		// Single elements (every operand axis inserted: an empty window box), with duplicates.
		{"scalars", []int{5}, []int{6, 1}, []int{6}, []int32{4, 0, 4, 9, 2, 0}, 1, nil, []int{0}, []int{0}},
	}
	ops := []struct {
		name    string
		build   func(op, idx, upd *graph.Node, c scatterCase) *graph.Node
		combine func(a, b float64) float64
	}{
		{"sum", func(op, idx, upd *graph.Node, c scatterCase) *graph.Node {
			return graph.BackendScatterSum(op, idx, upd, c.vecAxis, c.windowAxes, c.inserted, c.toOperand, false, false)
		}, func(a, b float64) float64 { return a + b }},
		{"max", func(op, idx, upd *graph.Node, c scatterCase) *graph.Node {
			return graph.BackendScatterMax(op, idx, upd, c.vecAxis, c.windowAxes, c.inserted, c.toOperand, false, false)
		}, math.Max},
		{"min", func(op, idx, upd *graph.Node, c scatterCase) *graph.Node {
			return graph.BackendScatterMin(op, idx, upd, c.vecAxis, c.windowAxes, c.inserted, c.toOperand, false, false)
		}, math.Min},
	}
	for _, c := range cases {
		for _, o := range ops {
			t.Run(c.name+"/"+o.name, func(t *testing.T) {
				rng := newRng(13)
				op := randTensor(rng, dtypes.Float32, c.opDims...)
				upd := randTensor(rng, dtypes.Float32, c.updDims...)
				idx := tensors.FromFlatDataAndDimensions(c.idx, c.idxDims...)
				fn := func(xs []*graph.Node) []*graph.Node { return []*graph.Node{o.build(xs[0], xs[1], xs[2], c)} }
				got, _ := runGraph(t, testCPU(), fn, op, idx, upd)
				want := naiveScatter(tensorFloats(t, op), c.opDims, tensorFloats(t, idx), c.idxDims, c.vecAxis,
					tensorFloats(t, upd), c.updDims, c.windowAxes, c.inserted, c.toOperand, o.combine)
				assertClose(t, got[0], want, 1e-6, "scatter %s/%s", c.name, o.name)
			})
		}
	}
}

// TestGatherScatterIntTypes runs an embedding lookup and its ScatterSum on int64 indices over an
// int32 table, the non-float paths of the ops.
func TestGatherScatterIntTypes(t *testing.T) {
	table := tensors.FromValue([][]int32{{1, 2}, {3, 4}, {5, 6}})
	idx := tensors.FromValue([][]int64{{2}, {0}, {2}})
	fn := func(xs []*graph.Node) []*graph.Node {
		g := graph.Gather(xs[0], xs[1])
		return []*graph.Node{g, graph.ScatterSum(graph.ZerosLike(xs[0]), xs[1], g, false, false)}
	}
	got, _ := runGraph(t, testCPU(), fn, table, idx)
	assertClose(t, got[0], []float64{5, 6, 1, 2, 5, 6}, 0, "gather int32")
	assertClose(t, got[1], []float64{1, 2, 0, 0, 10, 12}, 0, "scatter-sum int32")
}

// benchGatherIdx is n row indices spread over rows.
func benchGatherIdx(n, rows int) *tensors.Tensor {
	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32((i * 7919) % rows)
	}
	return tensors.FromFlatDataAndDimensions(idx, n, 1)
}

// BenchmarkGatherRows is an embedding lookup: 8192 rows of 64 float32 from a 1000-row table.
func BenchmarkGatherRows(b *testing.B) {
	table := randTensor(newRng(1), dtypes.Float32, 1000, 64)
	benchExec(b, testCPU(), 8192*64*4, "GB/s", func(xs []*graph.Node) []*graph.Node {
		return []*graph.Node{graph.Gather(xs[0], xs[1])}
	}, table, benchGatherIdx(8192, 1000))
}

// BenchmarkGatherScalars gathers 65536 single elements: the per-index cost dominates.
func BenchmarkGatherScalars(b *testing.B) {
	table := randTensor(newRng(1), dtypes.Float32, 1000)
	benchExec(b, testCPU(), 65536*4, "GB/s", func(xs []*graph.Node) []*graph.Node {
		return []*graph.Node{graph.Gather(xs[0], xs[1])}
	}, table, benchGatherIdx(65536, 1000))
}

// BenchmarkScatterSumRows is the embedding gradient: 8192 rows of 64 summed into a 1000-row table.
func BenchmarkScatterSumRows(b *testing.B) {
	rng := newRng(1)
	table := randTensor(rng, dtypes.Float32, 1000, 64)
	upd := randTensor(rng, dtypes.Float32, 8192, 64)
	benchExec(b, testCPU(), 8192*64*4, "GB/s", func(xs []*graph.Node) []*graph.Node {
		return []*graph.Node{graph.ScatterSum(graph.ZerosLike(xs[0]), xs[1], xs[2], false, false)}
	}, table, benchGatherIdx(8192, 1000), upd)
}
