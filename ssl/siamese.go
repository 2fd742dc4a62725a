package ssl

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
)

// The forward pass shared by the predictor methods (BYOL, SimSiam, MoCo v3) and their layer-wise
// variants (METHODS.md §10.5), and the cross-crop pairing of their losses (§10.4).
//
// Crops: augs[0..G−1] are the global crops (G = 2), augs[G..G+M−1] the local ones. Every crop
// passes the online encoder f_θ (one set of variables, ScopeEncoder). For every selected layer
// l ∈ S and every crop v, the group of B layer vectors h_l(x^v) passes the optional rescaler r_l
// (identity for a layer as wide as the last), then the projector g_θ and the predictor q_θ, both
// shared by every layer and crop (one call per group, so batch statistics are per (layer, crop)):
//
//	p_{l,v} = q_θ(g_θ(r_l(h_l(x^v))))
//
// Targets exist for the global crops only: t_g = sg g_ξ(f_ξ,L(x^g)) with the momentum copies
// (BYOL, MoCo v3: ScopeTargetEncoder, ScopeTargetProjector, forward in training mode with their own
// batch statistics), or t_g = sg g_θ(h_L(x^g)) from the online pass itself (SimSiam). Gradient
// reaches blocks 1..l from every layer l unless PretrainConfig.DetachIntermediate.

// DefaultMomentum is τ_base of the momentum methods (BYOL and MoCo v3 on small datasets,
// solo-learn's 0.99 → 1; METHODS.md §10.1, §10.3).
const DefaultMomentum = 0.99

// globalCrops is G, the number of global crops (the targets) of the predictor methods.
const globalCrops = 2

// siamese is the forward pass of a predictor method.
type siamese struct {
	// online[i][v]: p_{l,v} for the i-th selected layer l (ascending, the last layer last) and
	// crop v, [B, D].
	online [][]*graph.Node
	// targets[g]: t_g for global crop g, stop-gradient, [B, D].
	targets []*graph.Node
	views   []View
}

// siameseForward runs the shared forward. layerwise selects S from cfg.Layers (else S = {L});
// momentum takes the targets from the momentum copies (else from the online projections).
func siameseForward(ctx *context.Context, encoder EncoderFn, cfg PretrainConfig, augs []*graph.Node, layerwise, momentum bool) siamese {
	if len(augs) < globalCrops {
		panic(fmt.Errorf("ssl: %s needs %d global crops, got %d", cfg.Method, globalCrops, len(augs)))
	}
	enc := ctx.In(ScopeEncoder)
	feats := make([][]*graph.Node, len(augs))
	for v, x := range augs {
		c := enc
		if v > 0 {
			c = enc.Reuse()
		}
		feats[v] = encoder(c, x).TapVectors
		if err := checkLayers(fmt.Sprintf("crop %d", v), feats[v]); err != nil {
			panic(err)
		}
	}
	nl := len(feats[0])
	last := nl - 1
	layers := []int{last}
	if layerwise {
		var err error
		if layers, err = cfg.selectedLayers().Resolve(nl); err != nil {
			panic(fmt.Errorf("ssl: %s: %w", cfg.Method, err))
		}
		if len(layers) == 0 || layers[len(layers)-1] != last {
			panic(fmt.Errorf("ssl: %s: the layer selection %s must end with the last layer", cfg.Method, cfg.selectedLayers()))
		}
	}
	width := feats[0][last].Shape().Dim(1)
	rescale := newRescalers(ctx, cfg, width)
	proj := SharedHead(ctx.In(ScopeProjector), cfg.Projector)
	pred := SharedHead(ctx.In(ScopePredictor), cfg.Predictor)
	var s siamese
	zLast := make([]*graph.Node, globalCrops)
	for _, l := range layers {
		row := make([]*graph.Node, len(augs))
		for v := range augs {
			h := feats[v][l]
			detach := cfg.DetachIntermediate && l != last
			if detach {
				h = graph.StopGradient(h)
			}
			src := SourceA
			if v > 0 {
				src = SourceB
			}
			s.views = append(s.views, View{Source: src, Crop: v, Layer: l, Input: h, Detached: detach})
			z := proj(rescale(l, h))
			if l == last && v < globalCrops {
				zLast[v] = z
			}
			row[v] = pred(z)
		}
		s.online = append(s.online, row)
	}
	if !momentum {
		for _, z := range zLast {
			s.targets = append(s.targets, graph.StopGradient(z))
		}
		return s
	}
	tenc := ctx.In(ScopeTargetEncoder)
	tproj := SharedHead(ctx.In(ScopeTargetProjector), cfg.Projector)
	for g := range globalCrops {
		c := tenc
		if g > 0 {
			c = tenc.Reuse()
		}
		f := encoder(c, augs[g]).TapVectors
		s.targets = append(s.targets, graph.StopGradient(tproj(f[len(f)-1])))
	}
	// The momentum copies never train: the optimizer must not see them.
	for v := range ctx.IterVariables() {
		for _, sc := range []string{ctx.In(ScopeTargetEncoder).Scope(), ctx.In(ScopeTargetProjector).Scope()} {
			if v.Scope() == sc || strings.HasPrefix(v.Scope(), sc+"/") {
				v.SetTrainable(false)
			}
		}
	}
	return s
}

// embeddings stacks the L2-normalised online outputs, layer-major: [B, |S|·(G+M), D].
func (s siamese) embeddings() *graph.Node {
	var zs []*graph.Node
	for _, row := range s.online {
		for _, p := range row {
			zs = append(zs, L2Normalize(p))
		}
	}
	return graph.Stack(zs, 1)
}

// momentumTargets is the Targets of BYOL and MoCo v3: the encoder and the projector.
func momentumTargets() []TargetPair {
	return []TargetPair{{Online: ScopeEncoder, Target: ScopeTargetEncoder}, {Online: ScopeProjector, Target: ScopeTargetProjector}}
}

// crossCrop sums term(p, t) over every online output online[i][v] and every target t_g of another
// crop (g ≠ v), and returns c/(|S|·P) times the sum, P = G·(G+M−1) (METHODS.md §10.4, §10.5).
// term returns a scalar (its mean over the batch). online: [|S|][G+M] of [B, D]; targets: [G].
func crossCrop(online [][]*graph.Node, targets []*graph.Node, c float64, term func(p, t *graph.Node) *graph.Node) *graph.Node {
	if len(online) == 0 || len(targets) == 0 {
		panic(errors.New("ssl: no online outputs or no targets"))
	}
	g, n := len(targets), len(online[0])
	if n <= 1 || g > n {
		panic(fmt.Errorf("ssl: %d targets for %d crops", g, n))
	}
	var sum *graph.Node
	for _, row := range online {
		if len(row) != n {
			panic(errors.New("ssl: layers with different crop counts"))
		}
		for v, p := range row {
			for gi, t := range targets {
				if gi == v {
					continue
				}
				x := term(p, t)
				if sum == nil {
					sum = x
				} else {
					sum = graph.Add(sum, x)
				}
			}
		}
	}
	pairs := g * (n - 1)
	return graph.MulScalar(sum, c/float64(len(online)*pairs))
}

// cosine is the row-wise cosine similarity of p and t, [B, D] → [B].
func cosine(p, t *graph.Node) *graph.Node {
	return graph.ReduceSum(graph.Mul(L2Normalize(p), L2Normalize(t)), -1)
}

// selectedLayers is cfg.Layers, last:2 when zero.
func (c PretrainConfig) selectedLayers() (sel backbone.LayerSelect) {
	sel = c.Layers
	if isZeroSelect(sel) {
		sel.Last = DefaultCLRLastK
	}
	return sel
}
