package ssl

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// The method registry. A pretraining method is one file holding a type that implements Impl (and
// any of the optional interfaces below) plus one line in methods. The command line (`ifa pretrain
// vit --method`, its --help, `ifa params`, `ifa bench --method`) is generated from this map.

// Impl is one pretraining method.
type Impl interface {
	// Doc is a one-line description for --help.
	Doc() string
	// Augmentations is the number of augmented (global) views of each image a batch carries: 1
	// ([B, H, W, C] images) or 2 ([B, 2, H, W, C]).
	Augmentations() int
	// Loss builds the loss of one batch from the augmented views augs (Augmentations() global
	// crops, then any local crops, each [B, H, W, C]) and the labels ([B], or nil). cfg has its
	// defaults filled in and is valid.
	Loss(ctx *context.Context, encoder EncoderFn, cfg PretrainConfig, augs []*graph.Node, labels *graph.Node) PretrainOutput
}

// Optional interfaces of an Impl.
type (
	// labelUser: the method reads the class labels.
	labelUser interface{ NeedsLabels() bool }
	// checker: configuration checks beyond PretrainConfig.Validate's.
	checker interface {
		Check(cfg PretrainConfig) error
	}
	// defaulter: fills the zero fields of a configuration with the method's defaults (heads,
	// temperature). Without it: the IFACLR projector, no predictor, τ = DefaultTemperature.
	defaulter interface {
		Defaults(cfg PretrainConfig) PretrainConfig
	}
	// momentumUser: the method keeps momentum (EMA) copies of some scopes (see Targets).
	momentumUser interface{ Targets() []TargetPair }
	// multiCropper: the method accepts local crops (PretrainConfig.LocalCrops > 0).
	multiCropper interface{ MultiCrop() bool }
	// temperatureUser: the method reads PretrainConfig.Temperature (`ifa params` shows it).
	temperatureUser interface{ UsesTemperature() bool }
)

// TargetPair names an online scope and its momentum (EMA) copy, both relative to the scope
// PretrainLoss is called in.
type TargetPair struct{ Online, Target string }

// methods is the registry.
var methods = map[Method]Impl{
	MethodLWCLR:    clrMethod{mode: ModeLWCLR},
	MethodSimLWCLR: clrMethod{mode: ModeSimLWCLR},
	MethodSimCLR:   clrMethod{mode: ModeSimCLR},
	MethodSupCon:   clrMethod{mode: ModeSimCLR, labels: true},
	"byol":         byolMethod{},
	"lwbyol":       byolMethod{layerwise: true},
	"simsiam":      simsiamMethod{},
	"lwsimsiam":    simsiamMethod{layerwise: true},
	"mocov3":       mocov3Method{},
	"lwmocov3":     mocov3Method{layerwise: true},
	"lwsupcon":     lwsupconMethod{},
}

// Methods lists the registered pretraining methods by name.
func Methods() []Method {
	out := make([]Method, 0, len(methods))
	for m := range methods {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// MethodNames returns the registered names joined by sep.
func MethodNames(sep string) string {
	names := make([]string, 0, len(methods))
	for _, m := range Methods() {
		names = append(names, string(m))
	}
	return strings.Join(names, sep)
}

// MethodHelp describes every method in one line each, "name: doc".
func MethodHelp() string {
	var b strings.Builder
	for i, m := range Methods() {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", m, methods[m].Doc())
	}
	return b.String()
}

// ParseMethod parses a registered method name.
func ParseMethod(s string) (Method, error) {
	if _, ok := methods[Method(s)]; ok {
		return Method(s), nil
	}
	return "", fmt.Errorf("ssl: pretraining method %q: want one of %s", s, MethodNames(", "))
}

// Impl returns the method's implementation, or nil for an unregistered name.
func (m Method) Impl() Impl { return methods[m] }

// Augmentations is the number of augmented views of each image the method's batches carry: 1 for
// lwclr ([B, H, W, C] images), 2 for the others ([B, 2, H, W, C]). 0 for an unknown method.
func (m Method) Augmentations() int {
	if i := m.Impl(); i != nil {
		return i.Augmentations()
	}
	return 0
}

// NeedsLabels reports whether the method uses the class labels (supcon).
func (m Method) NeedsLabels() bool {
	u, ok := m.Impl().(labelUser)
	return ok && u.NeedsLabels()
}

// Targets lists the momentum (EMA) copies the method keeps, online scope → target scope, relative
// to the scope PretrainLoss is called in; nil for methods without a momentum network. The caller
// updates them after every optimizer step (fit.EMA).
func (m Method) Targets() []TargetPair {
	if u, ok := m.Impl().(momentumUser); ok {
		return u.Targets()
	}
	return nil
}

// MultiCrop reports whether the method accepts local crops.
func (m Method) MultiCrop() bool {
	u, ok := m.Impl().(multiCropper)
	return ok && u.MultiCrop()
}

// MethodDefaults describes the method's default heads and temperature in one line, e.g.
// "projector 2×1024→256 bn/relu, predictor 2×1024→256 bn/relu, momentum".
func MethodDefaults(m Method) string {
	c := PretrainConfig{Method: m}.WithDefaults()
	s := "projector " + c.Projector.describe()
	if c.Predictor.Layers > 0 {
		s += ", predictor " + c.Predictor.describe()
	}
	if m.Targets() != nil {
		s += fmt.Sprintf(", momentum network (τ_base %g → 1)", DefaultMomentum)
	}
	if u, ok := m.Impl().(temperatureUser); ok && u.UsesTemperature() {
		s += fmt.Sprintf(", temperature %g", c.Temperature)
	}
	return s
}

// describe is a short form of a plain MLP head: "<layers>×<hidden>→<out> <norm>/<act>".
func (c HeadConfig) describe() string {
	return fmt.Sprintf("%d×%d→%d %s/%s", c.Layers, c.hiddenWidth(), c.Out, c.Norm, c.Act)
}
