package ssl

import (
	"errors"
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"

	"github.com/ifa-toolkit/ifa/backbone"
)

// Layer-wise view assembly (METHODS.md §1.3 for IFACLR, §2.4 for IFACD): which layer vectors become
// the V views of the [B, V, D] SupCon input, in which order, and which are stop-gradient.

// ViewSource names the input a view is drawn from.
type ViewSource int

const (
	SourceA       ViewSource = iota // the first augmentation (IFACLR)
	SourceB                         // the second augmentation (IFACLR simlwclr / simclr)
	SourceStudent                   // the student's final pooled feature (IFACD)
	SourceTeacher                   // a teacher tap (IFACD)
)

// String returns "a", "b", "student" or "teacher".
func (s ViewSource) String() string {
	switch s {
	case SourceA:
		return "a"
	case SourceB:
		return "b"
	case SourceStudent:
		return "student"
	case SourceTeacher:
		return "teacher"
	}
	return fmt.Sprintf("ViewSource(%d)", int(s))
}

// View is one layer vector chosen as a contrastive view, before the heads.
type View struct {
	Source ViewSource
	// Crop is the 0-based crop index of IFACLR's and the predictor methods' views: 0 and 1 the
	// global crops (augmentations a and b), then the local ones; 0 for IFACD's views.
	Crop int
	// Layer is the 0-based index of the vector in its source's layer list (0 for the student's single
	// pooled feature).
	Layer int
	// Input: [B, D_l], the layer vector, already passed through graph.StopGradient when Detached.
	Input *graph.Node
	// Detached reports whether Input is stop-gradient (no gradient reaches the encoder through it;
	// heads applied to it still train).
	Detached bool
	// AnchorOnly marks a contrastive method's local-crop view: an anchor only, never a positive,
	// negative or denominator term of another anchor (SupConWithAnchors).
	AnchorOnly bool
}

// CLRMode is the layer-wise view construction of IFACLR (layerwiseclr's --mode).
type CLRMode int

const (
	// ModeLWCLR: one augmentation; views = its last layer, then the other selected layers
	// (z_1 = h_L(x), z_{1+j} = sg[h_{L−k+j}(x)] for last:k). This is IFACLR.
	ModeLWCLR CLRMode = iota
	// ModeSimLWCLR: two augmentations; views = the last layer of a, then the selected layers of b
	// (z_1 = h_L(x_a), z_{1+j} = h_{L−k+j}(x_b), j = 1..k).
	ModeSimLWCLR
	// ModeSimCLR: two augmentations; views = the last layer of each (plain SimCLR).
	ModeSimCLR
)

// String returns "lwclr", "simlwclr" or "simclr".
func (m CLRMode) String() string {
	switch m {
	case ModeLWCLR:
		return "lwclr"
	case ModeSimLWCLR:
		return "simlwclr"
	case ModeSimCLR:
		return "simclr"
	}
	return fmt.Sprintf("CLRMode(%d)", int(m))
}

// ParseCLRMode parses "lwclr", "simlwclr" or "simclr".
func ParseCLRMode(s string) (CLRMode, error) {
	for _, m := range []CLRMode{ModeLWCLR, ModeSimLWCLR, ModeSimCLR} {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("ssl: view mode %q: want lwclr, simlwclr or simclr", s)
}

// DefaultCLRLastK is layerwiseclr's --cont_layers_range default k: views from the last 2 layers.
const DefaultCLRLastK = 2

// CLRInputs are the per-layer vectors of one or two augmentations, each in forward order, each
// [B, D_l] (backbone.Features.TapVectors of each augmentation).
type CLRInputs struct {
	A []*graph.Node // the first (or only) augmentation
	B []*graph.Node // the second augmentation (ModeSimLWCLR, ModeSimCLR)
}

// CLRViewOptions configure CLRViews.
type CLRViewOptions struct {
	Mode CLRMode
	// Layers selects the layers taking part (the zero value means last:DefaultCLRLastK): in
	// ModeLWCLR the selection over A's layers (A's last layer is always view 0 and is not repeated);
	// in ModeSimLWCLR the layers of B that follow A's last layer. Ignored in ModeSimCLR.
	Layers backbone.LayerSelect
	// IntermediateGradient lets gradient reach the encoder through the non-final layer views of
	// ModeLWCLR. The reference detaches them (false).
	IntermediateGradient bool
	// StopGradientB detaches every view of augmentation B (ModeSimLWCLR, ModeSimCLR); the reference's
	// --stop_gradient, off by default.
	StopGradientB bool
}

// CLRViews chooses the IFACLR views (METHODS.md §1.3), in view order. The heads (rescalers, the
// shared projector) are applied afterwards, e.g. with EmbedViews.
func CLRViews(in CLRInputs, opts CLRViewOptions) ([]View, error) {
	sel := opts.Layers
	if isZeroSelect(sel) {
		sel = backbone.LayerSelect{Last: DefaultCLRLastK}
	}
	if err := checkLayers("a", in.A); err != nil {
		return nil, err
	}
	la := len(in.A)
	switch opts.Mode {
	case ModeLWCLR:
		idx, err := sel.Resolve(la)
		if err != nil {
			return nil, fmt.Errorf("ssl: lwclr views: %w", err)
		}
		views := []View{{Source: SourceA, Layer: la - 1, Input: in.A[la-1]}}
		for _, l := range idx {
			if l == la-1 {
				continue
			}
			views = append(views, newView(SourceA, l, in.A[l], !opts.IntermediateGradient))
		}
		if len(views) < 2 {
			return nil, fmt.Errorf("ssl: lwclr views: layer selection %s of %d layers gives only the last layer; "+
				"lwclr needs at least 2 views", sel, la)
		}
		return views, nil
	case ModeSimLWCLR, ModeSimCLR:
		if err := checkLayers("b", in.B); err != nil {
			return nil, err
		}
		if err := sameBatch(in.A[0], in.B[0]); err != nil {
			return nil, fmt.Errorf("ssl: %s views: %w", opts.Mode, err)
		}
		lb := len(in.B)
		views := []View{{Source: SourceA, Layer: la - 1, Input: in.A[la-1]}}
		if opts.Mode == ModeSimCLR {
			return append(views, newView(SourceB, lb-1, in.B[lb-1], opts.StopGradientB)), nil
		}
		idx, err := sel.Resolve(lb)
		if err != nil {
			return nil, fmt.Errorf("ssl: simlwclr views: %w", err)
		}
		for _, l := range idx {
			views = append(views, newView(SourceB, l, in.B[l], opts.StopGradientB))
		}
		return views, nil
	}
	return nil, fmt.Errorf("ssl: unknown view mode %d", int(opts.Mode))
}

// DefaultCDLastL is the talk's ifacd2: the teacher's last L = 2 taps.
const DefaultCDLastL = 2

// CDViewOptions configure CDViews.
type CDViewOptions struct {
	// Taps selects the teacher taps (the zero value means last:DefaultCDLastL; ifacdL = last:L).
	Taps backbone.LayerSelect
	// TeacherGradient lets gradient flow back through the teacher views into the teacher. The
	// reference detaches them (rs_detach, false here).
	TeacherGradient bool
}

// CDViews chooses the IFACD views (METHODS.md §2.4): the student's final pooled feature first, then
// the selected teacher taps in selection order (forward order for last:L and all). student: [B, D_s];
// teacherTaps: the teacher's tap vectors in forward order, each [B, C_l].
func CDViews(student *graph.Node, teacherTaps []*graph.Node, opts CDViewOptions) ([]View, error) {
	sel := opts.Taps
	if isZeroSelect(sel) {
		sel = backbone.LayerSelect{Last: DefaultCDLastL}
	}
	if student == nil || student.Rank() != 2 {
		return nil, fmt.Errorf("ssl: ifacd views: the student feature must be [B, D], got %v", shapeOf(student))
	}
	if err := checkLayers("teacher", teacherTaps); err != nil {
		return nil, err
	}
	if err := sameBatch(student, teacherTaps[0]); err != nil {
		return nil, fmt.Errorf("ssl: ifacd views: %w", err)
	}
	idx, err := sel.Resolve(len(teacherTaps))
	if err != nil {
		return nil, fmt.Errorf("ssl: ifacd teacher taps: %w", err)
	}
	views := []View{{Source: SourceStudent, Layer: 0, Input: student}}
	for _, l := range idx {
		views = append(views, newView(SourceTeacher, l, teacherTaps[l], !opts.TeacherGradient))
	}
	return views, nil
}

// EmbedViews maps every view through embed (its rescaler and projector, returning [B, D] with the
// same D for every view), L2-normalises each along D and stacks them in view order: [B, V, D], the
// SupCon input.
func EmbedViews(views []View, embed func(v View) *graph.Node) *graph.Node {
	if len(views) == 0 {
		panic(errors.New("ssl: EmbedViews: no views"))
	}
	zs := make([]*graph.Node, len(views))
	for i, v := range views {
		z := embed(v)
		if z.Rank() != 2 {
			panic(fmt.Errorf("ssl: EmbedViews: view %d (%s layer %d) embeds to %s, want [B, D]", i, v.Source, v.Layer, z.Shape()))
		}
		if i > 0 && !z.Shape().Equal(zs[0].Shape()) {
			panic(fmt.Errorf("ssl: EmbedViews: view %d embeds to %s but view 0 to %s", i, z.Shape(), zs[0].Shape()))
		}
		zs[i] = L2Normalize(z)
	}
	return graph.Stack(zs, 1)
}

func newView(src ViewSource, layer int, x *graph.Node, detach bool) View {
	if detach {
		x = graph.StopGradient(x)
	}
	crop := 0
	if src == SourceB {
		crop = 1
	}
	return View{Source: src, Crop: crop, Layer: layer, Input: x, Detached: detach}
}

func isZeroSelect(s backbone.LayerSelect) bool {
	return !s.All && s.Last == 0 && len(s.Indices) == 0
}

func checkLayers(name string, layers []*graph.Node) error {
	if len(layers) == 0 {
		return fmt.Errorf("ssl: no layer vectors for %s", name)
	}
	for i, x := range layers {
		if x == nil || x.Rank() != 2 {
			return fmt.Errorf("ssl: layer vector %d of %s must be [B, D], got %v", i, name, shapeOf(x))
		}
		if x.Shape().Dim(0) != layers[0].Shape().Dim(0) {
			return fmt.Errorf("ssl: layer vector %d of %s has batch %d, layer 0 has %d", i, name,
				x.Shape().Dim(0), layers[0].Shape().Dim(0))
		}
	}
	return nil
}

func sameBatch(a, b *graph.Node) error {
	if a.Shape().Dim(0) != b.Shape().Dim(0) {
		return fmt.Errorf("batch sizes differ: %d and %d", a.Shape().Dim(0), b.Shape().Dim(0))
	}
	return nil
}

func shapeOf(x *graph.Node) any {
	if x == nil {
		return "nil"
	}
	return x.Shape()
}
