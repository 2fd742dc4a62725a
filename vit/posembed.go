package vit

import (
	"fmt"
	"math"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// Position embeddings for images smaller (or larger) than the configuration's, e.g. the local
// crops of multi-crop pretraining (METHODS.md §10.4, DINO's interpolate_pos_encoding): the CLS
// slot is kept, the gh×gw grid of patch embeddings is resized bicubically to the input's grid
// gh'×gw' and flattened again. The resize is specified by output size, as PyTorch's
// F.interpolate(mode="bicubic", align_corners=False, size=...) does it: output pixel o samples
// the input at s = (o + ½)·(in/out) − ½ with the cubic convolution kernel of Keys (a = −0.75) on
// the 4 nearest input pixels, indices clamped to the border. A local crop therefore sees
// embeddings spanning the whole image, not its top-left corner. The table is returned unchanged
// when the grids match.

// cubicA is the cubic convolution kernel's parameter (PyTorch's and OpenCV's).
const cubicA = -0.75

// cubicWeight is Keys' cubic convolution kernel W(x) with a = cubicA.
func cubicWeight(x float64) float64 {
	x = math.Abs(x)
	switch {
	case x <= 1:
		return ((cubicA+2)*x-(cubicA+3))*x*x + 1
	case x < 2:
		return ((cubicA*x-5*cubicA)*x+8*cubicA)*x - 4*cubicA
	}
	return 0
}

// BicubicMatrix is the [out, in] matrix M of a 1-D bicubic resize by output size (align_corners
// false, border indices clamped): y = M·x. Each row sums to 1; in == out gives the identity.
func BicubicMatrix(in, out int) [][]float64 {
	m := make([][]float64, out)
	scale := float64(in) / float64(out)
	for o := range out {
		m[o] = make([]float64, in)
		if in == out {
			m[o][o] = 1
			continue
		}
		s := (float64(o)+0.5)*scale - 0.5
		i0 := int(math.Floor(s))
		t := s - float64(i0)
		for k := -1; k <= 2; k++ {
			idx := min(max(i0+k, 0), in-1)
			m[o][idx] += cubicWeight(t - float64(k))
		}
	}
	return m
}

// InterpolatePosEmbed resizes a position-embedding table pos [1 + gh·gw, D] (CLS first, patches in
// row-major order) to the grid gh2×gw2: [1 + gh2·gw2, D]. The resize matrices are constants, so
// the gradient reaches every entry of pos.
func InterpolatePosEmbed(pos *graph.Node, gh, gw, gh2, gw2 int) *graph.Node {
	if pos.Rank() != 2 || pos.Shape().Dim(0) != 1+gh*gw {
		panic(fmt.Errorf("vit: position embeddings %s for a %dx%d grid: want [%d, D]", pos.Shape(), gh, gw, 1+gh*gw))
	}
	if gh == gh2 && gw == gw2 {
		return pos
	}
	if gh2 < 1 || gw2 < 1 {
		panic(fmt.Errorf("vit: position embeddings for an empty %dx%d grid", gh2, gw2))
	}
	g := pos.Graph()
	d := pos.Shape().Dim(1)
	cls := graph.Slice(pos, graph.AxisRange(0, 1))
	grid := graph.Reshape(graph.Slice(pos, graph.AxisRange(1, 1+gh*gw)), gh, gw, d)
	constant := func(m [][]float64) *graph.Node {
		rows, cols := len(m), len(m[0])
		flat := make([]float64, 0, rows*cols)
		for _, r := range m {
			flat = append(flat, r...)
		}
		return graph.ConvertDType(graph.Const(g, tensors.FromFlatDataAndDimensions(flat, rows, cols)), pos.DType())
	}
	mh, mw := constant(BicubicMatrix(gh, gh2)), constant(BicubicMatrix(gw, gw2))
	out := graph.Einsum("ai,ijd->ajd", mh, grid) // rows
	out = graph.Einsum("ajd,bj->abd", out, mw)   // columns
	return graph.Concatenate([]*graph.Node{cls, graph.Reshape(out, gh2*gw2, d)}, 0)
}
