package cpu

import (
	"fmt"
	"math"
	"slices"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/shapeinference"
)

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

// windowGeom maps output positions of a window op to the input positions of their windows. When the
// innermost axis is untouched by the window (size 1, stride 1, no padding or dilation) it is
// handled as a vector of length vec, so the kernels run contiguous loops over it.
type windowGeom struct {
	outDims []int // output dims without the vector axis
	vec     int
	// table[a][o*window[a]+w] is the input index on axis a of window position w for output index o,
	// or -1 when it falls on padding or between dilated elements.
	table  [][]int
	window []int
	inStr  []int // input strides (in elements, including vec)
	wSize  int
}

func newWindowGeom(inDims, outDims []int, p windowParams) windowGeom {
	r := len(inDims)
	last := r - 1
	g := windowGeom{vec: 1}
	rr := r
	if r > 0 && p.window[last] == 1 && p.strides[last] == 1 && p.paddings[last] == [2]int{} &&
		p.baseDilations[last] == 1 && p.windowDilations[last] == 1 {
		g.vec = inDims[last]
		rr = r - 1
	}
	g.outDims = outDims[:rr]
	g.window = p.window[:rr]
	g.inStr = stridesOf(inDims)[:rr]
	g.table = make([][]int, rr)
	g.wSize = 1
	for a := 0; a < rr; a++ {
		w := p.window[a]
		g.wSize *= w
		t := make([]int, outDims[a]*w)
		for o := 0; o < outDims[a]; o++ {
			for k := 0; k < w; k++ {
				pos := o*p.strides[a] + k*p.windowDilations[a] - p.paddings[a][0]
				idx := -1
				if pos >= 0 && pos%p.baseDilations[a] == 0 && pos/p.baseDilations[a] < inDims[a] {
					idx = pos / p.baseDilations[a]
				}
				t[o*w+k] = idx
			}
		}
		g.table[a] = t
	}
	return g
}

func (g windowGeom) numOut() int {
	n := 1
	for _, d := range g.outDims {
		n *= d
	}
	return n
}

// forEach calls fn for output positions [o0, o1) (flat, without the vector axis) with the flat
// input offsets of the valid window positions, in window order (row-major over the window).
func (g windowGeom) forEach(o0, o1 int, fn func(o int, inOffs []int)) {
	r := len(g.outDims)
	oIdx := make([]int, r)
	unravelInto(oIdx, o0, g.outDims)
	offs := make([]int, 0, g.wSize)
	wIdx := make([]int, r)
	for o := o0; o < o1; o++ {
		offs = offs[:0]
		for a := range wIdx {
			wIdx[a] = 0
		}
	loop:
		for {
			off, ok := 0, true
			for a := 0; a < r; a++ {
				i := g.table[a][oIdx[a]*g.window[a]+wIdx[a]]
				if i < 0 {
					ok = false
					break
				}
				off += i * g.inStr[a]
			}
			if ok {
				offs = append(offs, off)
			}
			for a := r - 1; a >= 0; a-- {
				wIdx[a]++
				if wIdx[a] < g.window[a] {
					continue loop
				}
				wIdx[a] = 0
			}
			break
		}
		fn(o, offs)
		for a := r - 1; a >= 0; a-- {
			oIdx[a]++
			if oIdx[a] < g.outDims[a] {
				break
			}
			oIdx[a] = 0
		}
	}
}

func execReduceWindow(ex *execState, n *node, ins []*value, _ []bool) (*Buffer, error) {
	p := n.params.(windowParams)
	g := newWindowGeom(ins[0].buf.shape.Dimensions, n.shape.Dimensions, p)
	out := ex.b.newBuffer(n.shape)
	var err error
	switch x := ins[0].buf.flat.(type) {
	case []float32:
		err = reduceWindowTyped(p.reduce, g, out.flat.([]float32), x, float32(math.Inf(-1)), float32(math.Inf(1)))
	case []float64:
		err = reduceWindowTyped(p.reduce, g, out.flat.([]float64), x, math.Inf(-1), math.Inf(1))
	case []int32:
		err = reduceWindowTyped(p.reduce, g, out.flat.([]int32), x, math.MinInt32, math.MaxInt32)
	case []int64:
		err = reduceWindowTyped(p.reduce, g, out.flat.([]int64), x, math.MinInt64, math.MaxInt64)
	default:
		err = fmt.Errorf("ReduceWindow of %s not supported", ins[0].buf.shape)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func reduceWindowTyped[T numT](op backends.ReduceOpType, g windowGeom, out, in []T, lowest, highest T) error {
	var init T
	switch op {
	case backends.ReduceOpSum:
		init = 0
	case backends.ReduceOpProduct:
		init = 1
	case backends.ReduceOpMax:
		init = lowest
	case backends.ReduceOpMin:
		init = highest
	default:
		return fmt.Errorf("reduction %s not supported", op)
	}
	L := g.vec
	nOut := g.numOut()
	parallelFor(nOut, max(1, 4096/max(L*g.wSize, 1)), func(s, e int) {
		g.forEach(s, e, func(o int, offs []int) {
			acc := out[o*L : (o+1)*L]
			for j := range acc {
				acc[j] = init
			}
			for _, off := range offs {
				x := in[off : off+L]
				switch op {
				case backends.ReduceOpSum:
					for j, v := range x {
						acc[j] += v
					}
				case backends.ReduceOpProduct:
					for j, v := range x {
						acc[j] *= v
					}
				case backends.ReduceOpMax:
					for j, v := range x {
						acc[j] = max(acc[j], v)
					}
				default:
					for j, v := range x {
						acc[j] = min(acc[j], v)
					}
				}
			}
		})
	})
	return nil
}

func execSelectAndScatter(ex *execState, n *node, ins []*value, _ []bool) (*Buffer, error) {
	p := n.params.(windowParams)
	g := newWindowGeom(ins[0].buf.shape.Dimensions, ins[1].buf.shape.Dimensions, p)
	out := ex.b.newZeroBuffer(n.shape)
	// Windows overlapping along axis 0 would race: split only over disjoint axis-0 slices.
	disjoint := len(g.outDims) > 0 && p.window[0] == 1 && p.strides[0] == 1 && p.paddings[0] == [2]int{}
	var err error
	switch x := ins[0].buf.flat.(type) {
	case []float32:
		err = selectAndScatterTyped(n.op, g, out.flat.([]float32), x, ins[1].buf.flat.([]float32), disjoint)
	case []float64:
		err = selectAndScatterTyped(n.op, g, out.flat.([]float64), x, ins[1].buf.flat.([]float64), disjoint)
	default:
		err = fmt.Errorf("%s of %s not supported", n.op, ins[0].buf.shape)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func selectAndScatterTyped[T floatT](op backends.OpType, g windowGeom, out, operand, source []T, disjoint bool) error {
	L := g.vec
	nOut := g.numOut()
	run := func(s, e int) {
		best := make([]int, L)
		g.forEach(s, e, func(o int, offs []int) {
			src := source[o*L : (o+1)*L]
			if len(offs) == 0 {
				return
			}
			if op == backends.OpTypeSelectAndScatterSum {
				for _, off := range offs {
					d := out[off : off+L]
					for j, v := range src {
						d[j] += v
					}
				}
				return
			}
			isMax := op == backends.OpTypeSelectAndScatterMax
			for j := range best {
				best[j] = offs[0] + j
			}
			for _, off := range offs[1:] {
				x := operand[off : off+L]
				for j, v := range x {
					b := operand[best[j]]
					if (isMax && v > b) || (!isMax && v < b) {
						best[j] = off + j
					}
				}
			}
			for j, v := range src {
				out[best[j]] += v
			}
		})
	}
	if disjoint && g.outDims[0] > 1 {
		per := nOut / g.outDims[0]
		parallelFor(g.outDims[0], 1, func(s, e int) { run(s*per, e*per) })
	} else {
		run(0, nOut)
	}
	return nil
}
