package runner

import (
	stdctx "context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/eval"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/rundir"
	"github.com/ifa-toolkit/ifa/ssl"
	"github.com/ifa-toolkit/ifa/vit"
)

// PretrainViT is self-supervised pretraining of a ViT encoder (METHODS.md §1) with one of the
// methods of ssl's registry, an online weighted-kNN monitor and resumable checkpoints: the options
// of `ifa pretrain vit`, one field per flag (Defaults fills the flags' defaults). The run
// directory receives config.json (these options and the encoder's model record), metrics.jsonl and
// checkpoints/ holding the encoder under /encoder.
type PretrainViT struct {
	Dataset string `help:"Training data: fashion-mnist, mnist, cifar10, cifar100, or the path of an image folder." default:"fashion-mnist"`
	DataDir string `name:"data-dir" help:"Folder holding the named dataset (default: the user cache folder, then the system dataset folders such as /usr/share/datasets)." type:"path" env:"IFA_DATA_DIR"`

	Config  string  `help:"ViT configuration: nano, micro, ti, s or b (optionally with a patch suffix, e.g. ti_4). The image shape is taken from the dataset." default:"nano"`
	Patch   int     `help:"Patch size; 0 keeps the configuration's (nano/micro 4, ti/s/b 16)." default:"0"`
	Pooling string  `help:"Per-layer vector: cls (CLS token through the shared LayerNorm) or mean (average of all tokens)." enum:"cls,mean" default:"cls"`
	Dropout float64 `help:"Hidden dropout rate; negative keeps the configuration's (nano/micro 0, ti/s/b 0.1)." default:"-1"`

	Mode             string  `name:"method" aliases:"mode" help:"Pretraining method (listed above the flags)." default:"lwclr"`
	Layers           string  `help:"Layers taking part in the views: last:K, all, or indices such as 0,3,-1 (negative from the end)." default:"last:2"`
	ProjHidden       int     `name:"proj-hidden" help:"Hidden width of the shared projector; 0: the method's (listed above the flags)." default:"0"`
	ProjOut          int     `name:"proj-out" help:"Output width of the shared projector (the embedding); 0: the method's (listed above the flags)." default:"0"`
	ProjLayers       int     `name:"proj-layers" help:"Linear layers of the projector, 1 to 3 (Linear → norm → activation between them); 0: the method's (listed above the flags)." default:"0"`
	ProjNorm         string  `name:"proj-norm" help:"Projector normalisation: auto (the method's: ln for the lwclr family, bn otherwise), ln (LayerNorm with GELU, layerwiseclr's default) or bn (BatchNorm1d with ReLU, layerwiseclr's --bn_proj)." enum:"auto,ln,bn" default:"auto"`
	PredHidden       int     `name:"pred-hidden" help:"byol, simsiam, mocov3 and their lw variants: hidden width of the predictor; 0: the method's (listed above the flags)." default:"0"`
	Temperature      float64 `help:"Temperature τ of SupCon (the base temperature is τ too) or of MoCo v3's InfoNCE; 0: the method's (listed above the flags)." default:"0"`
	IntermediateGrad bool    `name:"intermediate-grad" help:"lwclr: let gradient reach the encoder through the intermediate-layer views (the reference detaches them)."`
	StopGradB        bool    `name:"stop-grad-b" help:"simlwclr/simclr/supcon: detach the views of the second augmentation."`
	DetachInter      bool    `name:"detach-intermediate" help:"lwbyol, lwsimsiam, lwmocov3: stop the gradient of the intermediate layers' vectors before the heads (by default every selected layer trains the blocks below it)."`
	EMAMomentum      float64 `name:"ema-momentum" help:"byol, mocov3 and their lw variants: τ_base of the momentum (target) network, ξ ← τξ + (1−τ)θ after every step." default:"${ema_momentum}"`
	EMASchedule      string  `name:"ema-schedule" help:"Momentum schedule: cosine (τ from --ema-momentum to 1 over the run, BYOL's) or constant." enum:"cosine,constant" default:"cosine"`
	Crops            string  `help:"Multi-crop (every method; needs the SimCLR augmentation): COUNTxSIZE:MIN-MAX groups, the global crops first (as many as the method's augmentations, of the image size: 1 for lwclr, else 2), e.g. 2x28:0.4-1,6x14:0.1-0.4 (2 global 28-px crops of 40-100% of the area, 6 local 14-px crops of 10-40%). Local crops are online views (anchors, queries) only, never targets or contrast points; their size must be a multiple of the patch. Empty: two global crops of --crop-scale."`
	FreezePatch      bool    `name:"freeze-patch" help:"Keep the patch projection at its random initialisation (MoCo v3's ViT recipe)."`

	Augment string `help:"Training augmentation: auto (standard for lwclr, simclr otherwise), standard (random crop of the zero-padded image + horizontal flip), simclr (random resized crop, flip, colour jitter, grayscale, blur) or none." enum:"auto,standard,simclr,none" default:"auto"`
	CropPad int    `name:"padding" aliases:"crop-pad" help:"Standard augmentation: zero padding before the random crop, in pixels." default:"4"`
	// SimCLR augmentation strengths.
	CropScale         float64 `name:"crop-scale" help:"SimCLR augmentation: smallest area fraction of the random resized crop, in (0, 1]." default:"0.08"`
	Jitter            float64 `help:"SimCLR augmentation: colour-jitter strength (brightness, contrast and saturation; hue a quarter of it); 0 disables the jitter." default:"0.4"`
	Blur              bool    `help:"SimCLR augmentation: random Gaussian blur (p 0.5); --no-blur disables it." default:"true" negatable:""`
	Solarize          float64 `help:"SimCLR augmentation: probability of solarization (values >= --solarize-threshold inverted, as in BYOL); 0 disables it." default:"0"`
	SolarizeThreshold float64 `help:"SimCLR augmentation: solarization threshold on [0, 1] pixel values (0.5: BYOL's; 0 inverts the whole image)." default:"0.5"`
	Flip              bool    `help:"Horizontal flip (p 0.5) in the standard and SimCLR augmentations; --no-flip disables it." default:"true" negatable:""`

	Epochs      int     `help:"Training epochs; 0 writes the randomly initialised encoder as a checkpoint (the baseline of the evaluations) without training." default:"30"`
	Batch       int     `help:"Images per batch (the last incomplete batch of an epoch is dropped)." default:"256"`
	LR          float64 `name:"lr" help:"Peak learning rate (after warm-up; half-cosine to --min-lr over the run, per step)." default:"0.001"`
	MinLR       float64 `name:"min-lr" help:"Learning rate at the end of the cosine." default:"0"`
	Optimizer   string  `help:"Optimizer: adamw, or sgd (with --momentum)." enum:"sgd,adamw" default:"adamw"`
	Momentum    float64 `help:"SGD momentum." default:"0.9"`
	Nesterov    bool    `help:"SGD: Nesterov momentum."`
	WeightDecay float64 `name:"weight-decay" help:"Weight decay (decoupled for adamw); biases and 1-D parameters are excluded." default:"0"`
	WarmupSteps int64   `name:"warmup-steps" help:"Linear warm-up, in optimiser steps." default:"1000"`
	Clip        float64 `help:"Clip the global gradient norm to this value; 0 disables clipping." default:"1.0"`

	KnnEvery        int     `name:"knn-every" help:"Online kNN monitor (train-set bank under the test transform, test-set queries) every N epochs and after the last; 0 disables it." default:"1"`
	KnnK            int     `name:"knn-k" help:"Online kNN: neighbours." default:"200"`
	KnnT            float64 `name:"knn-t" help:"Online kNN: temperature." default:"0.1"`
	CheckpointEvery int     `name:"checkpoint-every" help:"Write a checkpoint every N epochs (one is always written at the end and on Ctrl-C)." default:"1"`
	KeepCheckpoints int     `name:"keep-checkpoints" help:"Keep only the newest N checkpoints; 0 keeps all." default:"2"`
	LogEvery        int     `name:"log-every" help:"Without a terminal: log a training event every N steps (0: per epoch only)." default:"50"`
	LimitTrain      int     `name:"limit-train" help:"Use only the first N training images (0: all)." default:"0"`
	LimitTest       int     `name:"limit-test" help:"Use only the first N test images for the kNN monitor (0: all)." default:"0"`
	Workers         int     `help:"Data-loading goroutines (0: one per CPU)." default:"0"`
	Resume          bool    `help:"Continue the run in --out from its newest checkpoint, with the same flags."`
}

// PretrainResult is what a pretraining run reports.
type PretrainResult struct {
	// RunDir is the run directory and Checkpoint the last checkpoint written.
	RunDir, Checkpoint string
	// Fit is the training loop's result (nil for --epochs 0).
	Fit *fit.Result
	// EncoderParams counts the encoder's parameters.
	EncoderParams int
}

// KNNTop1 is the last online kNN top-1 (a fraction) and whether the monitor ran.
func (r *PretrainResult) KNNTop1() (float64, bool) {
	if r.Fit == nil {
		return 0, false
	}
	v, ok := r.Fit.Metrics["knn_top1"]
	return v, ok
}

// Help lists the pretraining methods of the registry (kong prints it with --help).
func (c *PretrainViT) Help() string {
	var b strings.Builder
	b.WriteString("Methods (--method):\n")
	for _, m := range ssl.Methods() {
		fmt.Fprintf(&b, "  %-10s %s\n  %-10s   (%s)\n", m, m.Impl().Doc(), "", ssl.MethodDefaults(m))
	}
	return b.String()
}

// Check checks the options, naming the flag at fault in a UsageError; the data they name are
// checked by Run.
func (c *PretrainViT) Check() error {
	if err := c.check(); err != nil {
		return err
	}
	_, err := c.pretrainConfig()
	return err
}

// check checks the options one by one.
func (c *PretrainViT) check() error {
	switch {
	case c.Epochs < 0:
		return Usagef("--epochs %d: want >= 1 (or 0 for the untrained encoder)", c.Epochs)
	case c.Batch < 2:
		return Usagef("--batch %d: want >= 2 (contrastive learning needs negatives)", c.Batch)
	case !(c.LR > 0):
		return Usagef("--lr %g: want > 0", c.LR)
	case c.MinLR < 0 || c.MinLR > c.LR:
		return Usagef("--min-lr %g: want in [0, --lr %g]", c.MinLR, c.LR)
	case c.Temperature < 0:
		return Usagef("--temperature %g: want > 0 (or 0 for the method's)", c.Temperature)
	case c.ProjLayers < 0 || c.ProjLayers > 3:
		return Usagef("--proj-layers %d: want 1, 2 or 3 (or 0 for the method's)", c.ProjLayers)
	case c.ProjHidden < 0:
		return Usagef("--proj-hidden %d: want >= 1 (or 0 for the method's)", c.ProjHidden)
	case c.ProjOut < 0:
		return Usagef("--proj-out %d: want >= 1 (or 0 for the method's)", c.ProjOut)
	case c.PredHidden < 0:
		return Usagef("--pred-hidden %d: want >= 1 (or 0 for the method's)", c.PredHidden)
	case !(c.EMAMomentum >= 0 && c.EMAMomentum <= 1):
		return Usagef("--ema-momentum %g: want a value in [0, 1]", c.EMAMomentum)
	case c.Patch < 0:
		return Usagef("--patch %d: want >= 1 (or 0 for the configuration's)", c.Patch)
	case c.Dropout >= 1:
		return Usagef("--dropout %g: want < 1", c.Dropout)
	case c.Momentum < 0 || c.Momentum >= 1:
		return Usagef("--momentum %g: want in [0, 1)", c.Momentum)
	case c.Nesterov && (c.Optimizer != fit.OptimizerSGD || c.Momentum == 0):
		return Usagef("--nesterov needs --optimizer sgd and a --momentum > 0")
	case c.WeightDecay < 0:
		return Usagef("--weight-decay %g: want >= 0", c.WeightDecay)
	case c.WarmupSteps < 0:
		return Usagef("--warmup-steps %d: want >= 0", c.WarmupSteps)
	case c.Clip < 0:
		return Usagef("--clip %g: want >= 0 (0 disables clipping)", c.Clip)
	case c.KnnEvery < 0:
		return Usagef("--knn-every %d: want >= 0 (0 disables the monitor)", c.KnnEvery)
	case c.KnnEvery > 0 && c.KnnK < 1:
		return Usagef("--knn-k %d: want >= 1", c.KnnK)
	case c.KnnEvery > 0 && !(c.KnnT > 0):
		return Usagef("--knn-t %g: want > 0", c.KnnT)
	case c.CropPad < 0:
		return Usagef("--padding %d: want >= 0", c.CropPad)
	case !(c.CropScale > 0 && c.CropScale <= 1):
		return Usagef("--crop-scale %g: want in (0, 1]", c.CropScale)
	case c.Jitter < 0:
		return Usagef("--jitter %g: want >= 0 (0 disables the colour jitter)", c.Jitter)
	case c.Solarize < 0 || c.Solarize > 1:
		return Usagef("--solarize %g: want a probability in [0, 1]", c.Solarize)
	case c.SolarizeThreshold < 0 || c.SolarizeThreshold > 1:
		return Usagef("--solarize-threshold %g: want a value in [0, 1]", c.SolarizeThreshold)
	}
	return FirstFailed("",
		Want(c.CheckpointEvery >= 0, "--checkpoint-every %d: want >= 0", c.CheckpointEvery),
		Want(c.KeepCheckpoints >= 0, "--keep-checkpoints %d: want >= 0 (0 keeps all)", c.KeepCheckpoints),
		Want(c.LogEvery >= 0, "--log-every %d: want >= 0", c.LogEvery),
		Want(c.LimitTrain >= 0, "--limit-train %d: want >= 0 (0: all)", c.LimitTrain),
		Want(c.LimitTest >= 0, "--limit-test %d: want >= 0 (0: all)", c.LimitTest),
		Want(c.Workers >= 0, "--workers %d: want >= 0 (0: one per CPU)", c.Workers))
}

// pretrainConfig builds the method's configuration from the flags.
func (c *PretrainViT) pretrainConfig() (ssl.PretrainConfig, error) {
	method, err := ssl.ParseMethod(c.Mode)
	if err != nil {
		return ssl.PretrainConfig{}, Usagef("--method: %w", err)
	}
	layers, err := backbone.ParseLayerSelect(c.Layers)
	if err != nil {
		return ssl.PretrainConfig{}, Usagef("--layers: %w", err)
	}
	cfg := ssl.PretrainConfig{Method: method, Layers: layers, Temperature: c.Temperature}
	cfg = cfg.WithDefaults()
	if c.ProjHidden > 0 {
		cfg.Projector.Hidden = c.ProjHidden
	}
	if c.ProjOut > 0 {
		cfg.Projector.Out = c.ProjOut
	}
	if c.ProjLayers > 0 {
		cfg.Projector.Layers = c.ProjLayers
	}
	switch c.ProjNorm {
	case "ln":
		cfg.Projector.Norm, cfg.Projector.Act = ssl.NormLayer, ssl.ActGELU
	case "bn":
		cfg.Projector.Norm, cfg.Projector.Act = ssl.NormBatch, ssl.ActReLU
	}
	if cfg.Predictor.Layers > 0 {
		// The predictor maps the projection back to its own width.
		cfg.Predictor.Out = cfg.Projector.Out
		if c.PredHidden > 0 {
			cfg.Predictor.Hidden = c.PredHidden
		}
	}
	cfg.IntermediateGradient = c.IntermediateGrad
	cfg.StopGradientB = c.StopGradB
	cfg.DetachIntermediate = c.DetachInter
	if err := cfg.Validate(); err != nil {
		return cfg, Usagef("--method %s --layers %s: %w", c.Mode, c.Layers, err)
	}
	return cfg, nil
}

// vitConfig is the encoder for images of spec's shape.
func (c *PretrainViT) vitConfig(spec rundir.DataSpec) (vit.Config, error) {
	cfg, err := vit.Get(c.Config)
	if err != nil {
		return cfg, Usagef("--config: %w", err)
	}
	cfg = cfg.WithImage(spec.Height, spec.Width, spec.Channels).WithPooling(vit.Pooling(c.Pooling))
	if c.Patch > 0 {
		cfg = cfg.WithPatch(c.Patch)
	}
	if c.Dropout >= 0 {
		cfg = cfg.WithDropout(c.Dropout)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, Usagef("--config %s --patch %d on %dx%dx%d images: %w", c.Config, cfg.Patch, spec.Height, spec.Width, spec.Channels, err)
	}
	return cfg, nil
}

// transform is the training augmentation of one view.
func (c *PretrainViT) transform(method ssl.Method, spec rundir.DataSpec) (data.Pipeline, error) {
	kind := c.Augment
	if kind == "auto" {
		kind = "simclr"
		if method == ssl.MethodLWCLR {
			kind = "standard"
		}
	}
	flipP := 0.0
	if c.Flip {
		flipP = 0.5
	}
	switch kind {
	case "standard":
		return data.Pipeline{Ops: []data.Op{
			data.RandomCrop{H: spec.Height, W: spec.Width, Padding: c.CropPad}, data.HFlip{P: flipP}, spec.Norm(),
		}}, nil
	case "simclr":
		if spec.Height != spec.Width {
			return data.Pipeline{}, Usagef("--augment simclr: needs square images, got %dx%d", spec.Height, spec.Width)
		}
		return data.SimCLRTransform(spec.Height, spec.Norm(), data.SimCLROptions{
			ScaleMin: c.CropScale, Jitter: c.Jitter, NoJitter: c.Jitter == 0, NoBlur: !c.Blur, NoFlip: !c.Flip, Solarize: c.Solarize, SolarizeThreshold: c.SolarizeThreshold,
		}), nil
	case "none":
		return data.TestTransform(spec.Norm()), nil
	}
	return data.Pipeline{}, Usagef("--augment %q: want auto, standard, simclr or none", c.Augment)
}

// cropTransforms parses --crops and returns one pipeline per crop: the SimCLR augmentation aug
// with its random resized crop replaced by the group's size and scale range, and for the local
// crops a final cornerPad that places the crop in the top-left corner of an image-sized canvas (the
// loader batches one shape; ssl.SplitCrops cuts the crops out again).
func (c *PretrainViT) cropTransforms(m ssl.Method, spec rundir.DataSpec, aug data.Pipeline, patch int) (ssl.Crops, []data.Pipeline, error) {
	crops, err := ssl.ParseCrops(c.Crops)
	if err != nil {
		return nil, nil, Usagef("--crops: %v", err)
	}
	if err := crops.Check(m, spec.Height, patch); err != nil {
		return nil, nil, Usagef("--crops %s: %v", c.Crops, err)
	}
	rrc, ok := aug.Ops[0].(data.RandomResizedCrop)
	if !ok || spec.Height != spec.Width {
		return nil, nil, Usagef("--crops: needs --augment simclr (random resized crops) on square images")
	}
	var out []data.Pipeline
	for gi, g := range crops {
		ops := slices.Clone(aug.Ops)
		r := rrc
		r.H, r.W, r.ScaleMin, r.ScaleMax = g.Size, g.Size, g.ScaleMin, g.ScaleMax
		ops[0] = r
		if gi > 0 {
			ops = append(ops, cornerPad{H: spec.Height, W: spec.Width})
		}
		for range g.Count {
			out = append(out, data.Pipeline{Ops: ops})
		}
	}
	return crops, out, nil
}

// cornerPad places an h×w image in the top-left corner of an H×W canvas of zeros (a local crop in
// a batch of global-sized images).
type cornerPad struct{ H, W int }

// OutputShape implements data.Op.
func (o cornerPad) OutputShape(_, _, c int) (int, int, int) { return o.H, o.W, c }

// Apply implements data.Op.
func (o cornerPad) Apply(img *data.Image, _ *data.Workspace, _ *data.RNG) {
	if img.H > o.H || img.W > o.W {
		panic(fmt.Errorf("cornerPad: a %dx%d crop does not fit a %dx%d canvas", img.H, img.W, o.H, o.W))
	}
	out := make([]float32, o.H*o.W*img.C)
	for y := range img.H {
		copy(out[y*o.W*img.C:], img.Pix[y*img.W*img.C:(y+1)*img.W*img.C])
	}
	img.Pix, img.H, img.W = out, o.H, o.W
}

// Run pretrains in env.RunDir (with c.Resume, continues the run there from its newest
// checkpoint). Cancelling ctx stops the run after the current step with a checkpoint and returns
// an error wrapping fit.ErrInterrupted. With c.Epochs 0 it writes the encoder as initialised with
// env.Seed as the step-0 checkpoint instead (the random-weights baseline of the evaluations).
func (c *PretrainViT) Run(ctx stdctx.Context, env Env) (*PretrainResult, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	pcfg, err := c.pretrainConfig()
	if err != nil {
		return nil, err
	}
	runDir := env.RunDir
	if err := CheckRunDir(runDir, c.Resume); err != nil {
		return nil, err
	}
	train, test, spec, err := OpenTrainTest(c.Dataset, c.DataDir, c.LimitTrain, c.LimitTest)
	if err != nil {
		return nil, err
	}
	if err := CheckBatch(c.Batch, train.Len()); err != nil {
		return nil, err
	}
	if c.KnnEvery > 0 && c.KnnK > train.Len() {
		return nil, Usagef("--knn-k %d: larger than the kNN bank of %d training images", c.KnnK, train.Len())
	}
	vcfg, err := c.vitConfig(spec)
	if err != nil {
		return nil, err
	}
	model, err := vit.New(vcfg)
	if err != nil {
		return nil, err
	}
	aug, err := c.transform(pcfg.Method, spec)
	if err != nil {
		return nil, err
	}
	views, transforms := pcfg.Method.Augmentations(), []data.Pipeline{aug}
	var crops ssl.Crops
	if c.Crops != "" {
		if crops, transforms, err = c.cropTransforms(pcfg.Method, spec, aug, vcfg.Patch); err != nil {
			return nil, err
		}
		views = crops.Views()
	}
	loader, err := data.NewLoader(train, data.LoaderConfig{
		BatchSize: c.Batch, Views: views, Transforms: transforms,
		Shuffle: true, DropLast: true, Seed: uint64(env.Seed), Workers: c.Workers,
	})
	if err != nil {
		return nil, err
	}

	rec := rundir.Model{Family: rundir.FamilyViT, Scope: "/" + ssl.ScopeEncoder, ViT: &vcfg, Data: spec}
	var ema *fit.EMA
	if pairs := pcfg.Method.Targets(); len(pairs) > 0 {
		ema = &fit.EMA{Base: c.EMAMomentum, Schedule: c.EMASchedule}
		for _, p := range pairs {
			ema.Pairs = append(ema.Pairs, fit.EMAPair{Online: "/" + p.Online, Target: "/" + p.Target})
			if p.Online == ssl.ScopeEncoder {
				rec.TargetScope = "/" + p.Target
			}
		}
	}
	var frozen []string
	if c.FreezePatch {
		frozen = append(frozen, "/"+ssl.ScopeEncoder+"/"+vit.ScopePatchEmbed)
	}
	cfg := fit.Config{
		Epochs: c.Epochs,
		Optimizer: fit.Optimizer{Kind: c.Optimizer, Momentum: c.Momentum, Nesterov: c.Nesterov,
			WeightDecay: c.WeightDecay},
		Schedule: fit.Schedule{Kind: fit.ScheduleWarmupCosine, BaseLR: c.LR, WarmupSteps: c.WarmupSteps,
			FloorLR: c.MinLR},
		ClipNorm:        c.Clip,
		CheckpointEvery: c.CheckpointEvery,
		KeepCheckpoints: c.KeepCheckpoints,
		EvalEvery:       c.KnnEvery,
		LogEvery:        c.LogEvery,
		RunDir:          runDir,
		Seed:            env.Seed,
		Resume:          c.Resume,
		EMA:             ema,
		Frozen:          frozen,
	}
	if c.Optimizer == fit.OptimizerAdamW {
		cfg.Optimizer.Momentum = 0
	}
	params := rundir.Params{Command: "pretrain vit", Model: rec, Flags: c}
	if c.Epochs == 0 {
		return c.writeUntrained(env, model, params, cfg)
	}
	if c.KnnEvery > 0 {
		cfg.BestMetric = "knn_top1"
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	totalSteps := int64(c.Epochs) * int64(loader.StepsPerEpoch())
	if c.WarmupSteps >= totalSteps {
		env.Log.Warn().Int64("warmup_steps", c.WarmupSteps).Int64("total_steps", totalSteps).
			Msg("--warmup-steps covers the whole run: the learning rate never reaches --lr")
	}

	backend := env.Backend
	dp, err := env.DataParallel(c.Batch, train.Len(), true)
	if err != nil {
		return nil, err
	}
	if c.Resume {
		if err := rundir.CheckResume(backend, runDir, rec); err != nil {
			return nil, err
		}
	}
	encoder := func(ctx *context.Context, images *graph.Node) backbone.Features { return model.Features(ctx, images) }
	job := fit.Job{
		Backend: backend,
		Context: context.New(),
		Train:   loader,
		Loss: func(ctx *context.Context, in fit.Inputs) fit.Loss {
			images, locals := in.Images, []*graph.Node(nil)
			if crops != nil {
				images, locals = ssl.SplitCrops(in.Images, crops)
			}
			out := ssl.PretrainLossCrops(ctx, encoder, pcfg, images, locals, in.Labels)
			return fit.Loss{Total: out.Loss}
		},
		Log:      env.Log,
		Terminal: env.Terminal,
		Parallel: dp,
		Models:   []fit.ModelRecord{rec.Record("encoder")},
		Abort:    env.Abort,
	}
	if c.KnnEvery > 0 {
		job.Eval, err = c.knnMonitor(backend, model, train, test, spec)
		if err != nil {
			return nil, err
		}
	}
	env.Log.Info().Str("run_dir", runDir).Str("model", vcfg.String()).Int("encoder_params", vcfg.ParamCount()).
		Int("projector_params", ssl.HeadParams(pcfg.Projector, vcfg.Dim)).Int("predictor_params", ssl.HeadParams(pcfg.Predictor, pcfg.Projector.Out)).Str("mode", c.Mode).Str("layers", pcfg.Layers.String()).
		Int("train_images", train.Len()).Int("steps_per_epoch", loader.StepsPerEpoch()).Str("backend", backend.Name()).
		Msg("pretraining")

	// The first write: everything above only checked and read.
	if err := rundir.WriteConfig(runDir, params, cfg, c.Resume); err != nil {
		return nil, err
	}
	res, err := fit.Run(ctx, job, cfg)
	if err != nil {
		return nil, err
	}
	ev := env.Log.Info().Int("epochs", res.Epochs).Int64("steps", res.GlobalStep).Float64("train_loss", res.TrainLoss).
		Float64("seconds", res.Seconds).Float64("images_per_sec", res.ImagesPerSec).Str("checkpoint", res.Checkpoint)
	if v, ok := res.Metrics["knn_top1"]; ok {
		ev = ev.Float64("knn_top1", v)
	}
	ev.Msg("pretraining done")
	return &PretrainResult{RunDir: runDir, Checkpoint: res.Checkpoint, Fit: res, EncoderParams: vcfg.ParamCount()}, nil
}

// writeUntrained writes the encoder as initialised with env.Seed (the initialisation a training run
// with the same seed starts from) as the run's step-0 checkpoint, with its config.json: the
// random-weights baseline that knn-eval and linear-eval take like any other run.
func (c *PretrainViT) writeUntrained(env Env, model *vit.Model, params rundir.Params, cfg fit.Config) (*PretrainResult, error) {
	cfg.Epochs = 0
	runDir := env.RunDir
	ctx := context.New()
	if err := ctx.SetRNGStateFromSeed(env.Seed); err != nil {
		return nil, fmt.Errorf("seeding the random number generator: %w", err)
	}
	// One forward pass over a blank image creates and initialises the encoder's variables.
	vc := model.Config()
	exec, err := context.NewExec(env.Backend, ctx, func(ctx *context.Context, images *graph.Node) *graph.Node {
		ctx.SetTraining(images.Graph(), false)
		return model.Features(ctx.In(ssl.ScopeEncoder), images).Pooled
	})
	if err != nil {
		return nil, fmt.Errorf("initialising the encoder: %w", err)
	}
	defer exec.Finalize()
	out, err := exec.Exec1(tensors.FromShape(shapes.Make(dtypes.Float32, 1, vc.ImageHeight, vc.ImageWidth, vc.Channels)))
	if err != nil {
		return nil, fmt.Errorf("initialising the encoder: %w", err)
	}
	_ = out.FinalizeAll()
	if err := fit.WriteConfig(runDir, params, cfg); err != nil {
		return nil, err
	}
	path := filepath.Join(runDir, "checkpoints", fit.CheckpointName(0))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("run directory %s: %w", runDir, err)
	}
	if err := fit.SaveCheckpoint(path, ctx, fit.LoopState{}, params.Model.Record("encoder")); err != nil {
		return nil, err
	}
	env.Log.Info().Str("checkpoint", path).Int("encoder_params", vc.ParamCount()).Msg("wrote the untrained encoder (--epochs 0)")
	return &PretrainResult{RunDir: runDir, Checkpoint: path, EncoderParams: vc.ParamCount()}, nil
}

// knnMonitor returns the online evaluation: weighted kNN with the training set (test transform) as
// the bank and the test set as the queries, on the encoder's pooled feature. Metrics: knn_top1,
// knn_top5 (fractions).
func (c *PretrainViT) knnMonitor(backend backends.Backend, model *vit.Model, train, test *data.Dataset, spec rundir.DataSpec) (fit.EvalFunc, error) {
	bankLoader, err := EvalLoader(train, spec, 256, c.Workers)
	if err != nil {
		return nil, err
	}
	queryLoader, err := EvalLoader(test, spec, 256, c.Workers)
	if err != nil {
		return nil, err
	}
	encoder := func(ctx *context.Context, images *graph.Node) *graph.Node { return model.Features(ctx, images).Pooled }
	setting := eval.KNNSetting{K: c.KnnK, T: c.KnnT}
	numClasses := max(train.NumClasses(), test.NumClasses())
	return func(ctx *context.Context, epoch int) (map[string]float64, error) {
		enc := ctx.In(ssl.ScopeEncoder)
		bank, err := eval.Extract(backend, enc, encoder, bankLoader)
		if err != nil {
			return nil, fmt.Errorf("kNN bank: %w", err)
		}
		queries, err := eval.Extract(backend, enc, encoder, queryLoader)
		if err != nil {
			return nil, fmt.Errorf("kNN queries: %w", err)
		}
		res, err := eval.KNN(backend, bank, queries, eval.KNNOptions{Settings: []eval.KNNSetting{setting}, NumClasses: numClasses})
		if err != nil {
			return nil, err
		}
		return map[string]float64{"knn_top1": res[0].Top1, "knn_top5": res[0].Top5}, nil
	}, nil
}
