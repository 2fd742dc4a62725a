package backbone

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/graph"
)

// Features is what every ifa encoder returns for a batch of B images.
//
// Layout conventions: images and feature maps are channels-last (NHWC, [B, H, W, C]); token grids
// are [B, T, D].
type Features struct {
	// Logits: [B, NumClasses], or nil for an encoder built without a classifier.
	Logits *graph.Node

	// Pooled: [B, D], the final pooled feature fed to the classifier (RepDistiller's f_last; a ViT's
	// final per-layer vector).
	Pooled *graph.Node

	// Stages: the stage feature maps of RepDistiller's is_feat list without the final pooled vector
	// (CNN: f0 stem, f1..f3 (or f4 for VGG) stage outputs, NHWC). Empty for encoders without stages.
	Stages []*graph.Node

	// PreactStages: like Stages but taken before the final ReLU of each stage (RepDistiller's
	// preact=True variant). May be nil when an encoder has no such variant.
	PreactStages []*graph.Node

	// Taps: the ordered layer taps used as layer-wise views, in forward order (CNN: the last stage's
	// ReLU outputs, NHWC maps, METHODS.md §2.2; ViT: the residual stream after every block, [B, T, D]).
	Taps []*graph.Node

	// TapVectors: one [B, C_l] vector per tap, aligned with Taps (CNN: global average pool of the tap;
	// ViT: CLS token through the shared LayerNorm, or mean pooling).
	TapVectors []*graph.Node
}

// GlobalAvgPool averages a channels-last map [B, H, W, C] (or any [B, ..., C]) over its spatial axes,
// returning [B, C]. A rank-2 input is returned as is.
func GlobalAvgPool(x *graph.Node) *graph.Node {
	if x.Rank() <= 2 {
		return x
	}
	axes := make([]int, 0, x.Rank()-2)
	for a := 1; a < x.Rank()-1; a++ {
		axes = append(axes, a)
	}
	return graph.ReduceMean(x, axes...)
}

// LayerSelect chooses a subset of n ordered layers.
//
// Its text form (Parse / String) is one of:
//   - "all": every layer;
//   - "last:K" or a bare "K" with no sign: the last K layers;
//   - a comma-separated list of indices, 0-based, negative counting from the end ("-1" is the last
//     layer), e.g. "0,5,-1" or "-2".
type LayerSelect struct {
	All     bool
	Last    int
	Indices []int
}

// ParseLayerSelect parses the text form described on LayerSelect.
func ParseLayerSelect(s string) (LayerSelect, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return LayerSelect{}, fmt.Errorf("layer selection is empty: want \"all\", \"last:K\" or a list of indices like \"0,-1\"")
	case s == "all":
		return LayerSelect{All: true}, nil
	case strings.HasPrefix(s, "last:"):
		k, err := strconv.Atoi(strings.TrimPrefix(s, "last:"))
		if err != nil || k < 1 {
			return LayerSelect{}, fmt.Errorf("layer selection %q: want last:K with K >= 1", s)
		}
		return LayerSelect{Last: k}, nil
	}
	if !strings.Contains(s, ",") && !strings.HasPrefix(s, "-") {
		k, err := strconv.Atoi(s)
		if err == nil {
			if k < 1 {
				return LayerSelect{}, fmt.Errorf("layer selection %q: a bare number means the last K layers and needs K >= 1", s)
			}
			return LayerSelect{Last: k}, nil
		}
	}
	var sel LayerSelect
	for _, part := range strings.Split(s, ",") {
		i, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil {
			return LayerSelect{}, fmt.Errorf("layer selection %q: %q is not an integer index", s, part)
		}
		sel.Indices = append(sel.Indices, i)
	}
	return sel, nil
}

// String returns the text form accepted by ParseLayerSelect.
func (s LayerSelect) String() string {
	switch {
	case s.All:
		return "all"
	case s.Last > 0:
		return fmt.Sprintf("last:%d", s.Last)
	}
	parts := make([]string, len(s.Indices))
	for i, v := range s.Indices {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ",")
}

// Resolve returns the selected 0-based indices, in increasing layer order for All/Last and in the
// given order for explicit indices, for a model with n layers.
func (s LayerSelect) Resolve(n int) ([]int, error) {
	if n < 1 {
		return nil, fmt.Errorf("layer selection %s: the model has no layers", s)
	}
	switch {
	case s.All:
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out, nil
	case s.Last > 0:
		if s.Last > n {
			return nil, fmt.Errorf("layer selection last:%d: the model has only %d layers", s.Last, n)
		}
		out := make([]int, s.Last)
		for i := range out {
			out[i] = n - s.Last + i
		}
		return out, nil
	case len(s.Indices) == 0:
		return nil, fmt.Errorf("layer selection is empty")
	}
	out := make([]int, len(s.Indices))
	seen := make(map[int]bool, len(s.Indices))
	for i, v := range s.Indices {
		j := v
		if j < 0 {
			j += n
		}
		if j < 0 || j >= n {
			return nil, fmt.Errorf("layer selection %s: index %d out of range for %d layers", s, v, n)
		}
		if seen[j] {
			return nil, fmt.Errorf("layer selection %s: layer %d selected twice", s, j)
		}
		seen[j] = true
		out[i] = j
	}
	return out, nil
}

// TokenGrid reshapes a ViT's or MLP-Mixer's token tap [B, T, D] to a channels-last grid
// [B, rows, cols, D] for map-based heads (rescalers, hint regressors): T must be rows·cols (a
// Mixer's taps) or 1 + rows·cols (a ViT's, whose leading CLS token is dropped). rows and cols are the
// image size over the patch size (vit.MixerConfig.Grid, vit.Config.Grid).
func TokenGrid(tap *graph.Node, rows, cols int) *graph.Node {
	if tap.Rank() != 3 || rows < 1 || cols < 1 {
		panic(fmt.Errorf("backbone: token grid: tap %s, grid %dx%d: want a [B, T, D] tap and a positive grid", tap.Shape(), rows, cols))
	}
	b, t, d := tap.Shape().Dim(0), tap.Shape().Dim(1), tap.Shape().Dim(2)
	switch t {
	case rows * cols:
	case 1 + rows*cols:
		tap = graph.Slice(tap, graph.AxisRange(), graph.AxisRange(1, t), graph.AxisRange())
	default:
		panic(fmt.Errorf("backbone: token grid: %d tokens do not fill a %dx%d grid (with or without a CLS token)", t, rows, cols))
	}
	return graph.Reshape(tap, b, rows, cols, d)
}
