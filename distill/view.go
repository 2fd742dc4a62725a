package distill

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/catch"
)

// View says how an encoder's features are shown to the distillers, so that any pair of CNN, ViT
// and MLP-Mixer can be distilled (METHODS.md §2.6, §9.1).
//
//   - A token encoder (ViT, MLP-Mixer; Rows > 0) has its token taps [B, T, D] reshaped to
//     channels-last grids [B, Rows, Cols, D] (backbone.TokenGrid; a ViT's CLS token dropped), which the
//     map-based distillers and the Rescaler V2 take like a CNN's maps. Its block grids become its
//     stage maps after an empty stem: Stages = [nil, grid_0, …, grid_{L−1}], so Stages[1:] (what AT,
//     NST and VID pair, FitNets indexes and SP takes the last of) are the blocks. Its tap vectors
//     (the ViT's normalised CLS tokens, the Mixer's mean tokens) are kept.
//   - Taps, when set, chooses the layers (backbone.TapChoice: "blocks", "last:K", indices): Taps
//     and TapVectors become the chosen layers (what IFACD contrasts for a teacher), and the stage
//     maps after the stem become the chosen maps, so the map-based baselines pair the chosen
//     layers. PreactStages are dropped.
//
// The zero View shows a CNN's features unchanged.
type View struct {
	// Rows, Cols: the token grid of a ViT or MLP-Mixer (vit.Config.Grid, vit.MixerConfig.Grid); 0
	// for a CNN.
	Rows, Cols int
	// Taps: the layers shown as taps and stage maps; nil keeps the encoder's own.
	Taps *backbone.TapChoice
}

// IsZero reports whether v shows features unchanged.
func (v View) IsZero() bool { return v.Rows == 0 && v.Cols == 0 && v.Taps == nil }

// Apply returns f as the view shows it. It fails when a token tap does not fill the grid or the tap
// choice does not fit the encoder.
func (v View) Apply(f backbone.Features) (out backbone.Features, err error) {
	if v.IsZero() {
		return f, nil
	}
	out = f
	token := v.Rows > 0 || v.Cols > 0
	if token {
		if len(f.Stages) > 0 {
			return f, fmt.Errorf("distill: view: a token grid %dx%d for an encoder with stage maps", v.Rows, v.Cols)
		}
		out.Taps = make([]*graph.Node, len(f.Taps))
		for i, tap := range f.Taps {
			if out.Taps[i], err = tokenGrid(tap, v.Rows, v.Cols); err != nil {
				return f, fmt.Errorf("distill: view: tap %d: %w", i, err)
			}
		}
	}
	var stem *graph.Node
	if len(f.Stages) > 0 {
		stem = f.Stages[0]
	}
	maps := out.Taps // a token encoder's blocks are its taps
	if v.Taps != nil {
		var vecs []*graph.Node
		if maps, vecs, err = v.Taps.Select(out); err != nil {
			return f, fmt.Errorf("distill: %w", err)
		}
		for i, m := range maps {
			if m == nil {
				return f, fmt.Errorf("distill: taps %s: layer %d has a vector but no map", v.Taps, i)
			}
		}
		out.Taps, out.TapVectors, out.PreactStages = maps, vecs, nil
	} else if !token {
		return out, nil
	}
	out.Stages = append([]*graph.Node{stem}, maps...)
	return out, nil
}

// tokenGrid is backbone.TokenGrid with its panic returned as an error.
func tokenGrid(tap *graph.Node, rows, cols int) (grid *graph.Node, err error) {
	defer catch.Recover(&err, "")
	return backbone.TokenGrid(tap, rows, cols), nil
}

// Wrap returns enc with its features shown through v (a graph-building function: it panics where
// Apply fails; DescribeEncoder turns that into an error).
func (v View) Wrap(enc Encoder) Encoder {
	if v.IsZero() {
		return enc
	}
	return func(ctx *context.Context, images *graph.Node) backbone.Features {
		f, err := v.Apply(enc(ctx, images))
		if err != nil {
			panic(err)
		}
		return f
	}
}
