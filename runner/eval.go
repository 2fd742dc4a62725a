package runner

import (
	"errors"
	"fmt"
	"os"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/ifa-toolkit/ifa/backbone"
	"github.com/ifa-toolkit/ifa/data"
	"github.com/ifa-toolkit/ifa/eval"
	"github.com/ifa-toolkit/ifa/fit"
	"github.com/ifa-toolkit/ifa/rundir"
)

// The evaluations' input: a frozen encoder from a run, the data it is evaluated on and its
// features.

// EvalInput holds what both evaluations (knn-eval, linear-eval) take: the encoder, the
// data, the feature choice and the output format.
type EvalInput struct {
	Checkpoint string `help:"Checkpoint file, or run directory (its newest checkpoint), written by an ifa training command." required:"" type:"path"`
	Encoder    string `help:"Which encoder of a run with a momentum copy (byol, mocov3, lwbyol, lwmocov3) to read: online (the trained one, which the online kNN monitor also reads) or target (its EMA copy)." enum:"online,target" default:"online"`
	Layers     string `help:"Feature: empty for the encoder's pooled vector (a ViT's last-layer CLS or mean token), or the concatenation of the selected layers' vectors: last:K, all, or indices such as 2,-1." default:""`
	Dataset    string `help:"Evaluate on this dataset instead of the one the encoder was trained on (same image shape)."`
	DataDir    string `name:"data-dir" help:"Folder holding the named dataset." type:"path" env:"IFA_DATA_DIR"`
	LimitTrain int    `name:"limit-train" help:"Use only the first N training images (the kNN bank, the probe's training set; 0: all)." default:"0"`
	LimitTest  int    `name:"limit-test" help:"Use only the first N test images (0: all)." default:"0"`
	Format     string `help:"Output: text, or json (one object with top1 and top5 as fractions)." enum:"text,json" default:"text"`
}

// EvalFeatures are the frozen encoder's features of the train and test splits.
type EvalFeatures struct {
	Enc         *LoadedEncoder
	Spec        rundir.DataSpec
	Train, Test eval.FeatureSet
	NumClasses  int
}

// Features loads the encoder, opens the data (check, when set, validates the training split
// before any work starts) and extracts both splits' features in batches of batch images on
// env.Backend.
func (in *EvalInput) Features(env Env, batch int, check func(train *data.Dataset) error) (*EvalFeatures, error) {
	if err := FirstFailed("", Want(in.LimitTrain >= 0, "--limit-train %d: want >= 0 (0: all)", in.LimitTrain),
		Want(in.LimitTest >= 0, "--limit-test %d: want >= 0 (0: all)", in.LimitTest)); err != nil {
		return nil, err
	}
	enc, err := LoadEncoder(env, in.Checkpoint, in.Encoder)
	if err != nil {
		return nil, err
	}
	train, test, spec, err := EvalData(enc.Model, in.Dataset, in.DataDir, in.LimitTrain, in.LimitTest)
	if err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(train); err != nil {
			return nil, err
		}
	}
	trainF, testF, err := extractTrainTest(env, enc, train, test, spec, batch, in.Layers)
	if err != nil {
		return nil, err
	}
	return &EvalFeatures{Enc: enc, Spec: spec, Train: trainF, Test: testF,
		NumClasses: max(train.NumClasses(), test.NumClasses())}, nil
}

// Which encoder of a run with a momentum copy the evaluations read (--encoder).
const (
	EncoderOnline = "online" // the trained encoder (Model.Scope)
	EncoderTarget = "target" // its momentum copy (Model.TargetScope)
)

// LoadEncoder loads the encoder of a checkpoint file or run directory (--checkpoint), checked
// against its run's config.json: the online encoder or its momentum (EMA) copy (which is
// EncoderOnline or EncoderTarget). The loader's warnings go to env.Log.
func LoadEncoder(env Env, path, which string) (*LoadedEncoder, error) {
	l, err := rundir.Load(env.Backend, path, rundir.Want{Flag: "--checkpoint"})
	if err != nil {
		return nil, err
	}
	warnAll(env, l.Warnings)
	if which == EncoderTarget {
		if l.Model.TargetScope == "" {
			return nil, fmt.Errorf("--encoder target: %s holds no momentum (target) encoder: its method trains only the online one", l.File)
		}
		l.Model.Scope = l.Model.TargetScope
	}
	ctx, err := l.Context()
	if err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", err)
	}
	return &LoadedEncoder{Loaded: l, Context: ctx}, nil
}

// LoadedEncoder is an encoder rebuilt from a checkpoint, ready for feature extraction.
type LoadedEncoder struct {
	*rundir.Loaded
	// Context holds the encoder's variables at its root.
	Context *context.Context
}

// pooledEncoder is the evaluation feature of a record's encoder: Features.Pooled (a ViT's final
// CLS vector after the shared LayerNorm, or its mean token with --pooling mean; a CNN's final
// pooled feature).
func pooledEncoder(rec rundir.Model) eval.Encoder {
	return func(ctx *context.Context, images *graph.Node) *graph.Node {
		return rec.Features(ctx, images).Pooled
	}
}

// FeatureEncoder is the evaluation feature named by an evaluation command's --layers flag: ""
// means Features.Pooled; otherwise the concatenation, in layer order, of the selected per-layer
// vectors (Features.TapVectors), [B, ΣD_l].
func FeatureEncoder(rec rundir.Model, layers string) (eval.Encoder, error) {
	if layers == "" {
		return pooledEncoder(rec), nil
	}
	sel, err := backbone.ParseLayerSelect(layers)
	if err != nil {
		return nil, fmt.Errorf("--layers: %w", err)
	}
	return func(ctx *context.Context, images *graph.Node) *graph.Node {
		vecs := rec.Features(ctx, images).TapVectors
		idx, err := sel.Resolve(len(vecs))
		if err != nil {
			panic(fmt.Errorf("--layers %s: %w", layers, err))
		}
		parts := make([]*graph.Node, len(idx))
		for i, l := range idx {
			parts[i] = vecs[l]
		}
		if len(parts) == 1 {
			return parts[0]
		}
		return graph.Concatenate(parts, -1)
	}, nil
}

// EvalData opens the train and test splits an evaluation runs on: the record's data unless
// dataset is given, normalised with the record's test transform.
func EvalData(rec rundir.Model, dataset, dir string, limitTrain, limitTest int) (train, test *data.Dataset, spec rundir.DataSpec, err error) {
	spec = rec.Data
	if dataset == "" {
		dataset = spec.Dataset
		if dir == "" {
			dir = spec.Dir
		}
	}
	if dataset == "" {
		return nil, nil, spec, errors.New("--dataset: the checkpoint's run does not record its dataset: give --dataset")
	}
	train, test, own, err := OpenTrainTestCrop(dataset, dir, limitTrain, limitTest, spec.Crop)
	if err != nil {
		return nil, nil, spec, err
	}
	if len(spec.Mean) != train.C {
		spec.Mean, spec.Std = own.Mean, own.Std
	}
	// Smaller images are zero-padded to the encoder's input by EvalLoader (--pad-to-32 runs); the
	// folder recipe's are centre-cropped to it.
	if (spec.Crop == 0 && (train.H > spec.Height || train.W > spec.Width)) || train.C != spec.Channels {
		return nil, nil, spec, fmt.Errorf("--dataset %s: images %dx%dx%d, but the encoder takes %dx%dx%d",
			dataset, train.H, train.W, train.C, spec.Height, spec.Width, spec.Channels)
	}
	spec.Dataset, spec.Dir = dataset, dir
	return train, test, spec, nil
}

// extractTrainTest extracts the encoder's features of the train split (the kNN bank / probe
// training set) and of the test split, both under the test transform.
func extractTrainTest(env Env, enc *LoadedEncoder, train, test *data.Dataset, spec rundir.DataSpec, batch int, layers string) (bank, queries eval.FeatureSet, err error) {
	fn, err := FeatureEncoder(enc.Model, layers)
	if err != nil {
		return bank, queries, err
	}
	for i, ds := range []*data.Dataset{train, test} {
		l, err := EvalLoader(ds, spec, batch, 0)
		if err != nil {
			return bank, queries, err
		}
		env.Log.Info().Str("split", ds.Split).Int("images", ds.Len()).Msg("extracting features")
		var progress func(done, total int)
		var bar *fit.Progress
		if env.Terminal {
			bar = fit.NewProgress(os.Stderr, "features "+ds.Split)
			progress = bar.Update
		}
		f, err := eval.ExtractWithProgress(env.Backend, enc.Context, fn, l, progress)
		bar.Done()
		if err != nil {
			return bank, queries, fmt.Errorf("%s %s: %w", ds.Name, ds.Split, err)
		}
		if i == 0 {
			bank = f
		} else {
			queries = f
		}
	}
	return bank, queries, nil
}
