package backbone

import (
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/graph"
)

// TapSource names the ordered list of layers a TapChoice selects from.
type TapSource string

const (
	// SourceTaps is Features.Taps with Features.TapVectors: a CNN's last-stage ReLU outputs
	// (METHODS.md §2.2), a ViT's or MLP-Mixer's block outputs.
	SourceTaps TapSource = "taps"
	// SourceBlocks is the block outputs (BlockOutputs): a CNN's stage outputs Stages[1:]
	// (RepDistiller's f1 … f_last, without the stem f0) with their global average pools; for an
	// encoder without stages (ViT, MLP-Mixer) its Taps and TapVectors, which are block outputs already.
	SourceBlocks TapSource = "blocks"
)

// TapChoice chooses which layers of an encoder — student or teacher — serve as its taps: the talk's
// "blocks vs last" ablation (METHODS.md §9.1).
//
// Its text form (ParseTapChoice / String), as a --taps flag takes it:
//   - "last:K": the last K of SourceTaps (IFACD's default list, METHODS.md §2.4);
//   - "blocks": every block output (SourceBlocks);
//   - "blocks:SEL" or "taps:SEL": the LayerSelect SEL ("all", "last:K", a bare K for the last K, or
//     indices) applied to that source, e.g. "blocks:last:2" or "taps:0,-1";
//   - "taps": every entry of SourceTaps;
//   - an explicit list of indices into SourceTaps, 0-based, negative from the end: "0,2,-1" (a bare
//     "K" means the last K, as in LayerSelect; "all" means every tap).
type TapChoice struct {
	// Source is the list selected from.
	Source TapSource
	// Layers selects from it.
	Layers LayerSelect
}

// ParseTapChoice parses the text form described on TapChoice.
func ParseTapChoice(s string) (TapChoice, error) {
	text := strings.TrimSpace(s)
	src, rest := SourceTaps, text
	for _, cand := range []TapSource{SourceBlocks, SourceTaps} {
		name := string(cand)
		if text == name {
			return TapChoice{Source: cand, Layers: LayerSelect{All: true}}, nil
		}
		if after, ok := strings.CutPrefix(text, name+":"); ok {
			src, rest = cand, after
			break
		}
	}
	sel, err := ParseLayerSelect(rest)
	if err != nil {
		return TapChoice{}, fmt.Errorf("taps %q: %w (want blocks, last:K, taps, blocks:SEL, taps:SEL or indices such as 0,-1)", s, err)
	}
	return TapChoice{Source: src, Layers: sel}, nil
}

// String returns the canonical text form accepted by ParseTapChoice.
func (c TapChoice) String() string {
	switch {
	case c.Source == SourceBlocks && c.Layers.All:
		return string(SourceBlocks)
	case c.Source == SourceBlocks:
		return string(SourceBlocks) + ":" + c.Layers.String()
	case c.Layers.All:
		return string(SourceTaps)
	}
	return c.Layers.String()
}

// Validate reports whether the choice names a known source and a non-empty selection.
func (c TapChoice) Validate() error {
	if c.Source != SourceTaps && c.Source != SourceBlocks {
		return fmt.Errorf("taps: unknown source %q: want %q or %q", c.Source, SourceTaps, SourceBlocks)
	}
	if !c.Layers.All && c.Layers.Last < 1 && len(c.Layers.Indices) == 0 {
		return fmt.Errorf("taps %s: empty selection", c)
	}
	return nil
}

// Resolve returns the selected 0-based indices into the choice's source for an encoder with numTaps
// taps and numBlocks block outputs (the lengths of the lists Select returns), in the selection's order.
func (c TapChoice) Resolve(numTaps, numBlocks int) ([]int, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	n := numTaps
	if c.Source == SourceBlocks {
		n = numBlocks
	}
	if n < 1 {
		return nil, fmt.Errorf("taps %s: the model has no %s", c, c.Source)
	}
	idx, err := c.Layers.Resolve(n)
	if err != nil {
		return nil, fmt.Errorf("taps %s: %w (the model has %d %s)", c, err, n, c.Source)
	}
	return idx, nil
}

// Select returns the chosen layers of f: their maps (NHWC maps for a CNN, token grids [B, T, D] for
// a ViT or MLP-Mixer) and their vectors [B, C], aligned. A map is nil where the source has only a
// vector.
func (c TapChoice) Select(f Features) (maps, vectors []*graph.Node, err error) {
	srcMaps, srcVectors := f.Taps, f.TapVectors
	if c.Source == SourceBlocks {
		srcMaps, srcVectors = BlockOutputs(f)
	}
	if len(srcMaps) > 0 && len(srcVectors) > 0 && len(srcMaps) != len(srcVectors) {
		return nil, nil, fmt.Errorf("taps %s: the model has %d %s maps but %d vectors", c, len(srcMaps), c.Source, len(srcVectors))
	}
	n := max(len(srcMaps), len(srcVectors))
	idx, err := c.Resolve(n, n)
	if err != nil {
		return nil, nil, err
	}
	maps, vectors = make([]*graph.Node, len(idx)), make([]*graph.Node, len(idx))
	for k, i := range idx {
		if i < len(srcMaps) {
			maps[k] = srcMaps[i]
		}
		if i < len(srcVectors) {
			vectors[k] = srcVectors[i]
		} else {
			vectors[k] = GlobalAvgPool(srcMaps[i])
		}
	}
	return maps, vectors, nil
}

// NumBlocks is the number of block outputs of f (the length of BlockOutputs' lists).
func NumBlocks(f Features) int {
	if len(f.Stages) > 0 {
		return max(len(f.Stages)-1, 0)
	}
	return max(len(f.Taps), len(f.TapVectors))
}

// BlockOutputs returns the block outputs of f in forward order with their vectors: for an encoder
// with stages (a CNN), Stages[1:] and their global average pools; for one without (a ViT or
// MLP-Mixer), Taps and TapVectors.
func BlockOutputs(f Features) (maps, vectors []*graph.Node) {
	if len(f.Stages) == 0 {
		return f.Taps, f.TapVectors
	}
	if len(f.Stages) < 2 {
		return nil, nil
	}
	maps = f.Stages[1:]
	vectors = make([]*graph.Node, len(maps))
	for i, m := range maps {
		vectors[i] = GlobalAvgPool(m)
	}
	return maps, vectors
}
