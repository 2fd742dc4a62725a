package distill

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/testutil"
)

func TestRegistryNames(t *testing.T) {
	want := []string{"attention", "correlation", "crd", "hint", "kd", "nst", "pkt", "rkd", "similarity", "vid"}
	for _, n := range want {
		if !slices.Contains(Names(), n) {
			t.Errorf("Names() = %v lacks %q", Names(), n)
		}
		m, err := Get(n)
		if err != nil || m.Name() != n {
			t.Errorf("Get(%q) = %v, %v", n, m, err)
		}
	}
	if _, err := Get("fitnet"); err == nil || !strings.Contains(err.Error(), "hint") {
		t.Errorf("Get(unknown) error = %v, want one listing the known names", err)
	}
	for name, m := range methods {
		if m.Name() != name {
			t.Errorf("registry key %q holds method %q", name, m.Name())
		}
	}
	if !slices.IsSorted(Names()) {
		t.Errorf("Names() not sorted: %v", Names())
	}
	if err := Params().Check(); err != nil {
		t.Errorf("the parameter table: %v", err)
	}
}

func TestDefaultBetas(t *testing.T) {
	want := map[string]float64{"kd": 0, "hint": 100, "attention": 1000, "similarity": 3000, "correlation": 0.02,
		"vid": 1, "rkd": 1, "pkt": 30000, "nst": 50, "crd": 0.8}
	for n, b := range want {
		m, err := Get(n)
		if err != nil {
			t.Fatal(err)
		}
		if DefaultBeta(m) != b {
			t.Errorf("%s: DefaultBeta = %g, want %g (METHODS.md §4.2)", n, DefaultBeta(m), b)
		}
	}
}

// fakeFeatures returns a CNN-like feature set for a 2-image batch: stages f0..f3 (NHWC), pooled
// and logits, widths scaled by w.
func fakeFeatureHosts(w int) []host {
	r := testRand()
	return []host{
		randHost(r, 2, 8, 8, 3), randHost(r, 2, 8, 8, 2*w), randHost(r, 2, 4, 4, 4*w), randHost(r, 2, 2, 2, 8*w),
		randHost(r, 2, 8*w), randHost(r, 2, 5),
	}
}

func featuresOf(xs []*graph.Node) backbone.Features {
	return backbone.Features{Stages: xs[:4], Pooled: xs[4], Logits: xs[5]}
}

// TestEveryMethodBuilds builds every registered method on a 2-image batch in training mode and
// checks: a finite loss, finite gradients for the student features and every trainable head
// variable, no gradient into the teacher, and HeadParams equal to the created trainable variables.
func TestEveryMethodBuilds(t *testing.T) {
	sh, th := fakeFeatureHosts(2), fakeFeatureHosts(3)
	labels := []int{0, 1, 2, 0, 1, 2}
	indices, batchLabels := []int{0, 4}, []int{0, 1}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			m, _ := Get(name)
			th := th
			if m.Check(context.New(), fakeShapes(sh), fakeShapes(th)) != nil {
				// A method that needs the teacher's channel counts to match gets a teacher as wide
				// as the student (its features scaled and shifted, so the loss is not zero).
				th = fakeFeatureHosts(2)
				for i, h := range th {
					c := newHost(h.dims...)
					for k, v := range h.data {
						c.data[k] = 1.5*v + 0.1*float64(k%7)
					}
					th[i] = c
				}
			}
			ctx := context.New()
			ctx.SetParam(ParamCRDNegatives, 3)
			hi, err := NewHostInputs(m, ctx, TrainSet{Labels: labels, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			var extra []*tensors.Tensor
			if hi != nil {
				if extra, err = hi.Make(0, indices, batchLabels); err != nil {
					t.Fatal(err)
				}
				for i, sp := range hi.Specs(2) {
					if !extra[i].Shape().Equal(sp.Shape) {
						t.Fatalf("extra input %s: shape %s, spec %s", sp.Name, extra[i].Shape(), sp.Shape)
					}
				}
			}
			nf := len(sh)
			var nVars int
			e := context.MustNewExec(testutil.Backend(), ctx, func(ctx *context.Context, xs []*graph.Node) []*graph.Node {
				g := xs[0].Graph()
				ctx.SetTraining(g, true)
				s, te := featuresOf(xs[:nf]), featuresOf(xs[nf:2*nf])
				if err := m.Check(ctx, ShapesOf(s), ShapesOf(te)); err != nil {
					panic(err)
				}
				loss := m.Loss(ctx, s, te, Step{Extra: xs[2*nf:], DatasetSize: len(labels)})
				if !loss.Shape().IsScalar() {
					panic("loss is not a scalar: " + loss.Shape().String())
				}
				// Anchor every input so gradients exist even for a zero loss.
				total := loss
				for _, x := range xs[:2*nf] {
					total = graph.Add(total, graph.ReduceAllSum(graph.MulScalar(x, 0)))
				}
				grads := graph.Gradient(total, xs[:2*nf]...)
				varGrads := ctx.BuildTrainableVariablesGradientsGraph(total)
				nVars = len(varGrads)
				return append(append([]*graph.Node{loss}, grads...), varGrads...)
			})
			args := anys(append(toTensors(dtypes.Float32, append(append([]host(nil), sh...), th...)), extra...))
			out := e.MustExec(args...)
			finite := func(what string, v []float64) {
				for _, x := range v {
					if math.IsNaN(x) || math.IsInf(x, 0) {
						t.Fatalf("%s has a non-finite value %g", what, x)
					}
				}
			}
			finite("loss", floats(out[0]))
			// kd has no term; RKD is exactly 0 for B = 2 (both normalised distances are 1 and
			// every non-degenerate angle is 0°).
			if name != "kd" && name != "rkd" && floats(out[0])[0] == 0 {
				t.Errorf("loss is exactly 0 on random features")
			}
			for i := 0; i < nf; i++ {
				finite("student gradient", floats(out[1+i]))
				for _, x := range floats(out[1+nf+i]) {
					if x != 0 {
						t.Fatalf("teacher feature %d receives gradient %g", i, x)
					}
				}
			}
			for _, g := range out[1+2*nf : 1+2*nf+nVars] {
				finite("head gradient", floats(g))
			}
			sf, tf := fakeShapes(sh), fakeShapes(th)
			hp, err := CountHeads(m, ctx, sf, tf)
			if err != nil {
				t.Fatal(err)
			}
			if got := trainableParams(ctx, "/"+name); hp.Params != got {
				t.Errorf("HeadParams = %+v, the method created %d trainable parameters", hp, got)
			}
		})
	}
}

func fakeShapes(hs []host) FeatureShapes {
	s := shapesOfHosts(hs...)
	return FeatureShapes{Stages: s[:4], Pooled: s[4], Logits: s[5]}
}

func TestChecksRejectMismatches(t *testing.T) {
	sf, tf := fakeShapes(fakeFeatureHosts(2)), fakeShapes(fakeFeatureHosts(3))
	noStages := tf
	noStages.Stages = tf.Stages[:1]
	for _, name := range []string{"attention", "nst", "vid", "hint"} {
		m, _ := Get(name)
		if err := m.Check(context.New(), sf, noStages); err == nil {
			t.Errorf("%s accepted a teacher without intermediate stages", name)
		}
	}
	badBatch := tf
	badBatch.Pooled = shapesOfHosts(newHost(3, 24))[0]
	for _, name := range []string{"pkt", "rkd", "correlation", "crd"} {
		m, _ := Get(name)
		if err := m.Check(context.New(), sf, badBatch); err == nil {
			t.Errorf("%s accepted pooled features of different batch sizes", name)
		}
	}
}

// TestTalkParameterCounts checks the head counts against METHODS.md §2.1/§9 for resnet56 →
// resnet20 (channels 16/32/64 at 32/16/8 px, pooled 64): hint (1×1 ConvReg on f2, 32 → 32 with
// BN) 1,120; CC 2·(64·128+128) = 16,640; VID 3C²+C per layer = 16,240; CRD 16,640 counted twice.
func TestTalkParameterCounts(t *testing.T) {
	mk := func() FeatureShapes {
		return FeatureShapes{
			Stages: shapesOfHosts(newHost(1, 32, 32, 16), newHost(1, 32, 32, 16), newHost(1, 16, 16, 32), newHost(1, 8, 8, 64)),
			Pooled: shapesOfHosts(newHost(1, 64))[0],
		}
	}
	want := map[string]int{"hint": 1120, "correlation": 16640, "vid": 16240, "crd": 2 * 16640, "pkt": 0, "kd": 0}
	for name, n := range want {
		m, _ := Get(name)
		s := mk()
		if name == "kd" {
			s.Logits = shapesOfHosts(newHost(1, 100))[0]
		}
		hp, err := CountHeads(m, context.New(), s, s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if hp.Reported() != n {
			t.Errorf("%s: reported head parameters %d, want %d", name, hp.Reported(), n)
		}
	}
}
