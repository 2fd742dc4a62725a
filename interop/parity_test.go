package interop

// Parity with PyTorch: scripts/torch_golden.py runs PyTorch twins of the models on a fixed batch
// with deterministic weights (detValue below is the script's det_tensor) and stores the outputs in
// testdata/golden. These tests map the same state dict onto ifa's models with Import and compare.

import (
	"fmt"
	"hash/fnv"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/cnn"
	"github.com/ifa-toolkit/ifa/internal/testutil"
	"github.com/ifa-toolkit/ifa/torchio"
	"github.com/ifa-toolkit/ifa/vit"
)

// parityTol is the relative tolerance: |ifa − torch| ≤ parityTol·max|torch| over each tensor.
const parityTol = 1e-5

// detUniform is n values in [-1, 1): splitmix64(FNV-1a(key) + i) >> 11, scaled.
func detUniform(key string, n int) []float64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	seed := h.Sum64()
	out := make([]float64, n)
	for i := range out {
		x := seed + uint64(i) + 0x9e3779b97f4a7c15
		x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
		x = (x ^ x>>27) * 0x94d049bb133111eb
		x ^= x >> 31
		out[i] = float64(x>>11)*math.Pow(2, -53)*2 - 1
	}
	return out
}

// detValue is the deterministic value of a state-dict entry of PyTorch shape shape.
func detValue(key string, shape []int) []float32 {
	n := 1
	for _, d := range shape {
		n *= d
	}
	u := detUniform(key, n)
	leaf := key[strings.LastIndex(key, ".")+1:]
	out := make([]float32, n)
	for i, x := range u {
		var v float64
		switch {
		case leaf == "running_mean":
			v = 0.1 * x
		case leaf == "running_var":
			v = 1 + 0.5*x
		case leaf == "weight" && len(shape) == 1:
			v = 1 + 0.2*x
		case leaf == "bias":
			v = 0.1 * x
		default:
			fanIn := shape[len(shape)-1]
			if len(shape) > 1 && key != "cls_token" && key != "pos_embed" {
				fanIn = n / shape[0]
			}
			v = x * math.Sqrt(3.0/float64(fanIn))
		}
		out[i] = float32(v)
	}
	return out
}

// detState is the deterministic state dict of vars (num_batches_tracked = 3).
func detState(vars []Var) *torchio.StateDict {
	sd := torchio.NewStateDict()
	for _, v := range vars {
		sd.Set(v.Key, torchio.FromFloat32s(v.TorchShape, detValue(v.Key, v.TorchShape)))
		if p, ok := strings.CutSuffix(v.Key, ".running_var"); ok {
			sd.Set(p+".num_batches_tracked", torchio.ScalarInt64(3))
		}
	}
	return sd
}

func loadGolden(t *testing.T, name string) *torchio.StateDict {
	t.Helper()
	f, err := torchio.Load(filepath.Join("testdata", "golden", name))
	if err != nil {
		t.Fatal(err)
	}
	return f.State
}

func goldenTensor(t *testing.T, g *torchio.StateDict, key string) *tensors.Tensor {
	t.Helper()
	gt, ok := g.Tensors[key]
	if !ok {
		t.Fatalf("golden has no %s", key)
	}
	if gt.DType == torchio.I64 {
		v, _ := gt.Int64s()
		return tensors.FromFlatDataAndDimensions(v, gt.Shape...)
	}
	v, err := gt.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return tensors.FromFlatDataAndDimensions(v, gt.Shape...)
}

// compare checks got against the golden tensor key at parityTol.
func compare(t *testing.T, g *torchio.StateDict, key string, got *tensors.Tensor) {
	t.Helper()
	compareTol(t, g, key, got, parityTol)
}

// compareTol checks got against the golden tensor key: |ifa − torch| ≤ tol·max|torch|.
func compareTol(t *testing.T, g *torchio.StateDict, key string, got *tensors.Tensor, tol float64) {
	t.Helper()
	want, err := g.Tensors[key].Float32s()
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	gv := tensors.MustCopyFlatData[float32](got)
	if len(gv) != len(want) {
		t.Fatalf("%s: %d values (shape %s), golden has %d %v", key, len(gv), got.Shape(), len(want), g.Tensors[key].Shape)
	}
	var scale, worst float64
	for _, w := range want {
		scale = max(scale, math.Abs(float64(w)))
	}
	worstAt := 0
	for i := range gv {
		if d := math.Abs(float64(gv[i]) - float64(want[i])); d > worst || math.IsNaN(d) {
			worst, worstAt = d, i
		}
	}
	if !(worst <= tol*scale) {
		t.Errorf("%s: max |ifa − torch| = %.3g at %d (ifa %v, torch %v), %.3g relative to max|torch| %.3g",
			key, worst, worstAt, gv[worstAt], want[worstAt], worst/scale, scale)
	}
}

// parityModel builds the ifa model of a golden file with the deterministic weights.
func parityModel(t *testing.T, name string, classes int, input cnn.MapShape) (Model, []Var, *context.Context) {
	t.Helper()
	m, vars := mustVars(t, name, classes, input)
	imp, err := Import(detState(vars), vars, name)
	if err != nil {
		t.Fatal(err)
	}
	return m, vars, NewContext(imp.Variables, "/")
}

func features(m Model, ctx *context.Context, images *graph.Node) backbone.Features {
	if m.ViT != nil {
		model, err := vit.New(*m.ViT)
		if err != nil {
			panic(err)
		}
		return model.Features(ctx, images)
	}
	return m.CNN.Build(ctx, images, m.Classes)
}

// crossEntropy is the mean softmax cross-entropy of logits [B, K] against labels [B].
func crossEntropy(logits, labels *graph.Node) *graph.Node {
	oneHot := graph.OneHot(labels, logits.Shape().Dim(1), logits.DType())
	return graph.Neg(graph.ReduceAllMean(graph.ReduceSum(graph.Mul(graph.LogSoftmax(logits, -1), oneHot), -1)))
}

// TestParityWithPyTorch: logits, pooled features and every feature tap in evaluation and training
// mode, the training-mode cross-entropy, its gradients for the input and some parameters, and the
// BatchNorm running statistics after the training-mode pass.
//
// A golden file without train.* entries (resnet50's: its training-mode pass is too ill-conditioned
// for float32, see EVAL_ONLY in the script) is compared in evaluation mode only. trainTol, when set,
// replaces parityTol for the training-mode pass where PyTorch's own float32 results differ from its
// float64 ones by more than parityTol/3: by 3.0e-5 (shufflev1, measured at 24x24, batch 4;
// its golden is 16x16, batch 4, which keeps the golden files under 5 MB) and 1.9e-5 (shufflev2 at
// 20x20, batch 4) of their largest value; and for resnet32x4, whose stride-1 3×3 convolutions on
// 32×32 and 16×16 maps run with Winograd F(4×4, 3×3) on the cpu backend (transforms that round
// values up to 100 times larger than their inputs, kernels/winograd4.go): its training-mode taps
// differ from PyTorch's by up to 4.1e-5 of their largest value (9.6e-6 with cpu:winograd=f2).
func TestParityWithPyTorch(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		classes    int
		trainTol   float64
	}{
		{"resnet8x4", "resnet8x4.safetensors", 10, 0},
		{"resnet32x4", "resnet32x4.safetensors", 10, 8e-5},
		{"wrn_16_2", "wrn_16_2.safetensors", 10, 0},
		{"vgg8", "vgg8.safetensors", 10, 0},
		{"vit:nano", "vit_nano.safetensors", 10, 0},
		{"resnet50", "resnet50.safetensors", 10, 0},
		{"shufflev1", "shufflev1.safetensors", 10, 1e-4},
		{"shufflev2", "shufflev2.safetensors", 10, 1e-4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := loadGolden(t, tc.file)
			input := goldenTensor(t, g, "input")
			d := input.Shape().Dimensions
			m, vars, ctx := parityModel(t, tc.name, tc.classes, cnn.MapShape{H: d[1], W: d[2], C: d[3]})
			byKey := map[string]Var{}
			for _, v := range vars {
				byKey[v.Key] = v
			}
			var gradKeys, bnKeys []string
			for _, k := range g.Keys {
				if p, ok := strings.CutPrefix(k, "grad."); ok && p != "input" {
					gradKeys = append(gradKeys, p)
				}
				if p, ok := strings.CutPrefix(k, "train.running_mean."); ok {
					bnKeys = append(bnKeys, p)
				}
			}
			modes := []string{"eval", "train"}
			if _, ok := g.Tensors["train.logits"]; !ok {
				modes = modes[:1]
			}
			for _, mode := range modes {
				training := mode == "train"
				tol := parityTol
				if training && tc.trainTol > 0 {
					tol = tc.trainTol
				}
				var outNames []string
				fn := func(ctx *context.Context, images, labels *graph.Node) []*graph.Node {
					ctx.SetTraining(images.Graph(), training)
					f := features(m, ctx, images)
					outs := []*graph.Node{f.Logits, f.Pooled}
					outNames = []string{mode + ".logits", mode + ".pooled"}
					for i, tap := range f.Taps {
						outs = append(outs, tap)
						outNames = append(outNames, fmt.Sprintf("%s.tap.%d", mode, i))
					}
					if training {
						loss := crossEntropy(f.Logits, labels)
						wrt := []*graph.Node{images}
						for _, k := range gradKeys {
							v := byKey[k]
							wrt = append(wrt, ctx.GetVariableByScopeAndName(v.Scope, v.Name).ValueGraph(images.Graph()))
						}
						grads := graph.Gradient(loss, wrt...)
						outs = append(outs, graph.Reshape(loss, 1), grads[0])
						outNames = append(outNames, "train.loss", "grad.input")
						for i, k := range gradKeys {
							outs = append(outs, grads[i+1])
							outNames = append(outNames, "grad."+k)
						}
					}
					return outs
				}
				exec, err := context.NewExec(testutil.Backend(), ctx.Reuse(), fn)
				if err != nil {
					t.Fatal(err)
				}
				outs, err := exec.Exec(input, goldenTensor(t, g, "labels"))
				exec.Finalize()
				if err != nil {
					t.Fatal(err)
				}
				if len(outs) != len(outNames) {
					t.Fatalf("%d outputs for %d names", len(outs), len(outNames))
				}
				for i, name := range outNames {
					out := outs[i]
					if k, ok := strings.CutPrefix(name, "grad."); ok && k != "input" {
						// Gradients come in ifa's layout: compare in PyTorch's.
						v := byKey[k]
						out = tensors.FromFlatDataAndDimensions(ToTorch(v, tensors.MustCopyFlatData[float32](out)), v.TorchShape...)
					}
					compareTol(t, g, name, out, tol)
				}
			}
			// The training-mode pass updated the running statistics (momentum 0.1, unbiased variance).
			for _, bn := range bnKeys {
				for _, stat := range []string{"running_mean", "running_var"} {
					v := byKey[bn+"."+stat]
					val, err := ctx.GetVariableByScopeAndName(v.Scope, v.Name).Value()
					if err != nil {
						t.Fatal(err)
					}
					compareTol(t, g, "train."+stat+"."+bn, val, max(parityTol, tc.trainTol))
				}
			}
		})
	}
}

// TestPairsLogits: every model of the talk's six teacher-student pairs and of RepDistiller's
// cross-architecture pairs (MobileNetV2 aside), imported from the deterministic state dict,
// reproduces PyTorch's evaluation-mode logits (100 classes, 32x32x3).
func TestPairsLogits(t *testing.T) {
	g := loadGolden(t, "pairs.safetensors")
	input := goldenTensor(t, g, "input")
	for _, name := range []string{"wrn_40_2", "wrn_16_2", "wrn_40_1", "vgg13", "vgg8", "resnet56", "resnet20", "resnet32x4", "resnet8x4", "resnet110",
		"resnet50", "shufflev1", "shufflev2"} {
		t.Run(name, func(t *testing.T) {
			m, _, ctx := parityModel(t, name, 100, cnn.MapShape{H: 32, W: 32, C: 3})
			exec, err := context.NewExec(testutil.Backend(), ctx.Reuse(), func(ctx *context.Context, images *graph.Node) *graph.Node {
				ctx.SetTraining(images.Graph(), false)
				return features(m, ctx, images).Logits
			})
			if err != nil {
				t.Fatal(err)
			}
			defer exec.Finalize()
			out, err := exec.Exec(input)
			if err != nil {
				t.Fatal(err)
			}
			compare(t, g, name+".logits", out[0])
		})
	}
}
