package cpu

import (
	"math"
	"reflect"

	"github.com/gomlx/gomlx/backends"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/internal/nn"
)

// weightedSum returns Σ y ⊙ w with fixed, distinct weights w, so every output element matters.
func weightedSum(y *graph.Node) *graph.Node {
	g := y.Graph()
	flat := graph.Reshape(y, y.Shape().Size())
	w := graph.Cos(graph.AddScalar(graph.MulScalar(graph.Iota(g, shapes.Make(y.DType(), y.Shape().Size()), 0), 0.7), 0.3))
	return graph.ReduceAllSum(graph.Mul(flat, w))
}

// runner executes a one-input graph function and returns its outputs.
type runner func(x *tensors.Tensor) []*tensors.Tensor

// plainRunner builds a runner on the cpu backend with graph.Exec.
func plainRunner(t *testing.T, fn func(x *graph.Node) []*graph.Node) runner {
	exec, err := graph.NewExec(testCPU(), fn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(exec.Finalize)
	return func(x *tensors.Tensor) []*tensors.Tensor {
		out, err := exec.Exec(x)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// gradCheck compares the gradient of weightedSum(f(x)) computed on the cpu backend with central
// finite differences (float64).
func gradCheck(t *testing.T, f func(x *graph.Node) *graph.Node, x *tensors.Tensor, tol float64) {
	t.Helper()
	gradCheckWith(t, func(fn func(x *graph.Node) []*graph.Node) runner { return plainRunner(t, fn) }, f, x, tol)
}

func gradCheckWith(t *testing.T, mk func(fn func(x *graph.Node) []*graph.Node) runner,
	f func(x *graph.Node) *graph.Node, x *tensors.Tensor, tol float64) {
	t.Helper()
	run := mk(func(x *graph.Node) []*graph.Node {
		loss := weightedSum(f(x))
		return []*graph.Node{loss, graph.Gradient(loss, x)[0]}
	})
	lossOnly := mk(func(x *graph.Node) []*graph.Node { return []*graph.Node{weightedSum(f(x))} })
	base := tensorFloats(t, x)
	grad := tensorFloats(t, run(tensors.FromFlatDataAndDimensions(base, x.Shape().Dimensions...))[1])
	const eps = 1e-6
	eval := func(v []float64) float64 {
		return lossOnly(tensors.FromFlatDataAndDimensions(v, x.Shape().Dimensions...))[0].Value().(float64)
	}
	for i := range base {
		v := append([]float64(nil), base...)
		v[i] = base[i] + eps
		up := eval(v)
		v[i] = base[i] - eps
		down := eval(v)
		fd := (up - down) / (2 * eps)
		if math.Abs(fd-grad[i]) > tol*(1+math.Abs(fd)) {
			t.Fatalf("gradient element %d: autodiff %.9g, finite differences %.9g", i, grad[i], fd)
		}
	}
}

func backendsPad(start, end, interior int) backends.PadAxis {
	return backends.PadAxis{Start: start, End: end, Interior: interior}
}

func TestGradConv(t *testing.T) {
	rng := newRng(10)
	x := randTensor(rng, dtypes.Float64, 2, 6, 5, 3)
	k := randTensor(rng, dtypes.Float64, 3, 3, 3, 4)
	kc, _ := k.LocalClone()
	for _, stride := range []int{1, 2} {
		t.Run("input", func(t *testing.T) {
			gradCheck(t, func(x *graph.Node) *graph.Node {
				return graph.Convolve(x, graph.ConstCachedTensor(x.Graph(), kc)).PadSame().Strides(stride).Done()
			}, x, 1e-6)
		})
		t.Run("kernel", func(t *testing.T) {
			xc, _ := x.LocalClone()
			gradCheck(t, func(k *graph.Node) *graph.Node {
				return graph.Convolve(graph.ConstCachedTensor(k.Graph(), xc), k).NoPadding().Strides(stride).Done()
			}, k, 1e-6)
		})
	}
}

func TestGradPooling(t *testing.T) {
	rng := newRng(11)
	x := randTensor(rng, dtypes.Float64, 2, 6, 7, 3)
	gradCheck(t, func(x *graph.Node) *graph.Node { return graph.MaxPool(x).Window(2).Done() }, x, 1e-6)
	gradCheck(t, func(x *graph.Node) *graph.Node { return graph.MaxPool(x).Window(3).Strides(2).PadSame().Done() }, x, 1e-6)
	gradCheck(t, func(x *graph.Node) *graph.Node { return graph.MeanPool(x).Window(2).Done() }, x, 1e-6)
	gradCheck(t, func(x *graph.Node) *graph.Node { return graph.MeanPool(x).Window(3).Strides(1).Done() }, x, 1e-6)
}

func TestGradSliceConcatPad(t *testing.T) {
	rng := newRng(12)
	x := randTensor(rng, dtypes.Float64, 3, 4, 5)
	gradCheck(t, func(x *graph.Node) *graph.Node {
		a := graph.Slice(x, graph.AxisRange(1, 3), graph.AxisRange(), graph.AxisRange(0, 5).Stride(2))
		b := graph.Slice(x, graph.AxisRange(0, 2), graph.AxisRange(), graph.AxisRange(1, 4))
		return graph.Concatenate([]*graph.Node{a, graph.Tanh(b)}, 2)
	}, x, 1e-6)
	gradCheck(t, func(x *graph.Node) *graph.Node {
		g := x.Graph()
		p := graph.Pad(x, graph.ScalarZero(g, dtypes.Float64), backendsPad(1, -1, 1), backendsPad(-1, 2, 0), backendsPad(0, 0, 2))
		return graph.Reverse(graph.Mul(p, p), 1)
	}, x, 1e-6)
	gradCheck(t, func(x *graph.Node) *graph.Node {
		g := x.Graph()
		return graph.Add(graph.Rsqrt(graph.AddScalar(graph.Square(x), 0.5)), graph.Clamp(graph.Const(g, -0.3), x, graph.Const(g, 0.4)))
	}, x, 1e-6)
}

func TestGradBatchNorm(t *testing.T) {
	rng := newRng(13)
	x := randTensor(rng, dtypes.Float64, 4, 3, 3, 5)
	for _, training := range []bool{true, false} {
		ctx := context.New().Checked(false)
		mk := func(fn func(x *graph.Node) []*graph.Node) runner {
			exec, err := context.NewExec(testCPU(), ctx, func(ctx *context.Context, x *graph.Node) []*graph.Node {
				ctx.SetTraining(x.Graph(), training)
				return fn(x)
			})
			if err != nil {
				t.Fatal(err)
			}
			return func(x *tensors.Tensor) []*tensors.Tensor {
				out, err := exec.Exec(x)
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
		}
		f := func(x *graph.Node) *graph.Node { return nn.BatchNorm(ctx.In("bn"), graph.Mul(x, x)) }
		gradCheckWith(t, mk, f, x, 1e-5)
	}
}

// TestGradConvGeneralForms covers the cases GoMLX v0.26's own gradient gets wrong (even kernels,
// asymmetric padding) and kernel dilation, for both the input and the kernel.
func TestGradConvGeneralForms(t *testing.T) {
	rng := newRng(14)
	cases := []struct {
		kernel  []int
		pads    [][2]int
		stride  int
		dilate  int
		inShape []int
	}{
		{kernel: []int{4, 4, 2, 3}, pads: [][2]int{{2, 1}, {2, 1}}, stride: 1, dilate: 1, inShape: []int{2, 4, 4, 2}},
		{kernel: []int{2, 3, 2, 2}, pads: [][2]int{{0, 1}, {1, 2}}, stride: 3, dilate: 1, inShape: []int{1, 7, 6, 2}},
		{kernel: []int{3, 2, 2, 2}, pads: [][2]int{{1, 0}, {2, 0}}, stride: 1, dilate: 2, inShape: []int{2, 6, 5, 2}},
	}
	for ci, c := range cases {
		x := randTensor(rng, dtypes.Float64, c.inShape...)
		k := randTensor(rng, dtypes.Float64, c.kernel...)
		conv := func(x, k *graph.Node) *graph.Node {
			b := graph.Convolve(x, k).PaddingPerDim(c.pads)
			if c.stride > 1 {
				b = b.Strides(c.stride)
			}
			if c.dilate > 1 {
				b = b.Dilations(c.dilate)
			}
			return b.Done()
		}
		kc, _ := k.LocalClone()
		xc, _ := x.LocalClone()
		t.Logf("case %d", ci)
		gradCheck(t, func(x *graph.Node) *graph.Node { return conv(x, graph.ConstCachedTensor(x.Graph(), kc)) }, x, 1e-6)
		gradCheck(t, func(k *graph.Node) *graph.Node { return conv(graph.ConstCachedTensor(k.Graph(), xc), k) }, k, 1e-6)
	}
}

// TestRegisterGradients checks that the registration, not the import, installs the gradients.
func TestRegisterGradients(t *testing.T) {
	RegisterGradients()
	RegisterGradients() // idempotent
	ptr := func(f graph.VJP) uintptr { return reflect.ValueOf(f).Pointer() }
	if ptr(graph.VJPRegistration[graph.NodeTypeDotGeneral]) != ptr(dotGeneralVJP) {
		t.Error("DotGeneral's gradient is not ifa's")
	}
	for _, op := range []graph.NodeType{graph.NodeTypeRsqrt, graph.NodeTypePad, graph.NodeTypeReverse, graph.NodeTypeRound} {
		if graph.VJPRegistration[op] == nil {
			t.Errorf("no gradient registered for %s", op)
		}
	}
}
