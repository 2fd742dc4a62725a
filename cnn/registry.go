package cnn

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/catch"
	"github.com/ifa-toolkit/ifa/internal/nn"
)

// errorf formats an error with the package prefix.
func errorf(format string, args ...any) error {
	return fmt.Errorf("cnn: "+format, args...)
}

// Family names a model family of the zoo.
type Family string

// The model families.
const (
	FamilyResNet Family = "resnet"
	FamilyWRN    Family = "wrn"
	FamilyVGG    Family = "vgg"
	// FamilyMobileNetV2 is MobileNetV2.
	FamilyMobileNetV2 Family = "mobilenetv2"
	// FamilyBottleneckResNet is the bottleneck ResNet with a CIFAR stem (ResNet50).
	FamilyBottleneckResNet Family = "resnet_bottleneck"
	// FamilyShuffleNetV1 and FamilyShuffleNetV2 are the CIFAR ShuffleNets.
	FamilyShuffleNetV1 Family = "shufflenetv1"
	FamilyShuffleNetV2 Family = "shufflenetv2"
)

// Lightweight reports whether RepDistiller trains the family's models with learning rate 0.01
// instead of 0.05: MobileNetV2, ShuffleV1 and ShuffleV2, as students (train_student.py) and as
// teachers (train_teacher.py); METHODS.md §4.3.
func (f Family) Lightweight() bool {
	return f == FamilyMobileNetV2 || f == FamilyShuffleNetV1 || f == FamilyShuffleNetV2
}

// Config is the typed architecture of one family (ResNetConfig, WRNConfig, VGGConfig,
// MobileNetV2Config, BottleneckResNetConfig, ShuffleNetV1Config, ShuffleNetV2Config).
type Config interface {
	// Family is the family the configuration belongs to.
	Family() Family
	// Validate reports whether the configuration describes a buildable model.
	Validate() error
	// build builds the model in ctx's current scope; images: [B, H, W, C]; numClasses = 0 builds no
	// classifier (Logits nil).
	build(ctx *context.Context, images *graph.Node, numClasses int) backbone.Features
}

// Spec is a named, validated model configuration.
type Spec struct {
	// Name is the registry name (e.g. "resnet8x4").
	Name string
	// Config is the validated architecture.
	Config Config
}

// NewSpec validates cfg and wraps it in a Spec under the given name (for configurations outside the
// registry).
func NewSpec(name string, cfg Config) (Spec, error) {
	if cfg == nil {
		return Spec{}, errorf("model %q: nil config", name)
	}
	if err := cfg.Validate(); err != nil {
		return Spec{}, fmt.Errorf("cnn: model %q: %w", name, err)
	}
	return Spec{Name: name, Config: cfg}, nil
}

// Family is the family of the model.
func (s Spec) Family() Family { return s.Config.Family() }

// Build builds the model in ctx's current scope on images [B, H, W, C] (float32, channels-last; any
// channel count, e.g. 3 for CIFAR or 1 for Fashion-MNIST) and returns its features. numClasses > 0
// adds the classifier "fc" ([B, numClasses] logits); numClasses = 0 builds the encoder alone (Logits
// nil). Batch norm runs in training mode when the graph is training and ctx's scope is not frozen
// (nn.IsTraining). It is a graph-building function: it panics on invalid input.
func (s Spec) Build(ctx *context.Context, images *graph.Node, numClasses int) backbone.Features {
	if s.Config == nil {
		panic(errorf("model %q: empty spec", s.Name))
	}
	if images.Rank() != 4 {
		panic(errorf("model %q: images must be [B, H, W, C], got shape %s", s.Name, images.Shape()))
	}
	if !images.DType().IsFloat() {
		panic(errorf("model %q: images must be floating point, got %s", s.Name, images.DType()))
	}
	if numClasses < 0 {
		panic(errorf("model %q: numClasses %d < 0", s.Name, numClasses))
	}
	return s.Config.build(ctx, images, numClasses)
}

// MapShape is the shape of one channels-last feature map of a single image: [H, W, C]. H = W = 0
// for a vector.
type MapShape struct {
	H int `json:"h"`
	W int `json:"w"`
	C int `json:"c"`
}

// String formats the shape as HxWxC (or C for a vector).
func (m MapShape) String() string {
	if m.H == 0 && m.W == 0 {
		return fmt.Sprint(m.C)
	}
	return fmt.Sprintf("%dx%dx%d", m.H, m.W, m.C)
}

// Info describes a built model for one input size: what distillers and heads need to size
// themselves without building the model.
type Info struct {
	// Name and Family of the model.
	Name   string `json:"name"`
	Family Family `json:"family"`
	// Input is the per-image input shape the info was computed for.
	Input MapShape `json:"input"`
	// NumClasses the classifier was built with (0: none).
	NumClasses int `json:"num_classes"`
	// Params is the number of trainable parameters (BN running statistics excluded).
	Params int `json:"params"`
	// Stages and PreactStages are the per-image shapes of Features.Stages / PreactStages.
	Stages       []MapShape `json:"stages"`
	PreactStages []MapShape `json:"preact_stages"`
	// Taps are the per-image shapes of Features.Taps, in forward order; TapWidths their channel counts
	// (the widths of Features.TapVectors).
	Taps      []MapShape `json:"taps"`
	TapWidths []int      `json:"tap_widths"`
	// FeatureDim is the width of Features.Pooled.
	FeatureDim int `json:"feature_dim"`
}

// Describe builds the model's graph (without compiling or running it) on a batch of one image of
// shape input ([H, W, C]) in a fresh context and reports its shapes and trainable parameter count.
// backend is only used to hold the graph.
func (s Spec) Describe(backend backends.Backend, input MapShape, numClasses int) (info Info, err error) {
	if input.H < 1 || input.W < 1 || input.C < 1 {
		return Info{}, errorf("model %q: invalid input shape %s", s.Name, input)
	}
	if numClasses < 0 {
		return Info{}, errorf("model %q: numClasses %d < 0", s.Name, numClasses)
	}
	defer catch.Recover(&err, fmt.Sprintf("cnn: model %q on input %s: ", s.Name, input))
	ctx := context.New()
	g := graph.NewGraph(backend, "describe_"+s.Name)
	defer g.Finalize()
	images := graph.Parameter(g, "images", shapes.Make(dtypes.Float32, 1, input.H, input.W, input.C))
	f := s.Build(ctx, images, numClasses)
	info = Info{
		Name:         s.Name,
		Family:       s.Family(),
		Input:        input,
		NumClasses:   numClasses,
		Params:       TrainableParams(ctx),
		Stages:       mapShapes(f.Stages),
		PreactStages: mapShapes(f.PreactStages),
		Taps:         mapShapes(f.Taps),
		FeatureDim:   f.Pooled.Shape().Dim(-1),
	}
	for _, t := range f.Taps {
		info.TapWidths = append(info.TapWidths, t.Shape().Dim(-1))
	}
	return info, nil
}

func mapShapes(nodes []*graph.Node) []MapShape {
	out := make([]MapShape, len(nodes))
	for i, n := range nodes {
		d := n.Shape().Dimensions
		if len(d) == 4 {
			out[i] = MapShape{H: d[1], W: d[2], C: d[3]}
		} else {
			out[i] = MapShape{C: d[len(d)-1]}
		}
	}
	return out
}

// TrainableParams counts the scalar entries of the trainable variables in ctx (all scopes).
func TrainableParams(ctx *context.Context) int { return int(nn.CountTrainable(ctx, nil)) }

// registry lists the named models; built on demand so there is no package-level mutable state.
func registry() map[string]Config {
	m := map[string]Config{
		"resnet8x4":  ResNetConfig{Depth: 8, Widths: [4]int{32, 64, 128, 256}},
		"resnet32x4": ResNetConfig{Depth: 32, Widths: [4]int{32, 64, 128, 256}},
		"wrn_16_1":   WRNConfig{Depth: 16, Widen: 1},
		"wrn_16_2":   WRNConfig{Depth: 16, Widen: 2},
		"wrn_40_1":   WRNConfig{Depth: 40, Widen: 1},
		"wrn_40_2":   WRNConfig{Depth: 40, Widen: 2},
		// RepDistiller's "MobileNetV2" entry (mobile_half).
		"mobilenetv2": MobileNetV2Config{Expansion: 6, WidthMult: 0.5},
		// RepDistiller's "ResNet50", "ShuffleV1" and "ShuffleV2".
		"resnet50":  BottleneckResNetConfig{Blocks: [4]int{3, 4, 6, 3}, Width: 64},
		"shufflev1": ShuffleNetV1Config{Stem: 24, Outputs: [3]int{240, 480, 960}, Blocks: [3]int{4, 8, 4}, Groups: 3},
		"shufflev2": ShuffleNetV2Config{Stem: 24, Widths: [4]int{116, 232, 464, 1024}, Blocks: [3]int{3, 7, 3}},
	}
	for _, d := range []int{8, 14, 20, 32, 44, 56, 110} {
		m[fmt.Sprintf("resnet%d", d)] = ResNetConfig{Depth: d, Widths: [4]int{16, 16, 32, 64}}
	}
	for name, groups := range vggGroups() {
		m[name] = VGGConfig{Groups: groups}
	}
	return m
}

// Names lists the registered models, sorted by family and then by size.
func Names() []string {
	reg := registry()
	names := make([]string, 0, len(reg))
	for n := range reg {
		names = append(names, n)
	}
	famOrder := map[Family]int{FamilyResNet: 0, FamilyWRN: 1, FamilyVGG: 2, FamilyMobileNetV2: 3,
		FamilyBottleneckResNet: 4, FamilyShuffleNetV1: 5, FamilyShuffleNetV2: 6}
	sort.Slice(names, func(i, j int) bool {
		a, b := reg[names[i]], reg[names[j]]
		if a.Family() != b.Family() {
			return famOrder[a.Family()] < famOrder[b.Family()]
		}
		ka, kb := sizeKey(a), sizeKey(b)
		if !slices.Equal(ka, kb) {
			return slices.Compare(ka, kb) < 0
		}
		return names[i] < names[j]
	})
	return names
}

// sizeKey orders models within a family: ResNets by width then depth, WRNs by depth then width,
// VGGs by depth.
func sizeKey(c Config) []int {
	switch c := c.(type) {
	case ResNetConfig:
		return []int{c.Widths[3], c.Depth}
	case WRNConfig:
		return []int{c.Depth, c.Widen}
	case VGGConfig:
		n := 0
		for _, g := range c.Groups {
			n += len(g)
		}
		return []int{n}
	}
	return nil
}

// Get returns the registered model called name.
func Get(name string) (Spec, error) {
	cfg, ok := registry()[name]
	if !ok {
		return Spec{}, errorf("unknown model %q; known models: %v", name, Names())
	}
	return NewSpec(name, cfg)
}

// ParseMapShape parses an image or map shape written HxWxC ("32x32x3"): three positive integers.
func ParseMapShape(s string) (MapShape, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "x")
	if len(parts) != 3 {
		return MapShape{}, fmt.Errorf("%q: want HxWxC, e.g. 32x32x3", s)
	}
	var dims [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 1 {
			return MapShape{}, fmt.Errorf("%q: %q is not a positive integer", s, p)
		}
		dims[i] = v
	}
	return MapShape{H: dims[0], W: dims[1], C: dims[2]}, nil
}
