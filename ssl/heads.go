package ssl

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"

	"github.com/ifa-toolkit/ifa/internal/nn"
)

// The projector / rescaler MLP family of layerwiseclr and IFARD (METHODS.md §1.2, §2.3, §2.6), and
// the token-grid "Rescaler V2" blocks (§2.6, §9.1).

// NormKind is the normalisation a head applies after its linear layers.
type NormKind int

const (
	NormBatch NormKind = iota // BatchNorm1d (internal/nn.BatchNorm: batch statistics in training)
	NormLayer                 // LayerNorm over the features
	NormNone                  // no normalisation
)

// String returns "bn", "ln" or "none".
func (k NormKind) String() string {
	switch k {
	case NormBatch:
		return "bn"
	case NormLayer:
		return "ln"
	case NormNone:
		return "none"
	}
	return fmt.Sprintf("NormKind(%d)", int(k))
}

// ParseNormKind parses "bn", "ln" or "none".
func ParseNormKind(s string) (NormKind, error) {
	for _, k := range []NormKind{NormBatch, NormLayer, NormNone} {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("ssl: norm %q: want bn, ln or none", s)
}

// ActKind is a head's activation.
type ActKind int

const (
	ActReLU ActKind = iota // max(x, 0)
	ActGELU                // exact GELU, x·Φ(x) (erf form, PyTorch's default)
)

// String returns "relu" or "gelu".
func (k ActKind) String() string {
	switch k {
	case ActReLU:
		return "relu"
	case ActGELU:
		return "gelu"
	}
	return fmt.Sprintf("ActKind(%d)", int(k))
}

// ParseActKind parses "relu" or "gelu".
func ParseActKind(s string) (ActKind, error) {
	for _, k := range []ActKind{ActReLU, ActGELU} {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("ssl: activation %q: want relu or gelu", s)
}

// TokenBlockKind selects the token-grid block of a Rescaler V2 head.
type TokenBlockKind int

const (
	TokenNone        TokenBlockKind = iota // a plain MLP head on a [B, D] vector
	TokenTransformer                       // pre-norm Transformer blocks (multi-head self-attention + GELU MLP)
	TokenMixer                             // MLP-Mixer blocks (token-mixing MLP + channel-mixing MLP)
)

// String returns "none", "transformer" or "mixer".
func (k TokenBlockKind) String() string {
	switch k {
	case TokenNone:
		return "none"
	case TokenTransformer:
		return "transformer"
	case TokenMixer:
		return "mixer"
	}
	return fmt.Sprintf("TokenBlockKind(%d)", int(k))
}

// Token-block defaults, those of IFARD's rescalers at HEAD (--rs_transformer / --rs_mixer).
const (
	DefaultTokenBlocks      = 1     // rs_no_l blocks
	DefaultTokenHeads       = 2     // attention heads
	DefaultTokenMLPRatio    = 2.0   // Transformer FFN and Mixer channel-MLP width = ratio·C
	DefaultTokenMixRatio    = 0.5   // Mixer token-MLP width = ratio·C (MLP-Mixer's convention)
	DefaultTransformerLNEps = 1e-12 // Transformer LayerNorm eps (the ViT's)
	DefaultMixerLNEps       = 1e-6  // Mixer LayerNorm eps
)

// TokenBlockConfig configures the token-grid blocks of a Rescaler V2 head. Zero fields take the
// Default* values above. Dropout and stochastic depth are not modelled (the reference's are off in
// evaluation and default to 0.1 / 0 in training).
type TokenBlockConfig struct {
	Kind       TokenBlockKind
	Blocks     int     // number of blocks
	Heads      int     // Transformer attention heads; C must be divisible by Heads
	MLPRatio   float64 // Transformer FFN / Mixer channel-MLP hidden width = int(ratio·C)
	TokenRatio float64 // Mixer token-MLP hidden width = int(ratio·C)
	Tokens     int     // T, the number of tokens (H·W of a map); required by the Mixer, checked by both
	LNEpsilon  float64 // LayerNorm eps inside the blocks
}

func (c TokenBlockConfig) withDefaults() TokenBlockConfig {
	if c.Blocks == 0 {
		c.Blocks = DefaultTokenBlocks
	}
	if c.Heads == 0 {
		c.Heads = DefaultTokenHeads
	}
	if c.MLPRatio == 0 {
		c.MLPRatio = DefaultTokenMLPRatio
	}
	if c.TokenRatio == 0 {
		c.TokenRatio = DefaultTokenMixRatio
	}
	if c.LNEpsilon == 0 {
		c.LNEpsilon = DefaultMixerLNEps
		if c.Kind == TokenTransformer {
			c.LNEpsilon = DefaultTransformerLNEps
		}
	}
	return c
}

// HeadConfig describes one projector or rescaler head: Layers linear layers (Linear → norm → act for
// each hidden layer; the last Linear followed by norm unless SkipLastNorm, then act if LastAct),
// optionally preceded by token-grid blocks and mean pooling over tokens (Rescaler V2).
//
// The talk's IFACD heads are {Layers: 1, Out: d, Norm: NormBatch} (Linear + BN1d); layerwiseclr's
// projector is {Layers: 3, Hidden: 2048, Out: 2048, Norm: NormLayer, Act: ActGELU}.
type HeadConfig struct {
	Layers       int // number of Linear layers, 1 to 3
	Hidden       int // width of the hidden layers (Layers ≥ 2); 0 means Out (as the reference)
	Out          int // output width
	Norm         NormKind
	Act          ActKind
	SkipLastNorm bool    // no norm after the last Linear (IFARD HEAD projectors without --proj_out_norm)
	LastAct      bool    // an activation after the last norm (IFARD HEAD rescalers end in norm + act)
	NoLastBias   bool    // the last Linear has no bias (IFARD HEAD projectors)
	LNEpsilon    float64 // LayerNorm eps of the MLP; 0 means nn.LayerNormEpsilon (1e-5)
	Tokens       TokenBlockConfig
}

// IFACDHead is the talk's IFACD rescaler and projector: Linear(in → out) + BN1d (METHODS.md §2.3).
func IFACDHead(out int) HeadConfig {
	return HeadConfig{Layers: 1, Out: out, Norm: NormBatch}
}

// IFACLRProjector is layerwiseclr's default projector: Linear → LN → GELU → Linear → LN → GELU →
// Linear → LN, with the given hidden and output widths (reference: 2048 and 2048).
func IFACLRProjector(hidden, out int) HeadConfig {
	return HeadConfig{Layers: 3, Hidden: hidden, Out: out, Norm: NormLayer, Act: ActGELU}
}

// Validate reports the first problem with the configuration.
func (c HeadConfig) Validate() error {
	switch {
	case c.Layers < 1 || c.Layers > 3:
		return fmt.Errorf("ssl: head: %d linear layers, want 1 to 3", c.Layers)
	case c.Out < 1:
		return fmt.Errorf("ssl: head: output width %d, want >= 1", c.Out)
	case c.Hidden < 0:
		return fmt.Errorf("ssl: head: hidden width %d, want >= 0", c.Hidden)
	case c.Norm < NormBatch || c.Norm > NormNone:
		return fmt.Errorf("ssl: head: unknown norm %d", int(c.Norm))
	case c.Act < ActReLU || c.Act > ActGELU:
		return fmt.Errorf("ssl: head: unknown activation %d", int(c.Act))
	case c.LNEpsilon < 0:
		return fmt.Errorf("ssl: head: LayerNorm eps %g, want >= 0", c.LNEpsilon)
	}
	t := c.Tokens.withDefaults()
	switch t.Kind {
	case TokenNone:
		return nil
	case TokenTransformer, TokenMixer:
	default:
		return fmt.Errorf("ssl: head: unknown token block %d", int(t.Kind))
	}
	switch {
	case t.Blocks < 1:
		return fmt.Errorf("ssl: head: %d token blocks, want >= 1", t.Blocks)
	case t.Heads < 1:
		return fmt.Errorf("ssl: head: %d attention heads, want >= 1", t.Heads)
	case t.MLPRatio <= 0 || t.TokenRatio <= 0:
		return fmt.Errorf("ssl: head: token-block MLP ratios %g and %g, want > 0", t.MLPRatio, t.TokenRatio)
	case t.LNEpsilon < 0:
		return fmt.Errorf("ssl: head: token-block LayerNorm eps %g, want >= 0", t.LNEpsilon)
	case t.Kind == TokenMixer && t.Tokens < 1:
		return fmt.Errorf("ssl: head: the mixer needs the token count (Tokens), got %d", t.Tokens)
	case t.Tokens < 0:
		return fmt.Errorf("ssl: head: token count %d, want >= 0", t.Tokens)
	}
	return nil
}

// hiddenWidth returns the hidden width after the reference's default.
func (c HeadConfig) hiddenWidth() int {
	if c.Hidden == 0 {
		return c.Out
	}
	return c.Hidden
}

// Head applies the head described by cfg in ctx's current scope (give each head its own scope, e.g.
// ctx.In("proj") or ctx.In("rescaler_01")). Variables, below that scope: "fc_<i>" (Linear
// "weights" [in, out], "biases" [out]) and "norm_<i>" for i = 0..Layers−1; with token blocks also
// "block_<j>/..." (see tokenBlock). BatchNorm follows ctx's training mode and nn.FrozenParam.
//
// x: [B, D] for a plain head; [B, T, C] or a channels-last map [B, H, W, C] (flattened to T = H·W
// tokens) with token blocks. Returns [B, Out]. Panics (graph building) on an invalid cfg.
func Head(ctx *context.Context, cfg HeadConfig, x *graph.Node) *graph.Node {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if cfg.Tokens.Kind != TokenNone {
		x = tokenBlocks(ctx, cfg.Tokens.withDefaults(), x)
	} else if x.Rank() != 2 {
		panic(fmt.Errorf("ssl: head: input must be [B, D], got %s (set Tokens for a token grid)", x.Shape()))
	}
	hidden := cfg.hiddenWidth()
	for i := 0; i < cfg.Layers; i++ {
		last := i == cfg.Layers-1
		width := hidden
		if last {
			width = cfg.Out
		}
		fc := ctx.In(fmt.Sprintf("fc_%d", i))
		if last && cfg.NoLastBias {
			x = nn.Linear(fc, x, width, nn.NoBias())
		} else {
			x = nn.Linear(fc, x, width)
		}
		if !last || !cfg.SkipLastNorm {
			x = applyNorm(ctx.In(fmt.Sprintf("norm_%d", i)), cfg.Norm, x, cfg.LNEpsilon)
		}
		if !last || cfg.LastAct {
			x = applyAct(cfg.Act, x)
		}
	}
	return x
}

// SharedHead returns a function applying one head (one set of variables in ctx's scope) to several
// inputs, each separately — so each call normalises with its own batch statistics, as a module called
// once per view does. The first call creates (or loads) the variables; later calls reuse them.
// With NormBatch, the running statistics keep the update of the last call in the graph (PyTorch
// would apply the momentum once per call); training-mode outputs are unaffected.
func SharedHead(ctx *context.Context, cfg HeadConfig) func(x *graph.Node) *graph.Node {
	calls := 0
	return func(x *graph.Node) *graph.Node {
		c := ctx
		if calls > 0 {
			c = ctx.Reuse()
		}
		calls++
		return Head(c, cfg, x)
	}
}

// HeadParams is the number of trainable parameters of a head built by Head with input width inDim
// (the channel count C for token blocks). BatchNorm running statistics are not parameters (as in
// PyTorch). It returns 0 when cfg is invalid (see Validate) or inDim < 1.
func HeadParams(cfg HeadConfig, inDim int) int {
	if cfg.Validate() != nil || inDim < 1 {
		return 0
	}
	n := 0
	if cfg.Tokens.Kind != TokenNone {
		n += tokenBlockParams(cfg.Tokens.withDefaults(), inDim)
	}
	hidden := cfg.hiddenWidth()
	in := inDim
	for i := 0; i < cfg.Layers; i++ {
		last := i == cfg.Layers-1
		width := hidden
		if last {
			width = cfg.Out
		}
		n += nn.LinearParams(in, width, !(last && cfg.NoLastBias))
		if cfg.Norm != NormNone && (!last || !cfg.SkipLastNorm) {
			n += 2 * width // γ and β of either norm
		}
		in = width
	}
	return n
}

func applyNorm(ctx *context.Context, kind NormKind, x *graph.Node, eps float64) *graph.Node {
	switch kind {
	case NormBatch:
		return nn.BatchNorm(ctx, x)
	case NormLayer:
		return nn.LayerNorm(ctx, x, eps)
	}
	return x
}

func applyAct(kind ActKind, x *graph.Node) *graph.Node {
	if kind == ActGELU {
		return activations.Gelu(x)
	}
	return graph.Max(x, graph.ScalarZero(x.Graph(), x.DType()))
}

// tokenBlocks flattens x to tokens [B, T, C], applies the configured blocks, each under
// "block_<j>", and mean-pools over tokens: returns [B, C].
func tokenBlocks(ctx *context.Context, cfg TokenBlockConfig, x *graph.Node) *graph.Node {
	if x.Rank() < 3 {
		panic(fmt.Errorf("ssl: head: token blocks need [B, T, C] or [B, H, W, C], got %s", x.Shape()))
	}
	b, c := x.Shape().Dim(0), x.Shape().Dim(-1)
	t := x.Shape().Size() / (b * c)
	x = graph.Reshape(x, b, t, c)
	if cfg.Tokens > 0 && cfg.Tokens != t {
		panic(fmt.Errorf("ssl: head: configured for %d tokens, input has %d", cfg.Tokens, t))
	}
	if cfg.Kind == TokenTransformer && c%cfg.Heads != 0 {
		panic(fmt.Errorf("ssl: head: %d channels are not divisible by %d heads", c, cfg.Heads))
	}
	for j := 0; j < cfg.Blocks; j++ {
		bctx := ctx.In(fmt.Sprintf("block_%d", j))
		if cfg.Kind == TokenTransformer {
			x = transformerBlock(bctx, cfg, x)
		} else {
			x = mixerBlock(bctx, cfg, x)
		}
	}
	return graph.ReduceMean(x, 1)
}

// transformerBlock is a pre-norm Transformer block on x: [B, T, C]:
// x + attn_out(MHSA(LN(x))), then + mlp_1(GELU(mlp_0(LN(x)))). Scopes: norm_0, q, k, v, attn_out,
// norm_1, mlp_0, mlp_1. Attention logits are scaled by 1/√(C/heads).
func transformerBlock(ctx *context.Context, cfg TokenBlockConfig, x *graph.Node) *graph.Node {
	c := x.Shape().Dim(2)
	y := nn.LayerNorm(ctx.In("norm_0"), x, cfg.LNEpsilon)
	q := nn.Linear(ctx.In("q"), y, c)
	k := nn.Linear(ctx.In("k"), y, c)
	v := nn.Linear(ctx.In("v"), y, c)
	x = graph.Add(x, nn.Linear(ctx.In("attn_out"), nn.Attention(q, k, v, cfg.Heads), c))

	f := int(cfg.MLPRatio * float64(c))
	y = nn.LayerNorm(ctx.In("norm_1"), x, cfg.LNEpsilon)
	y = nn.Linear(ctx.In("mlp_1"), activations.Gelu(nn.Linear(ctx.In("mlp_0"), y, f)), c)
	return graph.Add(x, y)
}

// mixerBlock is an MLP-Mixer block on x: [B, T, C]: x + token-mixing MLP over T of LN(x), then
// x + channel-mixing MLP of LN(x), both Linear → GELU → Linear. Scopes: norm_0, token_mlp_0,
// token_mlp_1, norm_1, channel_mlp_0, channel_mlp_1.
func mixerBlock(ctx *context.Context, cfg TokenBlockConfig, x *graph.Node) *graph.Node {
	t, c := x.Shape().Dim(1), x.Shape().Dim(2)
	ht := int(cfg.TokenRatio * float64(c))
	hc := int(cfg.MLPRatio * float64(c))
	y := graph.TransposeAllAxes(nn.LayerNorm(ctx.In("norm_0"), x, cfg.LNEpsilon), 0, 2, 1) // [B, C, T]
	y = nn.Linear(ctx.In("token_mlp_1"), activations.Gelu(nn.Linear(ctx.In("token_mlp_0"), y, ht)), t)
	x = graph.Add(x, graph.TransposeAllAxes(y, 0, 2, 1))
	y = nn.LayerNorm(ctx.In("norm_1"), x, cfg.LNEpsilon)
	y = nn.Linear(ctx.In("channel_mlp_1"), activations.Gelu(nn.Linear(ctx.In("channel_mlp_0"), y, hc)), c)
	return graph.Add(x, y)
}

func tokenBlockParams(cfg TokenBlockConfig, c int) int {
	per := 0
	switch cfg.Kind {
	case TokenTransformer:
		f := int(cfg.MLPRatio * float64(c))
		per = 2*nn.LayerNormParams(c) + 4*nn.LinearParams(c, c, true) +
			nn.LinearParams(c, f, true) + nn.LinearParams(f, c, true)
	case TokenMixer:
		t := cfg.Tokens
		ht := int(cfg.TokenRatio * float64(c))
		hc := int(cfg.MLPRatio * float64(c))
		per = 2*nn.LayerNormParams(c) + nn.LinearParams(t, ht, true) + nn.LinearParams(ht, t, true) +
			nn.LinearParams(c, hc, true) + nn.LinearParams(hc, c, true)
	}
	return cfg.Blocks * per
}
