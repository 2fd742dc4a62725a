package interop

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/cnn"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/internal/catch"
	"github.com/ifa-toolkit/ifa/torchio"
	"github.com/ifa-toolkit/ifa/vit"
)

// ViTPrefix marks a ViT model name: "vit:nano", "vit:ti_4".
const ViTPrefix = "vit:"

// Model is an architecture with its classifier and input: what the variables' shapes depend on.
type Model struct {
	// Name is a cnn zoo name ("resnet8x4") or ViTPrefix + a vit configuration ("vit:nano").
	Name string
	// CNN is the zoo model (nil for a ViT); ViT the configuration (nil for a CNN), with its
	// image size, channels and classes.
	CNN *cnn.Spec
	ViT *vit.Config
	// Classes is the classifier width (0: none).
	Classes int
	// Input is the per-image input shape.
	Input cnn.MapShape
}

// NewModel resolves name; classes and input complete it (a ViT takes its image size, channels
// and classes from them).
func NewModel(name string, classes int, input cnn.MapShape) (Model, error) {
	m := Model{Name: name, Classes: classes, Input: input}
	if cfgName, ok := strings.CutPrefix(name, ViTPrefix); ok {
		cfg, err := vit.Get(cfgName)
		if err != nil {
			return Model{}, err
		}
		cfg = cfg.WithImage(input.H, input.W, input.C).WithClasses(classes)
		if err := cfg.Validate(); err != nil {
			return Model{}, err
		}
		m.ViT = &cfg
		return m, nil
	}
	spec, err := cnn.Get(name)
	if err != nil {
		return Model{}, err
	}
	m.CNN = &spec
	return m, nil
}

// Layout says how a variable's values are arranged in ifa and in PyTorch.
type Layout int

// The layouts.
const (
	// Same: identical shape and order (vectors).
	Same Layout = iota
	// Linear: ifa [in, out], PyTorch [out, in].
	Linear
	// Conv: ifa HWIO [kh, kw, in, out], PyTorch OIHW [out, in, kh, kw].
	Conv
	// Patch: ifa [P·P·C, D], PyTorch [D, C, P, P].
	Patch
	// Lead: PyTorch adds leading axes of size 1 up to rank 3 ([D] → [1, 1, D], [T, D] → [1, T, D]).
	Lead
)

// Var is one model variable with its PyTorch twin.
type Var struct {
	// Scope (absolute within the model, e.g. "/stem/conv") and Name ("weights") in ifa.
	Scope, Name string
	// Shape is ifa's shape; TorchShape PyTorch's.
	Shape, TorchShape []int
	Trainable         bool
	// Key is the PyTorch state-dict key.
	Key    string
	Layout Layout
}

// Path is the variable's ifa path, e.g. "/stem/conv/weights".
func (v Var) Path() string { return context.JoinScope(v.Scope, v.Name) }

// BNPrefix is the PyTorch module path of a BatchNorm variable ("layer1.0.bn1"), or "" for other
// variables.
func (v Var) BNPrefix() string {
	if v.Name == "running_mean" {
		return strings.TrimSuffix(v.Key, ".running_mean")
	}
	return ""
}

// Variables builds the model's graph on backend (nothing is compiled or run) and lists its
// variables, in ifa's creation order, with their PyTorch keys and layouts.
func Variables(backend backends.Backend, m Model) (vars []Var, err error) {
	defer catch.Recover(&err, fmt.Sprintf("model %s on input %s: ", m.Name, m.Input))
	ctx := context.New()
	g := graph.NewGraph(backend, "interop")
	defer g.Finalize()
	images := graph.Parameter(g, "images", shapes.Make(dtypes.Float32, 1, m.Input.H, m.Input.W, m.Input.C))
	var keyOf func(scope []string, name string) (string, Layout, error)
	switch {
	case m.ViT != nil:
		model, err := vit.New(*m.ViT)
		if err != nil {
			return nil, err
		}
		model.Features(ctx, images)
		keyOf = vitKey
	case m.CNN != nil:
		m.CNN.Build(ctx, images, m.Classes)
		switch m.CNN.Family() {
		case cnn.FamilyResNet:
			keyOf = resnetKey
		case cnn.FamilyWRN:
			keyOf = wrnKey
		case cnn.FamilyVGG:
			keyOf = vggKey
		case cnn.FamilyMobileNetV2:
			keyOf = mobileNetV2Key
		case cnn.FamilyBottleneckResNet, cnn.FamilyShuffleNetV1, cnn.FamilyShuffleNetV2:
			keyOf = bottleneckKey
		default:
			return nil, fmt.Errorf("model %s: family %s has no PyTorch key map", m.Name, m.CNN.Family())
		}
	default:
		return nil, fmt.Errorf("model %q: neither a CNN nor a ViT", m.Name)
	}
	seen := map[string]string{}
	for v := range ctx.IterVariables() {
		if strings.HasPrefix(v.Name(), "#") {
			continue // the RNG state is no model variable
		}
		scope := strings.Split(strings.Trim(v.Scope(), context.ScopeSeparator), context.ScopeSeparator)
		key, layout, err := keyOf(scope, v.Name())
		if err != nil {
			return nil, fmt.Errorf("model %s: variable %s: %w", m.Name, v.ScopeAndName(), err)
		}
		if other, dup := seen[key]; dup {
			return nil, fmt.Errorf("model %s: variables %s and %s both map to %s", m.Name, other, v.ScopeAndName(), key)
		}
		seen[key] = v.ScopeAndName()
		shape := slices.Clone(v.Shape().Dimensions)
		vars = append(vars, Var{
			Scope: v.Scope(), Name: v.Name(), Shape: shape, TorchShape: torchShape(shape, layout, m),
			Trainable: v.Trainable, Key: key, Layout: layout,
		})
	}
	return vars, nil
}

// torchShape is PyTorch's shape of a variable of ifa shape s.
func torchShape(s []int, layout Layout, m Model) []int {
	switch layout {
	case Linear:
		return []int{s[1], s[0]}
	case Conv:
		return []int{s[3], s[2], s[0], s[1]}
	case Patch:
		p := m.ViT.Patch
		return []int{s[1], s[0] / (p * p), p, p}
	case Lead:
		out := slices.Clone(s)
		for len(out) < 3 {
			out = append([]int{1}, out...)
		}
		return out
	}
	return slices.Clone(s)
}

// ifaView is the shape ifa's values are viewed as before permuting to PyTorch's order, and the
// permutation (PyTorch axis i = view axis perm[i]); nil perm means the same order.
func ifaView(v Var) (view, perm []int) {
	switch v.Layout {
	case Linear:
		return v.Shape, []int{1, 0}
	case Conv:
		return v.Shape, []int{3, 2, 0, 1}
	case Patch:
		// [P·P·C, D] is [P, P, C, D] (HWIO) in row-major order.
		t := v.TorchShape
		return []int{t[2], t[3], t[1], t[0]}, []int{3, 2, 0, 1}
	}
	return v.Shape, nil
}

// permute returns x (row-major, shape dims) with its axes reordered: out axis i = in axis perm[i].
func permute(x []float32, dims, perm []int) []float32 {
	if perm == nil {
		return slices.Clone(x)
	}
	n := len(dims)
	outDims := make([]int, n)
	for i, p := range perm {
		outDims[i] = dims[p]
	}
	inStrides := make([]int, n)
	s := 1
	for i := n - 1; i >= 0; i-- {
		inStrides[i] = s
		s *= dims[i]
	}
	out := make([]float32, len(x))
	idx := make([]int, n)
	for o := range out {
		src := 0
		for i, j := range idx {
			src += j * inStrides[perm[i]]
		}
		out[o] = x[src]
		for i := n - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < outDims[i] {
				break
			}
			idx[i] = 0
		}
	}
	return out
}

// inverse returns the inverse permutation.
func inverse(perm []int) []int {
	if perm == nil {
		return nil
	}
	out := make([]int, len(perm))
	for i, p := range perm {
		out[p] = i
	}
	return out
}

// ToTorch converts ifa values of v to PyTorch's layout.
func ToTorch(v Var, vals []float32) []float32 {
	view, perm := ifaView(v)
	return permute(vals, view, perm)
}

// FromTorch converts PyTorch values of v to ifa's layout.
func FromTorch(v Var, vals []float32) []float32 {
	view, perm := ifaView(v)
	if perm == nil {
		return slices.Clone(vals)
	}
	tdims := make([]int, len(perm))
	for i, p := range perm {
		tdims[i] = view[p]
	}
	return permute(vals, tdims, inverse(perm))
}

// bnKey maps a BatchNorm variable to its PyTorch name under prefix.
func bnKey(prefix, name string) (string, Layout, error) {
	switch name {
	case "scale":
		return prefix + ".weight", Same, nil
	case "offset":
		return prefix + ".bias", Same, nil
	case "running_mean", "running_var":
		return prefix + "." + name, Same, nil
	}
	return "", 0, fmt.Errorf("unknown batch-norm variable %q", name)
}

// convKey maps a convolution's variables (weights, biases) under prefix.
func convKey(prefix, name string) (string, Layout, error) {
	switch name {
	case "weights":
		return prefix + ".weight", Conv, nil
	case "biases":
		return prefix + ".bias", Same, nil
	}
	return "", 0, fmt.Errorf("unknown convolution variable %q", name)
}

// linearKey maps a linear layer's variables under prefix.
func linearKey(prefix, name string) (string, Layout, error) {
	switch name {
	case "weights":
		return prefix + ".weight", Linear, nil
	case "biases":
		return prefix + ".bias", Same, nil
	}
	return "", 0, fmt.Errorf("unknown linear variable %q", name)
}

// layerKey maps a "conv…" or "bn…" scope's variable.
func layerKey(kind, prefix, name string) (string, Layout, error) {
	if strings.HasPrefix(kind, "bn") {
		return bnKey(prefix, name)
	}
	return convKey(prefix, name)
}

// index parses the number after prefix in a scope segment ("stage_2" → 2).
func index(seg, prefix string) (int, bool) {
	s, ok := strings.CutPrefix(seg, prefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

func unmapped(scope []string) (string, Layout, error) {
	return "", 0, fmt.Errorf("scope /%s has no PyTorch name", strings.Join(scope, "/"))
}

// resnetKey: stem/{conv,bn} → conv1, bn1; stage_S/block_B/{conv_k,bn_k} → layerS.B.{convk,bnk};
// shortcut/{conv,bn} → layerS.B.downsample.{0,1}; fc → fc (RepDistiller's resnet.py).
func resnetKey(scope []string, name string) (string, Layout, error) {
	return stagedKey(scope, name, "downsample", "fc")
}

// bottleneckKey is resnetKey with RepDistiller's ResNet50 names: shortcut.{0,1} and the classifier
// "linear"; the ShuffleNets share it (they have no shortcut convolutions), and ShuffleNetV2's
// head/{conv,bn} is conv2, bn2.
func bottleneckKey(scope []string, name string) (string, Layout, error) {
	if len(scope) == 2 && scope[0] == "head" {
		return layerKey(scope[1], scope[1]+"2", name)
	}
	return stagedKey(scope, name, "shortcut", "linear")
}

// stagedKey maps the stem/stage_S/block_B/fc scopes shared by the ResNets and ShuffleNets.
func stagedKey(scope []string, name, shortcut, classifier string) (string, Layout, error) {
	switch {
	case len(scope) == 1 && scope[0] == "fc":
		return linearKey(classifier, name)
	case len(scope) == 2 && scope[0] == "stem" && scope[1] == "conv":
		return convKey("conv1", name)
	case len(scope) == 2 && scope[0] == "stem" && scope[1] == "bn":
		return bnKey("bn1", name)
	}
	return blockLayerKey(scope, name, "layer%d.%d", map[string]string{"conv": shortcut + ".0", "bn": shortcut + ".1"})
}

// blockLayerKey maps the layers of a residual block, stage_S/block_B/…: the block's module is
// fmt.Sprintf(blockFormat, S, B); conv_K and bn_K are its convK and bnK; shortcut/conv and
// shortcut/bn are the modules shortcuts names.
func blockLayerKey(scope []string, name, blockFormat string, shortcuts map[string]string) (string, Layout, error) {
	if len(scope) < 3 {
		return unmapped(scope)
	}
	s, ok1 := index(scope[0], "stage_")
	b, ok2 := index(scope[1], "block_")
	if !ok1 || !ok2 {
		return unmapped(scope)
	}
	block := fmt.Sprintf(blockFormat, s, b)
	if len(scope) == 4 && scope[2] == "shortcut" {
		if module, ok := shortcuts[scope[3]]; ok {
			return layerKey(scope[3], block+"."+module, name)
		}
	}
	if len(scope) == 3 {
		kind, n, ok := strings.Cut(scope[2], "_")
		if ok && (kind == "conv" || kind == "bn") {
			return layerKey(kind, block+"."+kind+n, name)
		}
	}
	return unmapped(scope)
}

// wrnKey: stem/conv → conv1; stage_S/block_B/{bn_1,conv_1,bn_2,conv_2,shortcut/conv} →
// blockS.layer.B.{bn1,conv1,bn2,conv2,convShortcut}; final_bn → bn1; fc → fc.
func wrnKey(scope []string, name string) (string, Layout, error) {
	switch {
	case len(scope) == 1 && scope[0] == "fc":
		return linearKey("fc", name)
	case len(scope) == 1 && scope[0] == "final_bn":
		return bnKey("bn1", name)
	case len(scope) == 2 && scope[0] == "stem" && scope[1] == "conv":
		return convKey("conv1", name)
	}
	return blockLayerKey(scope, name, "block%d.layer.%d", map[string]string{"conv": "convShortcut"})
}

// vggKey: group_G/conv_j → blockG.(3j); group_G/bn_j → blockG.(3j+1); fc → classifier.
func vggKey(scope []string, name string) (string, Layout, error) {
	if len(scope) == 1 && scope[0] == "fc" {
		return linearKey("classifier", name)
	}
	if len(scope) != 2 {
		return unmapped(scope)
	}
	g, ok := index(scope[0], "group_")
	if !ok {
		return unmapped(scope)
	}
	if j, ok := index(scope[1], "conv_"); ok {
		return convKey(fmt.Sprintf("block%d.%d", g, 3*j), name)
	}
	if j, ok := index(scope[1], "bn_"); ok {
		return bnKey(fmt.Sprintf("block%d.%d", g, 3*j+1), name)
	}
	return unmapped(scope)
}

// mobileNetV2Key: stem/{conv,bn} → conv1.{0,1}; stage_S/block_B/{expand,depthwise,project}/{conv,bn}
// → blocks.S.B.conv.{0,1,3,4,6,7}; head/{conv,bn} → conv2.{0,1}; fc → classifier.0.
func mobileNetV2Key(scope []string, name string) (string, Layout, error) {
	sub := map[string]int{"conv": 0, "bn": 1}
	switch {
	case len(scope) == 1 && scope[0] == "fc":
		return linearKey("classifier.0", name)
	case len(scope) == 2 && (scope[0] == "stem" || scope[0] == "head"):
		i, ok := sub[scope[1]]
		if !ok {
			return unmapped(scope)
		}
		prefix := map[string]string{"stem": "conv1", "head": "conv2"}[scope[0]]
		return layerKey(scope[1], fmt.Sprintf("%s.%d", prefix, i), name)
	case len(scope) == 4:
		s, ok1 := index(scope[0], "stage_")
		b, ok2 := index(scope[1], "block_")
		part, ok3 := map[string]int{"expand": 0, "depthwise": 3, "project": 6}[scope[2]]
		i, ok4 := sub[scope[3]]
		if ok1 && ok2 && ok3 && ok4 {
			return layerKey(scope[3], fmt.Sprintf("blocks.%d.%d.conv.%d", s, b, part+i), name)
		}
	}
	return unmapped(scope)
}

// vitKey maps the ViT to timm's names.
func vitKey(scope []string, name string) (string, Layout, error) {
	ln := func(prefix string) (string, Layout, error) {
		switch name {
		case "gain":
			return prefix + ".weight", Same, nil
		case "offset":
			return prefix + ".bias", Same, nil
		}
		return "", 0, fmt.Errorf("unknown LayerNorm variable %q", name)
	}
	switch {
	case len(scope) == 1 && scope[0] == "" && (name == vit.VarClsToken || name == vit.VarPosEmbed):
		return name, Lead, nil
	case len(scope) == 1 && scope[0] == vit.ScopePatchEmbed:
		if name == "weights" {
			return "patch_embed.proj.weight", Patch, nil
		}
		return linearKey("patch_embed.proj", name)
	case len(scope) == 1 && scope[0] == vit.ScopeNorm:
		return ln("norm")
	case len(scope) == 1 && scope[0] == vit.ScopeHead:
		return linearKey("head", name)
	}
	if len(scope) < 2 {
		return unmapped(scope)
	}
	b, ok := index(scope[0], "block_")
	if !ok {
		return unmapped(scope)
	}
	prefix := fmt.Sprintf("blocks.%d.", b)
	rest := strings.Join(scope[1:], ".")
	switch rest {
	case "norm1", "norm2":
		return ln(prefix + rest)
	case "attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2":
		return linearKey(prefix+rest, name)
	}
	return unmapped(scope)
}

// firstConvKey is the PyTorch key of the model's first convolution: its input channels are the
// images'.
func firstConvKey(name string) string {
	if strings.HasPrefix(name, ViTPrefix) {
		return "patch_embed.proj.weight"
	}
	spec, err := cnn.Get(name)
	if err != nil {
		return ""
	}
	switch spec.Family() {
	case cnn.FamilyVGG:
		return "block0.0.weight"
	case cnn.FamilyMobileNetV2:
		return "conv1.0.weight"
	}
	return "conv1.weight"
}

// classifierKey is the PyTorch key of the classifier's weight.
func classifierKey(name string) string {
	if strings.HasPrefix(name, ViTPrefix) {
		return "head.weight"
	}
	spec, err := cnn.Get(name)
	if err != nil {
		return ""
	}
	switch spec.Family() {
	case cnn.FamilyVGG:
		return "classifier.weight"
	case cnn.FamilyMobileNetV2:
		return "classifier.0.weight"
	case cnn.FamilyBottleneckResNet, cnn.FamilyShuffleNetV1, cnn.FamilyShuffleNetV2:
		return "linear.weight"
	}
	return "fc.weight"
}

// Infer reads the input channels (from the first convolution) and, when classes < 0, the classifier
// width from a state dict; a missing classifier means 0 classes.
func Infer(name string, sd *torchio.StateDict, classes int) (channels, outClasses int, err error) {
	first := firstConvKey(name)
	if first == "" {
		return 0, 0, fmt.Errorf("unknown model %q", name)
	}
	t, ok := sd.Tensors[first]
	if !ok {
		return 0, 0, fmt.Errorf("key %s (the first convolution, which gives the input channels) is missing: is the file a %s?", first, name)
	}
	if len(t.Shape) != 4 {
		return 0, 0, fmt.Errorf("key %s: shape %s, want a 4-d convolution kernel", first, torchio.ShapeString(t.Shape))
	}
	channels = t.Shape[1]
	outClasses = classes
	if classes < 0 {
		outClasses = 0
		if c, ok := sd.Tensors[classifierKey(name)]; ok && len(c.Shape) == 2 {
			outClasses = c.Shape[0]
		}
	}
	return channels, outClasses, nil
}

// Imported is a state dict mapped onto a model.
type Imported struct {
	// Variables hold the values under the model's scopes (relative: "/stem/conv").
	Variables []fit.SavedVariable
	// NumBatchesTracked maps each BatchNorm's PyTorch prefix to its num_batches_tracked (absent
	// when the file had none: PyTorch's default 0 applies).
	NumBatchesTracked map[string]int64
}

// Import maps sd onto vars: every key must be present (num_batches_tracked optional) with
// PyTorch's shape, and no other key may be. Errors name the key.
func Import(sd *torchio.StateDict, vars []Var, modelDesc string) (*Imported, error) {
	want := map[string]bool{}
	bn := map[string]bool{}
	var missing []string
	for _, v := range vars {
		want[v.Key] = true
		if p := v.BNPrefix(); p != "" {
			bn[p+".num_batches_tracked"] = true
		}
		if _, ok := sd.Tensors[v.Key]; !ok {
			missing = append(missing, v.Key)
		}
	}
	var extra []string
	for _, k := range sd.Keys {
		if !want[k] && !bn[k] {
			extra = append(extra, k)
		}
	}
	if len(missing) > 0 || len(extra) > 0 {
		switch {
		case len(missing) > 0 && len(extra) > 0:
			return nil, fmt.Errorf("key %s of %s is missing (%d missing), and key %s is not part of it (%d unexpected): is the file a different model?",
				missing[0], modelDesc, len(missing), extra[0], len(extra))
		case len(missing) > 0:
			return nil, fmt.Errorf("key %s of %s is missing (%d keys missing)", missing[0], modelDesc, len(missing))
		default:
			return nil, fmt.Errorf("unexpected key %s: not part of %s (%d unexpected keys)", extra[0], modelDesc, len(extra))
		}
	}
	out := &Imported{NumBatchesTracked: map[string]int64{}}
	for _, v := range vars {
		t := sd.Tensors[v.Key]
		if !slices.Equal(t.Shape, v.TorchShape) {
			return nil, fmt.Errorf("key %s: shape %s, want %s for %s", v.Key, torchio.ShapeString(t.Shape), torchio.ShapeString(v.TorchShape), modelDesc)
		}
		vals, err := t.Float32s()
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", v.Key, err)
		}
		out.Variables = append(out.Variables, fit.SavedVariable{
			Scope: v.Scope, Name: v.Name, Trainable: v.Trainable,
			Value: tensors.FromFlatDataAndDimensions(FromTorch(v, vals), v.Shape...),
		})
		if p := v.BNPrefix(); p != "" {
			if nb, ok := sd.Tensors[p+".num_batches_tracked"]; ok {
				n, err := nb.Int64s()
				if err != nil || len(n) != 1 || len(nb.Shape) > 1 {
					return nil, fmt.Errorf("key %s.num_batches_tracked: want an integer scalar, got %s %s", p, nb.DType, torchio.ShapeString(nb.Shape))
				}
				out.NumBatchesTracked[p] = n[0]
			}
		}
	}
	return out, nil
}

// Export maps a checkpoint's model variables (under scope root, e.g. "/model") to a PyTorch state
// dict in PyTorch's key order of vars, with num_batches_tracked = numBatchesTracked(prefix) for
// every BatchNorm.
func Export(ck *fit.Checkpoint, root string, vars []Var, numBatchesTracked func(prefix string) int64) (*torchio.StateDict, error) {
	byPath := map[string]*tensors.Tensor{}
	root = "/" + strings.Trim(root, "/")
	for _, sv := range ck.Variables {
		byPath[sv.ScopeAndName()] = sv.Value
	}
	sd := torchio.NewStateDict()
	for _, v := range vars {
		path := v.Path()
		if root != "/" {
			path = root + path
		}
		val, ok := byPath[path]
		if !ok {
			return nil, fmt.Errorf("checkpoint %s has no variable %s (for %s)", ck.Path, path, v.Key)
		}
		if !slices.Equal(val.Shape().Dimensions, v.Shape) || val.DType() != dtypes.Float32 {
			return nil, fmt.Errorf("checkpoint %s: variable %s is %s, want float32 %v", ck.Path, path, val.Shape(), v.Shape)
		}
		vals, err := tensors.CopyFlatData[float32](val)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: variable %s: %w", ck.Path, path, err)
		}
		sd.Set(v.Key, torchio.FromFloat32s(v.TorchShape, ToTorch(v, vals)))
	}
	// PyTorch lists a BatchNorm's entries as weight, bias, running_mean, running_var,
	// num_batches_tracked; ifa creates them in the same order, so num_batches_tracked goes after
	// running_var.
	ordered := torchio.NewStateDict()
	for _, k := range sd.Keys {
		ordered.Set(k, sd.Tensors[k])
		if p, ok := strings.CutSuffix(k, ".running_var"); ok {
			ordered.Set(p+".num_batches_tracked", torchio.ScalarInt64(numBatchesTracked(p)))
		}
	}
	return ordered, nil
}

// NewContext holds vars (scopes relative to the model) under root ("/model") with their trainable
// flags: a context SaveCheckpoint can write.
func NewContext(vars []fit.SavedVariable, root string) *context.Context {
	ctx := context.New()
	root = "/" + strings.Trim(root, "/")
	for _, sv := range vars {
		scope := sv.Scope
		if root != "/" {
			scope = root + scope
		}
		ctx.InAbsPath(scope).VariableWithValue(sv.Name, sv.Value).SetTrainable(sv.Trainable)
	}
	return ctx
}
