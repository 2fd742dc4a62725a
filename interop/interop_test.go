package interop

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/ifa-toolkit/ifa/cnn"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/internal/testutil"
	"github.com/ifa-toolkit/ifa/torchio"
)

var cifar = cnn.MapShape{H: 32, W: 32, C: 3}

func mustVars(t *testing.T, name string, classes int, input cnn.MapShape) (Model, []Var) {
	t.Helper()
	m, err := NewModel(name, classes, input)
	if err != nil {
		t.Fatal(err)
	}
	vars, err := Variables(testutil.Backend(), m)
	if err != nil {
		t.Fatal(err)
	}
	return m, vars
}

// stateKeys lists a model's PyTorch state-dict keys (num_batches_tracked included).
func stateKeys(vars []Var) []string {
	var keys []string
	for _, v := range vars {
		keys = append(keys, v.Key)
		if p, ok := strings.CutSuffix(v.Key, ".running_var"); ok {
			keys = append(keys, p+".num_batches_tracked")
		}
	}
	return keys
}

// TestEntryCounts: RepDistiller's state_dict() entry counts (100 classes) for every zoo model.
func TestEntryCounts(t *testing.T) {
	want := map[string]int{
		"resnet8": 56, "resnet14": 92, "resnet20": 128, "resnet32": 200, "resnet44": 272, "resnet56": 344,
		"resnet110": 668, "resnet8x4": 62, "resnet32x4": 206, "wrn_16_1": 82, "wrn_16_2": 83, "wrn_40_1": 226,
		"wrn_40_2": 227, "vgg8": 37, "vgg13": 72, "mobilenetv2": 320, "resnet50": 320, "shufflev1": 296, "shufflev2": 338,
		// 7 entries per conv (weight, bias, BN) + 2 for the classifier.
		"vgg11": 58, "vgg16": 93, "vgg19": 114,
	}
	for _, name := range cnn.Names() {
		_, vars := mustVars(t, name, 100, cifar)
		n := len(stateKeys(vars))
		if w, ok := want[name]; !ok {
			t.Errorf("%s: no expected entry count", name)
		} else if n != w {
			t.Errorf("%s: %d state-dict entries, RepDistiller has %d", name, n, w)
		}
		params := 0
		for _, v := range vars {
			if v.Trainable {
				p := 1
				for _, d := range v.TorchShape {
					p *= d
				}
				params += p
			}
		}
		spec, _ := cnn.Get(name)
		info, err := spec.Describe(testutil.Backend(), cifar, 100)
		if err != nil {
			t.Fatal(err)
		}
		if params != info.Params {
			t.Errorf("%s: %d parameters in PyTorch shapes, ifa counts %d", name, params, info.Params)
		}
	}
}

// bnKeys expands X~bn[C] of INTEROP.md's lists.
func bnKeys(prefix string, c int) []string {
	var out []string
	for _, s := range []string{"weight", "bias", "running_mean", "running_var", "num_batches_tracked"} {
		out = append(out, fmt.Sprintf("%s.%s", prefix, s))
	}
	return out
}

// TestResNet8x4Keys: every key and shape of RepDistiller's resnet8x4 and wrn_16_2.
func TestResNet8x4Keys(t *testing.T) {
	shapes := map[string][]int{}
	var want []string
	add := func(k string, s ...int) { want = append(want, k); shapes[k] = s }
	addBN := func(p string, c int) {
		for i, k := range bnKeys(p, c) {
			want = append(want, k)
			if i < 4 {
				shapes[k] = []int{c}
			} else {
				shapes[k] = []int{}
			}
		}
	}
	add("conv1.weight", 32, 3, 3, 3)
	addBN("bn1", 32)
	in := 32
	for s, w := range []int{64, 128, 256} {
		l := fmt.Sprintf("layer%d.0", s+1)
		add(l+".conv1.weight", w, in, 3, 3)
		addBN(l+".bn1", w)
		add(l+".conv2.weight", w, w, 3, 3)
		addBN(l+".bn2", w)
		add(l+".downsample.0.weight", w, in, 1, 1)
		addBN(l+".downsample.1", w)
		in = w
	}
	add("fc.weight", 100, 256)
	add("fc.bias", 100)
	_, vars := mustVars(t, "resnet8x4", 100, cifar)
	got := stateKeys(vars)
	if !slices.Equal(got, want) {
		t.Fatalf("keys\n%v\nwant\n%v", got, want)
	}
	for _, v := range vars {
		if !slices.Equal(v.TorchShape, shapes[v.Key]) {
			t.Fatalf("%s: shape %v, want %v", v.Key, v.TorchShape, shapes[v.Key])
		}
	}
}

func TestWRN16x2Keys(t *testing.T) {
	_, vars := mustVars(t, "wrn_16_2", 100, cifar)
	shapes := map[string][]int{}
	for _, v := range vars {
		shapes[v.Key] = v.TorchShape
	}
	for k, s := range map[string][]int{
		"conv1.weight":                       {16, 3, 3, 3},
		"block1.layer.0.bn1.weight":          {16},
		"block1.layer.0.conv1.weight":        {32, 16, 3, 3},
		"block1.layer.0.convShortcut.weight": {32, 16, 1, 1},
		"block1.layer.1.conv2.weight":        {32, 32, 3, 3},
		"block3.layer.0.convShortcut.weight": {128, 64, 1, 1},
		"bn1.running_var":                    {128},
		"fc.weight":                          {100, 128},
	} {
		if !slices.Equal(shapes[k], s) {
			t.Errorf("%s: shape %v, want %v", k, shapes[k], s)
		}
	}
	_, vars = mustVars(t, "wrn_16_1", 100, cifar)
	for _, v := range vars {
		if strings.HasPrefix(v.Key, "block1.") && strings.Contains(v.Key, "convShortcut") {
			t.Errorf("wrn_16_1 has no block1 shortcut, got %s", v.Key)
		}
	}
}

func TestOtherFamiliesKeys(t *testing.T) {
	for name, want := range map[string]map[string][]int{
		"vgg8":  {"block0.0.weight": {64, 3, 3, 3}, "block0.0.bias": {64}, "block0.1.running_mean": {64}, "block4.0.weight": {512, 512, 3, 3}, "classifier.weight": {100, 512}},
		"vgg13": {"block0.3.weight": {64, 64, 3, 3}, "block0.4.weight": {64}, "block4.3.weight": {512, 512, 3, 3}},
		"mobilenetv2": {"conv1.0.weight": {16, 3, 3, 3}, "conv1.1.weight": {16}, "blocks.0.0.conv.0.weight": {16, 16, 1, 1},
			"blocks.0.0.conv.3.weight": {16, 1, 3, 3}, "blocks.0.0.conv.6.weight": {8, 16, 1, 1}, "blocks.6.0.conv.7.running_var": {160},
			"conv2.0.weight": {1280, 160, 1, 1}, "classifier.0.weight": {100, 1280}},
	} {
		_, vars := mustVars(t, name, 100, cifar)
		shapes := map[string][]int{}
		for _, v := range vars {
			shapes[v.Key] = v.TorchShape
		}
		for k, s := range want {
			if !slices.Equal(shapes[k], s) {
				t.Errorf("%s %s: shape %v, want %v", name, k, shapes[k], s)
			}
		}
	}
}

func TestViTKeys(t *testing.T) {
	_, vars := mustVars(t, "vit:nano", 10, cnn.MapShape{H: 28, W: 28, C: 1})
	shapes := map[string][]int{}
	for _, v := range vars {
		shapes[v.Key] = v.TorchShape
	}
	for k, s := range map[string][]int{
		"patch_embed.proj.weight": {64, 1, 4, 4}, "patch_embed.proj.bias": {64}, "cls_token": {1, 1, 64}, "pos_embed": {1, 50, 64},
		"blocks.0.norm1.weight": {64}, "blocks.3.attn.qkv.weight": {192, 64}, "blocks.3.attn.proj.bias": {64},
		"blocks.1.mlp.fc1.weight": {128, 64}, "blocks.1.mlp.fc2.weight": {64, 128}, "norm.weight": {64}, "head.weight": {10, 64},
	} {
		if !slices.Equal(shapes[k], s) {
			t.Errorf("%s: shape %v, want %v", k, shapes[k], s)
		}
	}
	if len(vars) != 4+4*12+2+2 {
		t.Errorf("%d variables", len(vars))
	}
}

// TestLayouts checks the conversions against index formulas written from the layouts.
func TestLayouts(t *testing.T) {
	// Conv: torch w[o, i, y, x] = ifa w[y, x, i, o].
	v := Var{Shape: []int{3, 2, 4, 5}, TorchShape: []int{5, 4, 3, 2}, Layout: Conv}
	ifa := make([]float32, 3*2*4*5)
	for i := range ifa {
		ifa[i] = float32(i)
	}
	tv := ToTorch(v, ifa)
	for o := range 5 {
		for i := range 4 {
			for y := range 3 {
				for x := range 2 {
					if got, want := tv[((o*4+i)*3+y)*2+x], ifa[((y*2+x)*4+i)*5+o]; got != want {
						t.Fatalf("conv [%d %d %d %d] = %v, want %v", o, i, y, x, got, want)
					}
				}
			}
		}
	}
	if !slices.Equal(FromTorch(v, tv), ifa) {
		t.Fatal("conv round trip")
	}
	// Patch (P = 2, C = 3, D = 4): ifa [(py·P + px)·C + c, d] = torch [d, c, py, px].
	pv := Var{Shape: []int{12, 4}, TorchShape: []int{4, 3, 2, 2}, Layout: Patch}
	ifa = make([]float32, 48)
	for i := range ifa {
		ifa[i] = float32(i)
	}
	tv = ToTorch(pv, ifa)
	for d := range 4 {
		for c := range 3 {
			for py := range 2 {
				for px := range 2 {
					if got, want := tv[((d*3+c)*2+py)*2+px], ifa[((py*2+px)*3+c)*4+d]; got != want {
						t.Fatalf("patch [%d %d %d %d] = %v, want %v", d, c, py, px, got, want)
					}
				}
			}
		}
	}
	if !slices.Equal(FromTorch(pv, tv), ifa) {
		t.Fatal("patch round trip")
	}
	lv := Var{Shape: []int{2, 3}, TorchShape: []int{3, 2}, Layout: Linear}
	if got := ToTorch(lv, []float32{0, 1, 2, 3, 4, 5}); !slices.Equal(got, []float32{0, 3, 1, 4, 2, 5}) {
		t.Fatalf("linear: %v", got)
	}
}

// randomState is a state dict for vars with random values and num_batches_tracked = 5.
func randomState(vars []Var, seed uint64) *torchio.StateDict {
	r := rand.New(rand.NewPCG(seed, 1))
	sd := torchio.NewStateDict()
	for _, v := range vars {
		n := 1
		for _, d := range v.TorchShape {
			n *= d
		}
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = r.Float32()
		}
		sd.Set(v.Key, torchio.FromFloat32s(v.TorchShape, vals))
		if p, ok := strings.CutSuffix(v.Key, ".running_var"); ok {
			sd.Set(p+".num_batches_tracked", torchio.ScalarInt64(5))
		}
	}
	return sd
}

// TestImportExportIdentity: import followed by export gives identical tensors, for every family.
func TestImportExportIdentity(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input cnn.MapShape
	}{{"resnet8", cifar}, {"wrn_16_1", cifar}, {"vgg8", cifar}, {"mobilenetv2", cifar}, {"vit:nano", cnn.MapShape{H: 28, W: 28, C: 1}}} {
		_, vars := mustVars(t, tc.name, 10, tc.input)
		sd := randomState(vars, 7)
		imp, err := Import(sd, vars, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		ck := &fit.Checkpoint{Path: "mem"}
		for _, sv := range imp.Variables {
			sv.Scope = "/model" + sv.Scope
			ck.Variables = append(ck.Variables, sv)
		}
		out, err := Export(ck, "/model", vars, func(p string) int64 { return imp.NumBatchesTracked[p] })
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Keys) != len(sd.Keys) {
			t.Fatalf("%s: %d keys exported, %d imported", tc.name, len(out.Keys), len(sd.Keys))
		}
		for _, k := range sd.Keys {
			a, b := sd.Tensors[k], out.Tensors[k]
			if b == nil || a.DType != b.DType || !slices.Equal(a.Shape, b.Shape) || string(a.Data) != string(b.Data) {
				t.Fatalf("%s: %s differs after import and export", tc.name, k)
			}
		}
	}
}

func TestImportErrors(t *testing.T) {
	_, vars := mustVars(t, "resnet8", 10, cifar)
	_, wrn := mustVars(t, "wrn_16_1", 10, cifar)
	base := func() *torchio.StateDict { return randomState(vars, 1) }
	drop := func(key string) *torchio.StateDict {
		sd := base()
		delete(sd.Tensors, key)
		sd.Keys = slices.DeleteFunc(sd.Keys, func(k string) bool { return k == key })
		return sd
	}
	extra := base()
	extra.Set("layer4.0.conv1.weight", torchio.FromFloat32s([]int{1}, []float32{1}))
	shape := base()
	shape.Tensors["layer2.0.conv1.weight"] = torchio.FromFloat32s([]int{32, 16, 1, 1}, make([]float32, 32*16))
	noNBT := base()
	for _, k := range slices.Clone(noNBT.Keys) {
		if strings.HasSuffix(k, "num_batches_tracked") {
			delete(noNBT.Tensors, k)
		}
	}
	noNBT.Keys = slices.DeleteFunc(noNBT.Keys, func(k string) bool { return strings.HasSuffix(k, "num_batches_tracked") })
	if imp, err := Import(noNBT, vars, "resnet8"); err != nil || len(imp.NumBatchesTracked) != 0 {
		t.Fatalf("without num_batches_tracked: %v", err)
	}
	for name, tc := range map[string]struct {
		sd   *torchio.StateDict
		want string
	}{
		"missing":     {drop("layer1.0.bn2.running_var"), "key layer1.0.bn2.running_var of resnet8 is missing"},
		"extra":       {extra, "unexpected key layer4.0.conv1.weight"},
		"shape":       {shape, "key layer2.0.conv1.weight: shape [32, 16, 1, 1], want [32, 16, 3, 3]"},
		"wrong model": {randomState(wrn, 2), "is the file a different model"},
	} {
		_, err := Import(tc.sd, vars, "resnet8")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}
