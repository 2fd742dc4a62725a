package vit

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/internal/nn"
)

// Scope and variable names: the checkpoint format (see testdata/scopes_*.golden). All are relative
// to the context scope Features is called in.
const (
	ScopePatchEmbed = "patch_embed" // weights [P·P·C, D], biases [D]
	VarClsToken     = "cls_token"   // [D], in the model scope
	VarPosEmbed     = "pos_embed"   // [T, D], in the model scope
	ScopeNorm       = "norm_layer"  // shared per-layer LayerNorm: gain [D], offset [D] (PoolCLS only)
	ScopeHead       = "head"        // weights [D, K], biases [K] (NumClasses > 0 only)
)

// BlockScope is the scope of block i: "block_00", "block_01", …. Inside it: norm1, attn/qkv
// (weights [D, 3D] with q, k, v in that order along the output axis), attn/proj, norm2, mlp/fc1,
// mlp/fc2.
func BlockScope(i int) string { return fmt.Sprintf("block_%02d", i) }

// Model is a Vision Transformer with a validated Config.
//
// Architecture (METHODS.md §1.2, pre-norm ViT):
//
//	x_0 = [cls; patches·W_e + b_e] + pos_embed                     [B, T, D]
//	a_l = x_{l-1} + drop(proj(MHSA(LN1(x_{l-1}))))                 (softmax(q·kᵀ/√d_h))
//	x_l = a_l + drop(fc2(GELU(fc1(LN2(a_l)))))                     l = 1..L
//
// Taps are x_1..x_L; the per-layer vectors are LN_shared(x_l[:, 0]) (PoolCLS) or mean_t x_l[:, t]
// (PoolMean). Patches are flattened in (row, column, channel) order, so patch_embed/weights
// [(py·P + px)·C + c, d] equals a PyTorch Conv2d kernel weight[d, c, py, px].
type Model struct {
	cfg Config
}

// New validates cfg and returns the model.
func New(cfg Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Model{cfg: cfg}, nil
}

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// Features runs the ViT on images [B, H, W, C] (channels-last, float) and returns:
//   - Taps: the residual stream after every block, L nodes [B, T, D] (T = 1 + patches, CLS first);
//   - TapVectors: one [B, D] vector per block (see Pooling);
//   - Pooled: the last block's vector [B, D];
//   - Logits: [B, NumClasses] from the "head" linear layer, or nil when NumClasses == 0.
//
// Variables are created in (or reused from) ctx's current scope. Hidden dropout is active only
// when the graph is training and the scope is not frozen (nn.FrozenParam). Images of another size
// than the configuration's (a multiple of the patch in each direction: multi-crop's local crops)
// get the position embeddings resized to their grid (InterpolatePosEmbed). It panics (GoMLX
// style) when the images do not fit the configuration.
func (m *Model) Features(ctx *context.Context, images *graph.Node) backbone.Features {
	c := m.cfg
	if images.Rank() != 4 || images.Shape().Dim(3) != c.Channels || !images.DType().IsFloat() ||
		images.Shape().Dim(1)%c.Patch != 0 || images.Shape().Dim(2)%c.Patch != 0 || images.Shape().Dim(1) < c.Patch || images.Shape().Dim(2) < c.Patch {
		panic(fmt.Errorf("vit %s: images %s, want float [B, %d, %d, %d] (or another size divisible into %dx%d patches)",
			c.Name, images.Shape(), c.ImageHeight, c.ImageWidth, c.Channels, c.Patch, c.Patch))
	}
	g := images.Graph()
	dtype := images.DType()
	b, d := images.Shape().Dim(0), c.Dim

	x := PatchEmbed(ctx.In(ScopePatchEmbed), images, c.Patch, d) // [B, N, D]
	cls := ctx.WithInitializer(TruncatedNormal(ctx, InitStd)).
		VariableWithShape(VarClsToken, shapes.Make(dtype, d)).ValueGraph(g)
	cls = graph.BroadcastToDims(graph.Reshape(cls, 1, 1, d), b, 1, d)
	x = graph.Concatenate([]*graph.Node{cls, x}, 1) // [B, T, D]
	pos := ctx.WithInitializer(TruncatedNormal(ctx, InitStd)).
		VariableWithShape(VarPosEmbed, shapes.Make(dtype, c.NumTokens(), d)).ValueGraph(g)
	// Other image sizes (multi-crop's local crops) get the table resized to their grid.
	pos = InterpolatePosEmbed(pos, c.ImageHeight/c.Patch, c.ImageWidth/c.Patch, images.Shape().Dim(1)/c.Patch, images.Shape().Dim(2)/c.Patch)
	x = graph.Add(x, graph.ExpandLeftToRank(pos, 3))

	var f backbone.Features
	for i := range c.Depth {
		x = Block(ctx.In(BlockScope(i)), x, c)
		f.Taps = append(f.Taps, x)
	}
	for _, tap := range f.Taps {
		f.TapVectors = append(f.TapVectors, m.layerVector(ctx, tap))
	}
	f.Pooled = f.TapVectors[len(f.TapVectors)-1]
	if c.NumClasses > 0 {
		f.Logits = linear(ctx.In(ScopeHead), f.Pooled, c.NumClasses)
	}
	return f
}

// layerVector is the per-layer vector of a tap [B, T, D] -> [B, D].
func (m *Model) layerVector(ctx *context.Context, tap *graph.Node) *graph.Node {
	if m.cfg.Pooling == PoolMean {
		return graph.ReduceMean(tap, 1)
	}
	cls := nn.SelectIndex(tap, 1, 0) // [B, D]
	// Every layer shares the same LayerNorm variables: the first call creates them, the others
	// reuse them, whatever ctx's reuse mode.
	return layerNorm(ctx.In(ScopeNorm).Checked(false), cls, m.cfg.LayerNormEps)
}

// PatchEmbed cuts images [B, H, W, C] into non-overlapping p×p patches, flattens each in (row,
// column, channel) order and maps it linearly to dim: [B, (H/p)·(W/p), dim], patches in row-major
// order. This equals a convolution with kernel = stride = p. Variables (ctx's scope): weights
// [p·p·C, dim], biases [dim].
func PatchEmbed(ctx *context.Context, images *graph.Node, p, dim int) *graph.Node {
	b, h, w, ch := images.Shape().Dim(0), images.Shape().Dim(1), images.Shape().Dim(2), images.Shape().Dim(3)
	if h%p != 0 || w%p != 0 {
		panic(fmt.Errorf("vit: patch embed: image %dx%d is not divisible into %dx%d patches", h, w, p, p))
	}
	x := graph.Reshape(images, b, h/p, p, w/p, p, ch)
	x = graph.TransposeAllAxes(x, 0, 1, 3, 2, 4, 5) // [B, H/p, W/p, p, p, C]
	x = graph.Reshape(x, b, (h/p)*(w/p), p*p*ch)
	return linear(ctx, x, dim)
}

// Block is one pre-norm transformer block on x [B, T, D] in ctx's scope (a block_NN scope):
// x + drop(attn/proj(MHSA(norm1(x)))), then + drop(mlp/fc2(GELU(mlp/fc1(norm2(·))))).
func Block(ctx *context.Context, x *graph.Node, c Config) *graph.Node {
	d := c.Dim

	h := layerNorm(ctx.In("norm1"), x, c.LayerNormEps)
	attn := ctx.In("attn")
	qkv := LinearSplit(attn.In("qkv"), h, d, 3) // q, k, v: [B, T, D] each
	h = nn.Attention(qkv[0], qkv[1], qkv[2], c.Heads)
	h = linear(attn.In("proj"), h, d)
	x = graph.Add(x, dropout(ctx, h, c.Dropout))

	h = layerNorm(ctx.In("norm2"), x, c.LayerNormEps)
	mlp := ctx.In("mlp")
	h = GELU(linear(mlp.In("fc1"), h, c.MLPDim))
	h = linear(mlp.In("fc2"), h, d)
	return graph.Add(x, dropout(ctx, h, c.Dropout))
}
