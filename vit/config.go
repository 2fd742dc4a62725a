package vit

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Pooling chooses the per-layer vector (Features.TapVectors) of a ViT.
type Pooling string

const (
	// PoolCLS takes each block's CLS token through one LayerNorm ("norm_layer") shared by all
	// blocks: the reference default (METHODS.md §1.2).
	PoolCLS Pooling = "cls"
	// PoolMean averages all tokens (CLS included) of each block, with no LayerNorm (the
	// reference's --vit_avg_pooling).
	PoolMean Pooling = "mean"
)

// ReferenceLayerNormEps is the LayerNorm epsilon of the reference ViT (METHODS.md §1.2).
const ReferenceLayerNormEps = 1e-12

// Config is the architecture of a Vision Transformer. Build one with Get and adjust it with the
// With* methods; New validates it.
type Config struct {
	// Name is informative only ("nano", "ti_4", ...).
	Name string
	// Dim is the hidden size D (token width).
	Dim int
	// MLPDim is the hidden width of each block's MLP.
	MLPDim int
	// Heads is the number of attention heads; it must divide Dim.
	Heads int
	// Depth is the number of transformer blocks L (and of layer taps).
	Depth int
	// Patch is the square patch size P; it must divide the image height and width.
	Patch int
	// ImageHeight, ImageWidth and Channels give the input images [B, H, W, C]. They fix the
	// number of position embeddings.
	ImageHeight, ImageWidth, Channels int
	// NumClasses > 0 adds a linear head ("head") on the pooled vector; 0 means no head.
	NumClasses int
	// LayerNormEps is the epsilon of every LayerNorm (reference: 1e-12).
	LayerNormEps float64
	// Dropout is the hidden dropout rate applied to the attention output projection and to the
	// MLP output before each residual add, in training only (reference: 0.1).
	Dropout float64
	// Pooling chooses the per-layer vectors: PoolCLS (default) or PoolMean.
	Pooling Pooling
}

// base configurations: hidden / MLP / heads / depth, default patch, default image and dropout.
var baseConfigs = []Config{
	{Name: "nano", Dim: 64, MLPDim: 128, Heads: 4, Depth: 4, Patch: 4, ImageHeight: 28, ImageWidth: 28, Channels: 1},
	{Name: "micro", Dim: 128, MLPDim: 256, Heads: 4, Depth: 6, Patch: 4, ImageHeight: 28, ImageWidth: 28, Channels: 1},
	{Name: "ti", Dim: 192, MLPDim: 768, Heads: 3, Depth: 12, Patch: 16, ImageHeight: 224, ImageWidth: 224, Channels: 3, Dropout: 0.1},
	{Name: "s", Dim: 384, MLPDim: 1536, Heads: 6, Depth: 12, Patch: 16, ImageHeight: 224, ImageWidth: 224, Channels: 3, Dropout: 0.1},
	{Name: "b", Dim: 768, MLPDim: 3072, Heads: 12, Depth: 12, Patch: 16, ImageHeight: 224, ImageWidth: 224, Channels: 3, Dropout: 0.1},
}

// Names lists the registered base configurations, smallest first: "nano", "micro", "ti", "s", "b".
// Each also accepts a patch suffix in Get ("ti_4", "b_16").
func Names() []string {
	names := make([]string, len(baseConfigs))
	for i, c := range baseConfigs {
		names[i] = c.Name
	}
	return names
}

// Get returns the named configuration. A name is a base name from Names, optionally followed by
// "_P" for patch size P ("ti_4" is ViT-Ti with 4x4 patches). Defaults:
//   - nano: 64/128/4/4 (hidden/MLP/heads/depth), patch 4, 28x28x1 images, dropout 0;
//   - micro: 128/256/4/6, patch 4, 28x28x1, dropout 0;
//   - ti: 192/768/3/12, s: 384/1536/6/12, b: 768/3072/12/12, patch 16, 224x224x3, dropout 0.1;
//
// all with LayerNorm eps 1e-12, CLS pooling and no classifier head.
func Get(name string) (Config, error) {
	base, patch, err := parseConfigName("vit", name, Names())
	if err != nil {
		return Config{}, err
	}
	cfg := baseConfigs[slices.IndexFunc(baseConfigs, func(c Config) bool { return c.Name == base })]
	cfg.LayerNormEps = ReferenceLayerNormEps
	cfg.Pooling = PoolCLS
	if patch > 0 {
		cfg.Patch = patch
		cfg.Name = fmt.Sprintf("%s_%d", base, patch)
	}
	return cfg, nil
}

// WithImage returns the configuration for images of height h, width w and c channels.
func (c Config) WithImage(h, w, channels int) Config {
	c.ImageHeight, c.ImageWidth, c.Channels = h, w, channels
	return c
}

// WithPatch returns the configuration with patch size p.
func (c Config) WithPatch(p int) Config {
	c.Patch = p
	return c
}

// WithClasses returns the configuration with a linear head of n classes (0: no head).
func (c Config) WithClasses(n int) Config {
	c.NumClasses = n
	return c
}

// WithPooling returns the configuration with the given per-layer pooling.
func (c Config) WithPooling(p Pooling) Config {
	c.Pooling = p
	return c
}

// WithDropout returns the configuration with hidden dropout rate p.
func (c Config) WithDropout(p float64) Config {
	c.Dropout = p
	return c
}

// Validate reports the first inconsistency in the configuration.
func (c Config) Validate() error {
	name := c.Name
	if name == "" {
		name = "(unnamed)"
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("vit: config %s: %s", name, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Dim < 1 || c.MLPDim < 1 || c.Heads < 1 || c.Depth < 1 || c.Patch < 1:
		return bad("dim %d, mlp %d, heads %d, depth %d and patch %d must all be >= 1", c.Dim, c.MLPDim, c.Heads, c.Depth, c.Patch)
	case c.Dim%c.Heads != 0:
		return bad("dim %d is not divisible by %d heads", c.Dim, c.Heads)
	}
	if err := validateInput(c.Patch, c.ImageHeight, c.ImageWidth, c.Channels, c.NumClasses, c.LayerNormEps); err != nil {
		return bad("%v", err)
	}
	switch {
	case !(c.Dropout >= 0 && c.Dropout < 1):
		return bad("dropout %g must be in [0, 1)", c.Dropout)
	case c.Pooling != PoolCLS && c.Pooling != PoolMean:
		return bad("pooling %q: want %q or %q", c.Pooling, PoolCLS, PoolMean)
	}
	return nil
}

// NumPatches is the number of patch tokens, (H/P)·(W/P).
func (c Config) NumPatches() int {
	if c.Patch < 1 {
		return 0
	}
	return (c.ImageHeight / c.Patch) * (c.ImageWidth / c.Patch)
}

// Grid is the patch grid (H/P, W/P) of the ViT; its tokens after the CLS token are the cells in
// row-major order.
func (c Config) Grid() (rows, cols int) {
	if c.Patch < 1 {
		return 0, 0
	}
	return c.ImageHeight / c.Patch, c.ImageWidth / c.Patch
}

// NumTokens is T = 1 + NumPatches (the CLS token first).
func (c Config) NumTokens() int { return 1 + c.NumPatches() }

// ParamCount is the number of trainable parameters New(c) creates, from the formula:
//
//	patch_embed  P·P·C·D + D
//	cls_token    D
//	pos_embed    T·D
//	per block    2·2D (two LayerNorms) + (3D² + 3D) (qkv) + (D² + D) (proj)
//	             + (D·M + M) (fc1) + (M·D + D) (fc2)
//	norm_layer   2D (PoolCLS only)
//	head         D·K + K (K = NumClasses > 0)
func (c Config) ParamCount() int {
	d, m := c.Dim, c.MLPDim
	n := c.Patch*c.Patch*c.Channels*d + d // patch_embed
	n += d                                // cls_token
	n += c.NumTokens() * d                // pos_embed
	block := 2*2*d + 3*d*d + 3*d + d*d + d + d*m + m + m*d + d
	n += c.Depth * block
	if c.Pooling == PoolCLS {
		n += 2 * d
	}
	if c.NumClasses > 0 {
		n += d*c.NumClasses + c.NumClasses
	}
	return n
}

// String is a one-line summary: "nano: dim 64, mlp 128, heads 4, depth 4, patch 4, image 28x28x1".
func (c Config) String() string {
	s := fmt.Sprintf("%s: dim %d, mlp %d, heads %d, depth %d, patch %d, image %dx%dx%d, pooling %s",
		c.Name, c.Dim, c.MLPDim, c.Heads, c.Depth, c.Patch, c.ImageHeight, c.ImageWidth, c.Channels, c.Pooling)
	if c.NumClasses > 0 {
		s += fmt.Sprintf(", %d classes", c.NumClasses)
	}
	return s
}

// parseConfigName splits "base" or "base_P" (case-insensitive) into a base name from known and the
// patch size P (0 when absent); kind names the model family in errors.
func parseConfigName(kind, name string, known []string) (base string, patch int, err error) {
	base, patchStr, hasPatch := strings.Cut(strings.ToLower(strings.TrimSpace(name)), "_")
	if !slices.Contains(known, base) {
		return "", 0, fmt.Errorf("vit: unknown %s config %q: known are %s (optionally with a patch suffix such as \"%s_4\")",
			kind, name, strings.Join(known, ", "), known[0])
	}
	if hasPatch {
		if patch, err = strconv.Atoi(patchStr); err != nil || patch < 1 {
			return "", 0, fmt.Errorf("vit: %s config %q: patch suffix %q is not a positive integer", kind, name, patchStr)
		}
	}
	return base, patch, nil
}

// validateInput checks what the ViT's and the Mixer's configurations share: an image of positive
// size that the patch size (>= 1) divides, a class count >= 0 and a LayerNorm epsilon > 0.
func validateInput(patch, h, w, channels, classes int, eps float64) error {
	switch {
	case h < 1 || w < 1 || channels < 1:
		return fmt.Errorf("image %dx%dx%d: height, width and channels must be >= 1", h, w, channels)
	case h%patch != 0 || w%patch != 0:
		return fmt.Errorf("image %dx%d is not divisible into %dx%d patches", h, w, patch, patch)
	case classes < 0:
		return fmt.Errorf("num classes %d < 0", classes)
	case !(eps > 0):
		return fmt.Errorf("layer norm eps %g must be > 0", eps)
	}
	return nil
}
