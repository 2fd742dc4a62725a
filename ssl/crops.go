package ssl

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/graph"
)

// Multi-crop (METHODS.md §10.4; SwAV, DINO): besides the G global crops every image gives M
// smaller local crops. Local crops are online (query, anchor) views only: in the predictor methods
// every layer of every crop is paired with the target of every global crop but its own, never with
// a local crop's; in the contrastive methods the local crops' views are extra anchors against the
// global crops' views (clrMethod). The spec
// "2x28:0.4-1,6x14:0.1-0.4" reads: 2 global crops of 28×28 pixels covering 40–100 % of the image's
// area, then 6 local crops of 14×14 covering 10–40 %. Sizes must be multiples of the ViT's patch
// (a patch embedding floors the grid and would silently drop pixels).

// CropGroup is one comma-separated group of a crop spec: Count crops of Size×Size pixels whose
// area is a fraction in [ScaleMin, ScaleMax] of the image's.
type CropGroup struct {
	Count, Size        int
	ScaleMin, ScaleMax float64
}

// Crops is a crop spec: the global crops first, then zero or more groups of local crops.
type Crops []CropGroup

// ParseCrops parses "NxS:a-b,NxS:a-b,…" (see above); the first group is the global crops.
func ParseCrops(s string) (Crops, error) {
	var out Crops
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		g, err := parseCropGroup(part)
		if err != nil {
			return nil, fmt.Errorf("crop group %q: %w (want COUNTxSIZE:MIN-MAX, e.g. 6x14:0.1-0.4)", part, err)
		}
		out = append(out, g)
	}
	return out, nil
}

func parseCropGroup(s string) (CropGroup, error) {
	var g CropGroup
	shape, scale, ok := strings.Cut(s, ":")
	if !ok {
		return g, fmt.Errorf("no ':' before the scale range")
	}
	n, size, ok := strings.Cut(shape, "x")
	if !ok {
		return g, fmt.Errorf("no 'x' between the count and the size")
	}
	lo, hi, ok := strings.Cut(scale, "-")
	if !ok {
		return g, fmt.Errorf("no '-' in the scale range")
	}
	var err error
	if g.Count, err = strconv.Atoi(n); err != nil || g.Count < 1 {
		return g, fmt.Errorf("count %q, want an integer >= 1", n)
	}
	if g.Size, err = strconv.Atoi(size); err != nil || g.Size < 1 {
		return g, fmt.Errorf("size %q, want an integer >= 1", size)
	}
	if g.ScaleMin, err = strconv.ParseFloat(lo, 64); err != nil {
		return g, fmt.Errorf("scale %q: %v", lo, err)
	}
	if g.ScaleMax, err = strconv.ParseFloat(hi, 64); err != nil {
		return g, fmt.Errorf("scale %q: %v", hi, err)
	}
	if !(g.ScaleMin > 0 && g.ScaleMin <= g.ScaleMax && g.ScaleMax <= 1) {
		return g, fmt.Errorf("scale range %g-%g, want 0 < min <= max <= 1", g.ScaleMin, g.ScaleMax)
	}
	return g, nil
}

// String gives the spec back in ParseCrops' syntax.
func (c Crops) String() string {
	parts := make([]string, len(c))
	for i, g := range c {
		parts[i] = fmt.Sprintf("%dx%d:%g-%g", g.Count, g.Size, g.ScaleMin, g.ScaleMax)
	}
	return strings.Join(parts, ",")
}

// Views is the total number of crops per image.
func (c Crops) Views() int {
	n := 0
	for _, g := range c {
		n += g.Count
	}
	return n
}

// Check reports whether the spec fits method m on images of size×size pixels cut into patch×patch
// patches: G = m.Augmentations() global crops of the image's size, local crops only for the
// methods that take them, every size a multiple of the patch.
func (c Crops) Check(m Method, size, patch int) error {
	if len(c) == 0 {
		return fmt.Errorf("no crop groups")
	}
	if g := c[0]; g.Count != m.Augmentations() || g.Size != size {
		return fmt.Errorf("the first group is the global crops: %s wants %d of %dx%d (the image size), got %dx%d",
			m, m.Augmentations(), size, size, g.Count, g.Size)
	}
	if len(c) > 1 && !m.MultiCrop() {
		return fmt.Errorf("%s takes no local crops (the methods that do: %s)", m, strings.Join(multiCropMethods(), ", "))
	}
	for _, g := range c[1:] {
		if g.Size > size || g.Size%patch != 0 {
			return fmt.Errorf("local crops of %d px: want a multiple of the patch %d, at most %d", g.Size, patch, size)
		}
	}
	return nil
}

// SplitCrops splits a batch images [B, V, H, W, C] of V = c.Views() crops (each local crop in the
// top-left corner of its H×W canvas) into the global crops [B, G, H, W, C] and one batch
// [B, M_k, s_k, s_k, C] per local group, the inputs of PretrainLossCrops.
func SplitCrops(images *graph.Node, c Crops) (*graph.Node, []*graph.Node) {
	if images.Rank() != 5 || images.Shape().Dim(1) != c.Views() {
		panic(fmt.Errorf("ssl: crops %s: images %s, want [B, %d, H, W, C]", c, images.Shape(), c.Views()))
	}
	global := graph.Slice(images, graph.AxisRange(), graph.AxisRange(0, c[0].Count))
	var locals []*graph.Node
	at := c[0].Count
	for _, g := range c[1:] {
		locals = append(locals, graph.Slice(images, graph.AxisRange(), graph.AxisRange(at, at+g.Count),
			graph.AxisRange(0, g.Size), graph.AxisRange(0, g.Size)))
		at += g.Count
	}
	return global, locals
}

// multiCropMethods lists the registered methods that accept local crops.
func multiCropMethods() []string {
	var out []string
	for _, m := range Methods() {
		if m.MultiCrop() {
			out = append(out, string(m))
		}
	}
	return out
}
