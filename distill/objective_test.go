package distill

import (
	"math"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

// naiveCE is the mean softmax cross-entropy of logits against labels, in float64.
func naiveCE(logits [][]float64, labels []int32) float64 {
	var sum float64
	for i, row := range logits {
		mx := slices.Max(row)
		var z float64
		for _, v := range row {
			z += math.Exp(v - mx)
		}
		sum += -(row[labels[i]] - mx - math.Log(z))
	}
	return sum / float64(len(logits))
}

// TestObjectiveWeighsItsTerms checks L = γ·CE + α·KD(T) + β·L_method and its named terms against
// float64 references, for a method with a term (pkt) and for kd (no term of its own).
func TestObjectiveWeighsItsTerms(t *testing.T) {
	r := testRand()
	s, te := randHost(r, 4, 5), randHost(r, 4, 5)
	labels := []int32{0, 3, 4, 1}
	rows := func(h host) [][]float64 {
		out := make([][]float64, h.dims[0])
		for i := range out {
			out[i] = h.data[i*h.dims[1] : (i+1)*h.dims[1]]
		}
		return out
	}
	// Encoders without variables: the "images" are the logits and the pooled features.
	fixed := func(ctx *context.Context, x *graph.Node) backbone.Features {
		return backbone.Features{Logits: x, Pooled: x}
	}
	wantCE, wantKD := naiveCE(rows(s), labels), naiveKD(rows(s), rows(te), 2)
	for _, name := range []string{"pkt", "kd"} {
		m, _ := Get(name)
		obj := NewObjective(m, fixed, fixed)
		obj.Gamma, obj.Alpha, obj.Beta, obj.KDTemperature = 0.7, 1.3, 0.5, 2
		var names []string
		out := context.MustExecOnceN(testutil.Backend(), context.New(), func(ctx *context.Context, xs []*graph.Node) []*graph.Node {
			// The student and the teacher read different images: the teacher's are the second input.
			student := obj.Student
			obj.Teacher = func(ctx *context.Context, _ *graph.Node) backbone.Features { return student(ctx, xs[1]) }
			l := obj.Loss(ctx, fit.Inputs{Images: xs[0], Labels: xs[2]})
			vals := []*graph.Node{l.Total}
			for _, term := range l.Terms {
				names = append(names, term.Name)
				vals = append(vals, term.Value)
			}
			return vals
		}, s.tensor(dtypes.Float64), te.tensor(dtypes.Float64), tensors.FromValue(labels))
		got := make([]float64, len(out))
		for i, o := range out {
			got[i] = floats(o)[0]
		}
		want := []string{"ce", "kd", "pkt", "top1"}
		if name == "kd" {
			want = []string{"ce", "kd", "top1"}
		}
		if !slices.Equal(names, want) {
			t.Fatalf("%s: terms %v, want %v", name, names, want)
		}
		total := 0.7*wantCE + 1.3*wantKD
		if name == "pkt" {
			total += 0.5 * got[3]
		}
		for i, w := range []float64{total, wantCE, wantKD} {
			if math.Abs(got[i]-w) > 1e-12*(1+math.Abs(w)) {
				t.Errorf("%s: value %d (%s) = %.15g, want %.15g", name, i, append([]string{"total"}, names...)[i], got[i], w)
			}
		}
	}
}

func TestObjectiveCheck(t *testing.T) {
	fixed := func(ctx *context.Context, x *graph.Node) backbone.Features {
		return backbone.Features{Logits: x, Pooled: x}
	}
	sh := shapesOfHosts(newHost(2, 5), newHost(2, 7))
	kd, _ := Get("kd")
	obj := NewObjective(kd, fixed, fixed)
	if p, err := obj.Check(context.New(), FeatureShapes{Logits: sh[0]}, FeatureShapes{Logits: sh[0]}); err != nil || p.Label != "kd" {
		t.Errorf("plan %+v, %v", p, err)
	}
	if _, err := obj.Check(context.New(), FeatureShapes{Logits: sh[0]}, FeatureShapes{Logits: sh[1]}); err == nil {
		t.Error("accepted a teacher with other classes")
	}
	obj.KDTemperature = 0
	if _, err := obj.Check(context.New(), FeatureShapes{Logits: sh[0]}, FeatureShapes{Logits: sh[0]}); err == nil {
		t.Error("accepted T = 0")
	}
}
