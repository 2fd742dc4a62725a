package vit

import (
	"fmt"
	"slices"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
)

// MixerLayerNormEps is the LayerNorm epsilon of the reference MLP-Mixer (timm's, 1e-6).
const MixerLayerNormEps = 1e-6

// MixerConfig is the architecture of an MLP-Mixer (Tolstikhin et al. 2021). Build one with
// GetMixer and adjust it with the With* methods; NewMixer validates it.
type MixerConfig struct {
	// Name is informative only ("nano", "b_16", ...).
	Name string
	// Dim is the hidden size D (the channels of every token).
	Dim int
	// TokenMLPDim is the hidden width D_S of the token-mixing MLPs (they act across the tokens, one
	// channel at a time).
	TokenMLPDim int
	// ChannelMLPDim is the hidden width D_C of the channel-mixing MLPs (they act on each token).
	ChannelMLPDim int
	// Depth is the number of mixer blocks L (and of layer taps).
	Depth int
	// Patch is the square patch size P; it must divide the image height and width.
	Patch int
	// ImageHeight, ImageWidth and Channels give the input images [B, H, W, C]; they fix the token
	// count, hence the token-mixing widths.
	ImageHeight, ImageWidth, Channels int
	// NumClasses > 0 adds a linear head ("head") on the pooled vector; 0 means no head.
	NumClasses int
	// LayerNormEps is the epsilon of every LayerNorm (reference: 1e-6).
	LayerNormEps float64
}

// baseMixerConfigs: hidden / token MLP / channel MLP / depth, default patch and image. "s" and "b"
// are the paper's Mixer-S and Mixer-B; "nano" and "micro" match the ViT's nano and micro in width,
// depth and input.
var baseMixerConfigs = []MixerConfig{
	{Name: "nano", Dim: 64, TokenMLPDim: 32, ChannelMLPDim: 128, Depth: 4, Patch: 4, ImageHeight: 28, ImageWidth: 28, Channels: 1},
	{Name: "micro", Dim: 128, TokenMLPDim: 64, ChannelMLPDim: 256, Depth: 6, Patch: 4, ImageHeight: 28, ImageWidth: 28, Channels: 1},
	{Name: "s", Dim: 512, TokenMLPDim: 256, ChannelMLPDim: 2048, Depth: 8, Patch: 16, ImageHeight: 224, ImageWidth: 224, Channels: 3},
	{Name: "b", Dim: 768, TokenMLPDim: 384, ChannelMLPDim: 3072, Depth: 12, Patch: 16, ImageHeight: 224, ImageWidth: 224, Channels: 3},
}

// MixerNames lists the registered MLP-Mixer configurations, smallest first: "nano", "micro", "s",
// "b". Each also accepts a patch suffix in GetMixer ("s_32", "nano_7").
func MixerNames() []string {
	names := make([]string, len(baseMixerConfigs))
	for i, c := range baseMixerConfigs {
		names[i] = c.Name
	}
	return names
}

// GetMixer returns the named MLP-Mixer configuration: a base name from MixerNames, optionally
// followed by "_P" for patch size P. Defaults (hidden / token MLP / channel MLP / depth):
//   - nano: 64/32/128/4, patch 4, 28x28x1 images;
//   - micro: 128/64/256/6, patch 4, 28x28x1;
//   - s: 512/256/2048/8, b: 768/384/3072/12, patch 16, 224x224x3;
//
// all with LayerNorm eps 1e-6 and no classifier head.
func GetMixer(name string) (MixerConfig, error) {
	base, patch, err := parseConfigName("mixer", name, MixerNames())
	if err != nil {
		return MixerConfig{}, err
	}
	cfg := baseMixerConfigs[slices.IndexFunc(baseMixerConfigs, func(c MixerConfig) bool { return c.Name == base })]
	cfg.LayerNormEps = MixerLayerNormEps
	if patch > 0 {
		cfg.Patch = patch
		cfg.Name = fmt.Sprintf("%s_%d", base, patch)
	}
	return cfg, nil
}

// WithImage returns the configuration for images of height h, width w and c channels.
func (c MixerConfig) WithImage(h, w, channels int) MixerConfig {
	c.ImageHeight, c.ImageWidth, c.Channels = h, w, channels
	return c
}

// WithPatch returns the configuration with patch size p.
func (c MixerConfig) WithPatch(p int) MixerConfig {
	c.Patch = p
	return c
}

// WithClasses returns the configuration with a linear head of n classes (0: no head).
func (c MixerConfig) WithClasses(n int) MixerConfig {
	c.NumClasses = n
	return c
}

// Validate reports the first inconsistency in the configuration.
func (c MixerConfig) Validate() error {
	name := c.Name
	if name == "" {
		name = "(unnamed)"
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("vit: mixer config %s: %s", name, fmt.Sprintf(format, args...))
	}
	if c.Dim < 1 || c.TokenMLPDim < 1 || c.ChannelMLPDim < 1 || c.Depth < 1 || c.Patch < 1 {
		return bad("dim %d, token mlp %d, channel mlp %d, depth %d and patch %d must all be >= 1",
			c.Dim, c.TokenMLPDim, c.ChannelMLPDim, c.Depth, c.Patch)
	}
	if err := validateInput(c.Patch, c.ImageHeight, c.ImageWidth, c.Channels, c.NumClasses, c.LayerNormEps); err != nil {
		return bad("%v", err)
	}
	return nil
}

// Grid is the token grid (H/P, W/P); the tokens are its cells in row-major order.
func (c MixerConfig) Grid() (rows, cols int) {
	if c.Patch < 1 {
		return 0, 0
	}
	return c.ImageHeight / c.Patch, c.ImageWidth / c.Patch
}

// NumTokens is N = (H/P)·(W/P) (no CLS token).
func (c MixerConfig) NumTokens() int {
	rows, cols := c.Grid()
	return rows * cols
}

// ParamCount is the number of trainable parameters NewMixer(c) creates, from the formula:
//
//	patch_embed  P·P·C·D + D
//	per block    2·2D (two LayerNorms) + (N·D_S + D_S) + (D_S·N + N) (token MLP)
//	             + (D·D_C + D_C) + (D_C·D + D) (channel MLP)
//	norm_layer   2D
//	head         D·K + K (K = NumClasses > 0)
func (c MixerConfig) ParamCount() int {
	d, s, ch, n := c.Dim, c.TokenMLPDim, c.ChannelMLPDim, c.NumTokens()
	total := c.Patch*c.Patch*c.Channels*d + d
	total += c.Depth * (2*2*d + n*s + s + s*n + n + d*ch + ch + ch*d + d)
	total += 2 * d
	if c.NumClasses > 0 {
		total += d*c.NumClasses + c.NumClasses
	}
	return total
}

// String is a one-line summary.
func (c MixerConfig) String() string {
	s := fmt.Sprintf("mixer %s: dim %d, token mlp %d, channel mlp %d, depth %d, patch %d, image %dx%dx%d",
		c.Name, c.Dim, c.TokenMLPDim, c.ChannelMLPDim, c.Depth, c.Patch, c.ImageHeight, c.ImageWidth, c.Channels)
	if c.NumClasses > 0 {
		s += fmt.Sprintf(", %d classes", c.NumClasses)
	}
	return s
}

// Mixer is an MLP-Mixer with a validated MixerConfig.
//
// Architecture (Tolstikhin et al. 2021, pre-norm):
//
//	x_0 = patches·W_e + b_e                                              [B, N, D]
//	a_l = x_{l-1} + (token_mlp/fc2(GELU(token_mlp/fc1(LN1(x_{l-1})ᵀ))))ᵀ  mixes the N tokens per channel
//	x_l = a_l + channel_mlp/fc2(GELU(channel_mlp/fc1(LN2(a_l))))         mixes the D channels per token
//
// Taps are x_1..x_L, token grids [B, N, D] with the tokens in row-major grid order (TokenGrid
// reshapes them to [B, H/P, W/P, D]); the per-layer vectors are mean_t LN_shared(x_l)[:, t], the
// reference's head path (final LayerNorm, then the average over the tokens) applied to every block
// with one LayerNorm ("norm_layer") shared by all blocks — as the ViT's CLS vectors share theirs.
// Patches are flattened as the ViT's (PatchEmbed). There is no position embedding, CLS token or
// dropout.
//
// Initialisation is the ViT's (this package's): linear weights from a normal with std 0.02
// truncated at ±2σ, zero biases, LayerNorm gains 1 and offsets 0 (timm's Mixer uses Xavier-uniform
// MLP weights and a LeCun-normal stem instead).
//
// Scopes: patch_embed; block_NN/{norm1, token_mlp/fc1 (weights [N, D_S]), token_mlp/fc2,
// norm2, channel_mlp/fc1 (weights [D, D_C]), channel_mlp/fc2}; norm_layer; head.
type Mixer struct {
	cfg MixerConfig
}

// NewMixer validates cfg and returns the model.
func NewMixer(cfg MixerConfig) (*Mixer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Mixer{cfg: cfg}, nil
}

// Config returns the model's configuration.
func (m *Mixer) Config() MixerConfig { return m.cfg }

// Features runs the MLP-Mixer on images [B, H, W, C] (channels-last, float) and returns:
//   - Taps: the output of every block, L token grids [B, N, D];
//   - TapVectors: one [B, D] vector per block, mean_t LN_shared(x_l);
//   - Pooled: the last block's vector [B, D] (the reference's pre-head feature);
//   - Logits: [B, NumClasses] from the "head" linear layer, or nil when NumClasses == 0.
//
// Variables are created in (or reused from) ctx's current scope. It panics (GoMLX style) when the
// images do not match the configuration.
func (m *Mixer) Features(ctx *context.Context, images *graph.Node) backbone.Features {
	c := m.cfg
	if images.Rank() != 4 || images.Shape().Dim(1) != c.ImageHeight || images.Shape().Dim(2) != c.ImageWidth ||
		images.Shape().Dim(3) != c.Channels || !images.DType().IsFloat() {
		panic(fmt.Errorf("vit: mixer %s: images %s, want float [B, %d, %d, %d]", c.Name, images.Shape(), c.ImageHeight, c.ImageWidth, c.Channels))
	}
	x := PatchEmbed(ctx.In(ScopePatchEmbed), images, c.Patch, c.Dim) // [B, N, D]
	var f backbone.Features
	for i := range c.Depth {
		x = MixerBlock(ctx.In(BlockScope(i)), x, c)
		f.Taps = append(f.Taps, x)
	}
	for _, tap := range f.Taps {
		// One LayerNorm shared by every layer: the first call creates it, the others reuse it.
		f.TapVectors = append(f.TapVectors, graph.ReduceMean(layerNorm(ctx.In(ScopeNorm).Checked(false), tap, c.LayerNormEps), 1))
	}
	f.Pooled = f.TapVectors[len(f.TapVectors)-1]
	if c.NumClasses > 0 {
		f.Logits = linear(ctx.In(ScopeHead), f.Pooled, c.NumClasses)
	}
	return f
}

// MixerBlock is one pre-norm mixer block on x [B, N, D] in ctx's scope (a block_NN scope): the
// token-mixing MLP across the N tokens of each channel, then the channel-mixing MLP across the D
// channels of each token, each with a LayerNorm before and a residual add after.
func MixerBlock(ctx *context.Context, x *graph.Node, c MixerConfig) *graph.Node {
	n := x.Shape().Dim(1)
	h := graph.TransposeAllAxes(layerNorm(ctx.In("norm1"), x, c.LayerNormEps), 0, 2, 1) // [B, D, N]
	tok := ctx.In("token_mlp")
	h = linear(tok.In("fc2"), GELU(linear(tok.In("fc1"), h, c.TokenMLPDim)), n)
	x = graph.Add(x, graph.TransposeAllAxes(h, 0, 2, 1))

	h = layerNorm(ctx.In("norm2"), x, c.LayerNormEps)
	ch := ctx.In("channel_mlp")
	h = linear(ch.In("fc2"), GELU(linear(ch.In("fc1"), h, c.ChannelMLPDim)), c.Dim)
	return graph.Add(x, h)
}
