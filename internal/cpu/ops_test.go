package cpu

import (
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestElementwiseVsSimpleGo compares unary, binary and comparison ops with simplego, on odd shapes
// and with scalar and size-1 broadcasting.
func TestElementwiseVsSimpleGo(t *testing.T) {
	rng := newRng(1)
	for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
		x := randTensor(rng, dt, 3, 5, 7)
		y := randTensor(rng, dt, 3, 5, 7)
		row := randTensor(rng, dt, 1, 5, 1)
		s := randTensor(rng, dt)
		unary := map[string]func(*graph.Node) *graph.Node{
			"Abs": graph.Abs, "Neg": graph.Neg, "Sign": graph.Sign, "Exp": graph.Exp, "Expm1": graph.Expm1,
			"Log1p": graph.Log1p, "Logistic": graph.Logistic, "Tanh": graph.Tanh, "Erf": graph.Erf, "Cos": graph.Cos,
			"Sin": graph.Sin, "Floor": graph.Floor, "Ceil": graph.Ceil, "Round": graph.Round,
			"Log":   func(x *graph.Node) *graph.Node { return graph.Log(graph.Abs(x)) },
			"Sqrt":  func(x *graph.Node) *graph.Node { return graph.Sqrt(graph.Abs(x)) },
			"Rsqrt": func(x *graph.Node) *graph.Node { return graph.Rsqrt(graph.AddScalar(graph.Abs(x), 0.1)) },
		}
		for name, fn := range unary {
			t.Run(dt.String()+"/"+name, func(t *testing.T) {
				compareBackends(t, 1e-6, func(xs []*graph.Node) []*graph.Node { return []*graph.Node{fn(xs[0])} }, x)
			})
		}
		binary := map[string]func(a, b *graph.Node) *graph.Node{
			"Add": graph.Add, "Sub": graph.Sub, "Mul": graph.Mul, "Div": graph.Div, "Max": graph.Max, "Min": graph.Min,
			"Rem": graph.Rem,
			"Pow": func(a, b *graph.Node) *graph.Node { return graph.Pow(graph.Abs(a), b) },
			"LessThan": func(a, b *graph.Node) *graph.Node {
				return graph.ConvertDType(graph.LessThan(a, b), dt)
			},
			"GreaterOrEqual": func(a, b *graph.Node) *graph.Node {
				return graph.ConvertDType(graph.GreaterOrEqual(a, b), dt)
			},
			"GreaterThan": func(a, b *graph.Node) *graph.Node {
				return graph.ConvertDType(graph.GreaterThan(a, b), dt)
			},
			"LessOrEqual": func(a, b *graph.Node) *graph.Node {
				return graph.ConvertDType(graph.LessOrEqual(a, b), dt)
			},
			"Equal": func(a, b *graph.Node) *graph.Node {
				return graph.ConvertDType(graph.Equal(a, graph.Round(b)), dt)
			},
		}
		for name, fn := range binary {
			t.Run(dt.String()+"/"+name, func(t *testing.T) {
				compareBackends(t, 1e-6, func(xs []*graph.Node) []*graph.Node {
					return []*graph.Node{fn(xs[0], xs[1]), fn(xs[0], xs[2]), fn(xs[2], xs[0]), fn(xs[3], xs[0]),
						fn(xs[0], xs[3])}
				}, x, y, row, s)
			})
		}
	}
}

// TestWhereClampAndFoldedBroadcasts covers Where's operand layouts (full, scalar, broadcast
// scalars the executor folds), comparisons and Clamp against a broadcast scalar, on tensors large
// enough to be split over goroutines, and binary ops whose operand is a broadcast of a [1, D]
// row.
func TestWhereClampAndFoldedBroadcasts(t *testing.T) {
	rng := newRng(2)
	x := randTensor(rng, dtypes.Float32, 70, 1000)
	y := randTensor(rng, dtypes.Float32, 70, 1000)
	row := randTensor(rng, dtypes.Float32, 1, 1000)
	compareBackends(t, 0, func(xs []*graph.Node) []*graph.Node {
		g := xs[0].Graph()
		zeros := graph.ZerosLike(xs[0]) // a BroadcastInDim of a scalar
		c := graph.GreaterOrEqual(xs[0], zeros)
		half := graph.BroadcastToDims(graph.Const(g, float32(0.5)), 70, 1000)
		rows := graph.BroadcastToDims(xs[2], 70, 1000)
		return []*graph.Node{
			graph.Where(c, xs[1], graph.ScalarZero(g, dtypes.Float32)),
			graph.Where(c, graph.ScalarZero(g, dtypes.Float32), xs[1]),
			graph.Where(c, xs[0], xs[1]),
			graph.Where(c, half, xs[1]),
			graph.Where(graph.Const(g, true), xs[0], half),
			graph.ConvertDType(graph.LessThan(zeros, xs[1]), dtypes.Float32),
			graph.Clamp(graph.Neg(half), xs[0], half),
			graph.Mul(xs[0], rows),
			graph.Sub(rows, xs[1]),
			graph.Max(xs[0], zeros),
		}
	}, x, y, row)
}

func TestIntegerAndBoolOps(t *testing.T) {
	rng := newRng(2)
	a := randTensor(rng, dtypes.Int32, 4, 6)
	b := randTensor(rng, dtypes.Int32, 4, 6)
	compareBackends(t, 0, func(xs []*graph.Node) []*graph.Node {
		x, y := xs[0], xs[1]
		nz := graph.Add(graph.Abs(y), graph.ScalarOne(y.Graph(), y.DType()))
		m := graph.LessThan(x, y)
		return []*graph.Node{graph.Add(x, y), graph.Mul(x, y), graph.Div(x, nz), graph.Rem(x, nz), graph.Max(x, y),
			graph.Neg(x), graph.Abs(x), graph.Sign(x),
			graph.ConvertDType(graph.LogicalAnd(m, graph.GreaterThan(x, graph.ScalarZero(x.Graph(), x.DType()))), dtypes.Int32),
			graph.ConvertDType(graph.LogicalNot(m), dtypes.Int32),
			graph.BitwiseAnd(x, y), graph.BitwiseXor(x, y),
			graph.ReduceSum(x, 1), graph.ReduceMax(x, 0), graph.ArgMax(x, 1), graph.ArgMin(x, 0),
			graph.ConvertDType(x, dtypes.Float32), graph.ConvertDType(graph.ConvertDType(x, dtypes.Uint8), dtypes.Int32)}
	}, a, b)
}

func TestLayoutOpsVsSimpleGo(t *testing.T) {
	rng := newRng(3)
	x := randTensor(rng, dtypes.Float32, 2, 3, 5, 4)
	y := randTensor(rng, dtypes.Float32, 2, 3, 1, 4)
	v := randTensor(rng, dtypes.Float32, 3)
	compareBackends(t, 1e-6, func(xs []*graph.Node) []*graph.Node {
		x, y, v := xs[0], xs[1], xs[2]
		g := x.Graph()
		return []*graph.Node{
			graph.TransposeAllAxes(x, 3, 1, 0, 2),
			graph.TransposeAllAxes(x, 0, 1, 3, 2),
			graph.Reshape(x, 6, 20),
			graph.BroadcastToDims(y, 2, 3, 5, 4),
			graph.ExpandAndBroadcast(v, []int{2, 3, 4}, []int{0, 2}),
			graph.Slice(x, graph.AxisRange(1, 2), graph.AxisRange(), graph.AxisRange(1, 5).Stride(2), graph.AxisRange(3)),
			graph.Concatenate([]*graph.Node{x, y, x}, 2),
			graph.Concatenate([]*graph.Node{x, x}, 3),
			graph.Iota(g, shapes.Make(dtypes.Float32, 3, 4), 1),
			graph.Iota(g, shapes.Make(dtypes.Float32, 3, 4), 0),
			graph.Where(graph.GreaterThan(x, graph.ScalarZero(g, dtypes.Float32)), x, graph.Neg(x)),
			graph.Where(graph.GreaterThan(x, graph.ScalarZero(g, dtypes.Float32)), x, graph.ScalarZero(g, dtypes.Float32)),
			graph.ReduceSum(x, 0, 2), graph.ReduceSum(x, 1, 3), graph.ReduceMax(x, 3), graph.ReduceMin(x, 0, 1, 2, 3),
			graph.ReduceMultiply(x, 2), graph.ReduceAllSum(x),
			graph.ArgMax(x, 2), graph.ArgMin(x, 0),
			graph.OneHot(graph.Const(g, []int32{0, 2, 1, 2}), 3, dtypes.Float32),
			graph.Clip(x, graph.Const(g, float32(-0.5)), graph.Const(g, float32(0.25))),
		}
	}, x, y, v)
}

// TestPadAndReverse checks Pad (start/end, interior, negative) and Reverse against direct loops.
func TestPadAndReverse(t *testing.T) {
	rng := newRng(4)
	x := randTensor(rng, dtypes.Float64, 3, 4, 5)
	xf := tensorFloats(t, x)
	cfgs := [][]backends.PadAxis{
		{{Start: 1, End: 2}, {Start: 0, End: 0, Interior: 1}, {Start: 2, End: 1, Interior: 2}},
		{{Start: -1, End: 1}, {Start: -2, End: -1, Interior: 1}, {Start: 0, End: -3, Interior: 0}},
		{{Start: 0, End: 0}, {Start: 3, End: -2, Interior: 2}, {Start: -4, End: 2, Interior: 1}},
	}
	for ci, cfg := range cfgs {
		got, ss := runGraph(t, testCPU(), func(xs []*graph.Node) []*graph.Node {
			return []*graph.Node{graph.Pad(xs[0], graph.Const(xs[0].Graph(), 7.0), cfg...)}
		}, x)
		// Reference: place each element at its padded position.
		dims := ss[0].Dimensions
		want := make([]float64, ss[0].Size())
		for i := range want {
			want[i] = 7
		}
		for i := 0; i < 3; i++ {
			for j := 0; j < 4; j++ {
				for k := 0; k < 5; k++ {
					p := []int{cfg[0].Start + i*(cfg[0].Interior+1), cfg[1].Start + j*(cfg[1].Interior+1),
						cfg[2].Start + k*(cfg[2].Interior+1)}
					if p[0] < 0 || p[1] < 0 || p[2] < 0 || p[0] >= dims[0] || p[1] >= dims[1] || p[2] >= dims[2] {
						continue
					}
					want[(p[0]*dims[1]+p[1])*dims[2]+p[2]] = xf[(i*4+j)*5+k]
				}
			}
		}
		assertClose(t, got[0], want, 0, "pad config %d", ci)
	}
	got, _ := runGraph(t, testCPU(), func(xs []*graph.Node) []*graph.Node {
		return []*graph.Node{graph.Reverse(xs[0], 0, 2)}
	}, x)
	want := make([]float64, len(xf))
	for i := 0; i < 3; i++ {
		for j := 0; j < 4; j++ {
			for k := 0; k < 5; k++ {
				want[(i*4+j)*5+k] = xf[((2-i)*4+j)*5+(4-k)]
			}
		}
	}
	assertClose(t, got[0], want, 0, "reverse")
}

func TestGatherScatterVsSimpleGo(t *testing.T) {
	rng := newRng(5)
	table := randTensor(rng, dtypes.Float32, 7, 4)
	idx := tensors.FromValue([][]int32{{3}, {0}, {6}, {3}, {5}})
	compareBackends(t, 1e-6, func(xs []*graph.Node) []*graph.Node {
		tbl, ix := xs[0], xs[1]
		gathered := graph.Gather(tbl, ix)
		loss := graph.ReduceAllSum(graph.Mul(gathered, gathered))
		grad := graph.Gradient(loss, tbl)[0]
		return []*graph.Node{gathered, grad,
			graph.ScatterSum(graph.ZerosLike(tbl), ix, gathered, false, false),
			graph.ScatterMax(graph.ZerosLike(tbl), ix, gathered, false, false),
			graph.ScatterMin(graph.ZerosLike(tbl), ix, gathered, false, false)}
	}, table, idx)
}

func TestRNG(t *testing.T) {
	fn := func(g *graph.Graph) []*graph.Node {
		state := graph.Const(g, []uint64{1, 2, 3})
		s1, u := graph.RandomUniform(state, shapes.Make(dtypes.Float32, 1000, 10))
		_, n := graph.RandomNormal(s1, shapes.Make(dtypes.Float64, 1000, 10))
		return []*graph.Node{graph.ReduceAllMean(u), graph.ReduceAllMin(u), graph.ReduceAllMax(u),
			graph.ReduceAllMean(n), graph.ReduceAllMean(graph.Square(n)), s1}
	}
	exec, err := graph.NewExec(testCPU(), fn)
	if err != nil {
		t.Fatal(err)
	}
	out1, err := exec.Exec()
	if err != nil {
		t.Fatal(err)
	}
	out2, err := exec.Exec()
	if err != nil {
		t.Fatal(err)
	}
	mean, lo, hi := out1[0].Value().(float32), out1[1].Value().(float32), out1[2].Value().(float32)
	if mean < 0.49 || mean > 0.51 || lo < 0 || hi >= 1 {
		t.Errorf("uniform: mean %v min %v max %v", mean, lo, hi)
	}
	nm, n2 := out1[3].Value().(float64), out1[4].Value().(float64)
	if nm < -0.03 || nm > 0.03 || n2 < 0.97 || n2 > 1.03 {
		t.Errorf("normal: mean %v, E[x²] %v", nm, n2)
	}
	if out1[0].Value().(float32) != out2[0].Value().(float32) {
		t.Errorf("not deterministic")
	}
	if st := out1[5].Value().([]uint64); st[0] != 1 || st[1] == 2 {
		t.Errorf("state not advanced: %v", st)
	}
}

func TestShiftsAndDynamicSlices(t *testing.T) {
	x := tensors.FromValue([]int32{-8, -1, 1, 5, 1 << 30})
	got, _ := runGraph(t, testCPU(), func(xs []*graph.Node) []*graph.Node {
		g := xs[0].Graph()
		two := graph.Const(g, []int32{2, 2, 2, 2, 2})
		return []*graph.Node{graph.BitwiseShiftLeft(xs[0], two), graph.BitwiseShiftRightArithmetic(xs[0], two),
			graph.BitwiseShiftRightLogical(xs[0], two)}
	}, x)
	assertClose(t, got[0], []float64{-32, -4, 4, 20, 0}, 0, "shift left")
	assertClose(t, got[1], []float64{-2, -1, 0, 1, 1 << 28}, 0, "shift right arithmetic")
	assertClose(t, got[2], []float64{float64(uint32(0xfffffff8) >> 2), float64(uint32(0xffffffff) >> 2), 0, 1, 1 << 28}, 0,
		"shift right logical")

	m := tensors.FromValue([][]float32{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}})
	got, _ = runGraph(t, testCPU(), func(xs []*graph.Node) []*graph.Node {
		g := xs[0].Graph()
		i := func(v int32) *graph.Node { return graph.Const(g, v) }
		upd := graph.Const(g, [][]float32{{-1, -2}, {-3, -4}})
		return []*graph.Node{
			graph.DynamicSlice(xs[0], []*graph.Node{i(1), i(1)}, []int{2, 2}),
			graph.DynamicSlice(xs[0], []*graph.Node{i(5), i(-3)}, []int{2, 3}), // clamped to (1, 0)
			graph.DynamicUpdateSlice(xs[0], upd, []*graph.Node{i(0), i(3)}),    // clamped to (0, 2)
		}
	}, m)
	assertClose(t, got[0], []float64{5, 6, 9, 10}, 0, "dynamic slice")
	assertClose(t, got[1], []float64{4, 5, 6, 8, 9, 10}, 0, "dynamic slice clamped")
	assertClose(t, got[2], []float64{0, 1, -1, -2, 4, 5, -3, -4, 8, 9, 10, 11}, 0, "dynamic update slice")
}

// TestSumLeadingAxes checks sums over all but the last axis (the batch-norm statistics path),
// split over goroutines or not, with row counts that are not multiples of the unrolling.
func TestSumLeadingAxes(t *testing.T) {
	rng := newRng(3)
	for _, dims := range [][]int{{70, 3, 5, 64}, {3, 5, 7}, {1, 9}, {4097, 33}} {
		for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
			x := randTensor(rng, dt, dims...)
			axes := make([]int, len(dims)-1)
			for i := range axes {
				axes[i] = i
			}
			got, _ := runGraph(t, testCPU(), func(xs []*graph.Node) []*graph.Node {
				return []*graph.Node{graph.ReduceSum(xs[0], axes...)}
			}, x)
			xf := tensorFloats(t, x)
			c := dims[len(dims)-1]
			want := make([]float64, c)
			for i, v := range xf {
				want[i%c] += v
			}
			tol := 1e-12
			if dt == dtypes.Float32 {
				tol = 1e-6
			}
			assertClose(t, got[0], want, tol, "%v %s", dims, dt)
		}
	}
}

// TestTransposeSmallAxis: transposes that swap a small axis with the channels (ShuffleNet's
// channel shuffle, [.., g, C] ↔ [.., C, g], g = 2 or 3) against the index definition.
func TestTransposeSmallAxis(t *testing.T) {
	for _, dims := range [][]int{{5, 3, 2, 7}, {4, 6, 3, 5}, {3, 4, 7, 2}, {2, 64, 2, 58}} {
		x := randTensor(newRng(51), dtypes.Float32, dims...)
		xf := tensorFloats(t, x)
		got, _ := runGraph(t, testCPU(), func(xs []*graph.Node) []*graph.Node {
			return []*graph.Node{graph.TransposeAllAxes(xs[0], 0, 1, 3, 2)}
		}, x)
		a, b, c, d := dims[0], dims[1], dims[2], dims[3]
		for i := range a {
			for j := range b {
				for k := range c {
					for l := range d {
						want := xf[((i*b+j)*c+k)*d+l]
						if g := got[0][((i*b+j)*d+l)*c+k]; g != want {
							t.Fatalf("%v: out[%d %d %d %d] = %v, want %v", dims, i, j, l, k, g, want)
						}
					}
				}
			}
		}
	}
}
