package distill

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// host is a dense float64 array on the host, row-major, the layout of the naive references.
type host struct {
	dims []int
	data []float64
}

func newHost(dims ...int) host {
	n := 1
	for _, d := range dims {
		n *= d
	}
	return host{dims: append([]int(nil), dims...), data: make([]float64, n)}
}

func randHost(r *rand.Rand, dims ...int) host {
	h := newHost(dims...)
	for i := range h.data {
		h.data[i] = r.NormFloat64()
	}
	return h
}

func (h host) clone() host {
	return host{dims: append([]int(nil), h.dims...), data: append([]float64(nil), h.data...)}
}

// at4 indexes a rank-4 array.
func (h host) at4(a, b, c, d int) float64 {
	return h.data[((a*h.dims[1]+b)*h.dims[2]+c)*h.dims[3]+d]
}

// tensor converts to a GoMLX tensor of the given float dtype.
func (h host) tensor(dt dtypes.DType) *tensors.Tensor {
	if dt == dtypes.Float32 {
		f := make([]float32, len(h.data))
		for i, v := range h.data {
			f[i] = float32(v)
		}
		return tensors.FromFlatDataAndDimensions(f, h.dims...)
	}
	return tensors.FromFlatDataAndDimensions(append([]float64(nil), h.data...), h.dims...)
}

// permuteBatch reorders axis 0 by perm: out[i] = h[perm[i]].
func (h host) permuteBatch(perm []int) host {
	out := newHost(h.dims...)
	row := len(h.data) / h.dims[0]
	for i, p := range perm {
		copy(out.data[i*row:(i+1)*row], h.data[p*row:(p+1)*row])
	}
	return out
}

// floats reads any float tensor as float64s.
func floats(t *tensors.Tensor) []float64 {
	switch t.DType() {
	case dtypes.Float32:
		f := tensors.MustCopyFlatData[float32](t)
		out := make([]float64, len(f))
		for i, v := range f {
			out[i] = float64(v)
		}
		return out
	case dtypes.Float64:
		return tensors.MustCopyFlatData[float64](t)
	}
	panic("floats: unsupported dtype " + t.DType().String())
}

func anys(ts []*tensors.Tensor) []any {
	out := make([]any, len(ts))
	for i, t := range ts {
		out[i] = t
	}
	return out
}

func toTensors(dt dtypes.DType, hs []host) []*tensors.Tensor {
	out := make([]*tensors.Tensor, len(hs))
	for i, h := range hs {
		out[i] = h.tensor(dt)
	}
	return out
}

// evalScalar builds fn over the inputs (as dt) and returns its scalar value.
func evalScalar(t *testing.T, dt dtypes.DType, fn func(xs []*graph.Node) *graph.Node, ins ...host) float64 {
	t.Helper()
	e := graph.MustNewExec(testutil.Backend(), fn)
	out := e.MustExec(anys(toTensors(dt, ins))...)
	v := floats(out[0])
	if len(v) != 1 {
		t.Fatalf("evalScalar: output has %d values, want a scalar", len(v))
	}
	return v[0]
}

// closeTo reports |got − want| ≤ tol·max(1, |want|).
func closeTo(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Max(1, math.Abs(want))
}

func assertClose(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if !closeTo(got, want, tol) || math.IsNaN(got) {
		t.Errorf("%s = %.12g, want %.12g (tol %g)", what, got, want, tol)
	}
}

// checkGradient compares graph.Gradient of fn with respect to input wrt against central finite
// differences, in float64.
func checkGradient(t *testing.T, what string, fn func(xs []*graph.Node) *graph.Node, ins []host, wrt int, tol float64) {
	t.Helper()
	e := graph.MustNewExec(testutil.Backend(), func(xs []*graph.Node) (*graph.Node, *graph.Node) {
		l := fn(xs)
		return l, graph.Gradient(l, xs[wrt])[0]
	})
	out := e.MustExec(anys(toTensors(dtypes.Float64, ins))...)
	analytic := floats(out[1])
	loss := func(p host) float64 {
		args := append([]host(nil), ins...)
		args[wrt] = p
		return floats(e.MustExec(anys(toTensors(dtypes.Float64, args))...)[0])[0]
	}
	const h = 1e-6
	nonzero := false
	for j := range ins[wrt].data {
		plus, minus := ins[wrt].clone(), ins[wrt].clone()
		plus.data[j] += h
		minus.data[j] -= h
		numeric := (loss(plus) - loss(minus)) / (2 * h)
		if !closeTo(analytic[j], numeric, tol) || math.IsNaN(analytic[j]) {
			t.Errorf("%s: d/dx[%d]: analytic %.10g, numeric %.10g", what, j, analytic[j], numeric)
		}
		if math.Abs(numeric) > 1e-6 {
			nonzero = true
		}
	}
	if !nonzero {
		t.Errorf("%s: every numeric derivative is ~0: the check cannot fail", what)
	}
}

// Naive float64 references shared by the tests.

// refAdaptivePool is PyTorch's adaptive_avg_pool2d on a [B, H, W, C] array.
func refAdaptivePool(x host, oh, ow int) host {
	b, h, w, c := x.dims[0], x.dims[1], x.dims[2], x.dims[3]
	out := newHost(b, oh, ow, c)
	for n := 0; n < b; n++ {
		for i := 0; i < oh; i++ {
			h0, h1 := i*h/oh, int(math.Ceil(float64((i+1)*h)/float64(oh)))
			for j := 0; j < ow; j++ {
				w0, w1 := j*w/ow, int(math.Ceil(float64((j+1)*w)/float64(ow)))
				for ch := 0; ch < c; ch++ {
					s := 0.0
					for y := h0; y < h1; y++ {
						for z := w0; z < w1; z++ {
							s += x.at4(n, y, z, ch)
						}
					}
					out.data[((n*oh+i)*ow+j)*c+ch] = s / float64((h1-h0)*(w1-w0))
				}
			}
		}
	}
	return out
}

// refMatch pools the larger map to the smaller one's size.
func refMatch(s, t host) (host, host) {
	switch {
	case s.dims[1] > t.dims[1]:
		s = refAdaptivePool(s, t.dims[1], t.dims[2])
	case s.dims[1] < t.dims[1]:
		t = refAdaptivePool(t, s.dims[1], s.dims[2])
	}
	return s, t
}

// hostRows splits a [B, ...] array into B flattened rows.
func hostRows(x host) [][]float64 {
	b := x.dims[0]
	n := len(x.data) / b
	out := make([][]float64, b)
	for i := range out {
		out[i] = x.data[i*n : (i+1)*n]
	}
	return out
}

func vdot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// refNormalize is F.normalize (ε = 1e−12) of a vector.
func refNormalize(v []float64) []float64 {
	n := math.Max(math.Sqrt(vdot(v, v)), 1e-12)
	out := make([]float64, len(v))
	for i := range v {
		out[i] = v[i] / n
	}
	return out
}

func testRand() *rand.Rand { return rand.New(rand.NewPCG(7, 11)) }

// shapesOfHosts returns the float32 shapes of host arrays (for FeatureShapes).
func shapesOfHosts(hs ...host) []shapes.Shape {
	out := make([]shapes.Shape, len(hs))
	for i, h := range hs {
		out[i] = shapes.Make(dtypes.Float32, h.dims...)
	}
	return out
}

// trainableParams counts the trainable parameters of ctx's variables under scope.
func trainableParams(ctx *context.Context, scope string) int {
	n := 0
	for v := range ctx.IterVariables() {
		if v.Trainable && (scope == "/" || v.Scope() == scope || strings.HasPrefix(v.Scope(), scope+"/")) {
			n += v.Shape().Size()
		}
	}
	return n
}
